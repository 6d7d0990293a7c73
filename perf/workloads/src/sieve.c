/* Sieve of Eratosthenes over a byte array: byte stores in strided loops, compare-and-branch. */
#include "wl.h"
const char wl_name[] = "sieve";
const uint32_t wl_default_n = 100;

#define LIMIT (1u << 19)
static uint8_t composite[LIMIT];

uint32_t wl_run(uint32_t n)
{
    uint32_t sum = 0;
    for (uint32_t rep = 0; rep < n; rep++)
    {
        uint32_t limit = LIMIT - (rep & 7) * 1000;
        OPAQUE(limit);
        for (uint32_t i = 0; i < limit; i++) composite[i] = 0;
        uint32_t count = 0;
        for (uint32_t i = 2; i < limit; i++)
        {
            if (composite[i]) continue;
            count++;
            for (uint32_t j = i * 2; j < limit; j += i) composite[j] = 1;
        }
        sum = sum * 31 + count;
    }
    return sum;
}
