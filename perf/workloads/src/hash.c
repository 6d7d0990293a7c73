/* Integer hashing: xorshift64 with a multiply (xorshift64*), 64-bit rotate-and-multiply mixing and the 32-bit
   MurmurHash3 block step: ROL/ROR, MUL/IMUL, shifts. The 32-bit build does the 64-bit parts with register pairs
   (SHLD/SHRD, MUL, ADC) as compilers emit them. */
#include "wl.h"
const char wl_name[] = "hash";
const uint32_t wl_default_n = 3000;

uint32_t wl_run(uint32_t n)
{
    uint64_t x = 0x9E3779B97F4A7C15ull, h = 0;
    uint32_t h32 = 0x811C9DC5u;
    for (uint32_t rep = 0; rep < n; rep++)
    {
        for (uint32_t i = 0; i < 8192; i++)
        {
            x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
            uint64_t r = x * 0x2545F4914F6CDD1Dull;
            h = rotl64(h ^ r, 31) * 0x87C37B91114253D5ull + i;
            uint32_t k = (uint32_t)r * 0xCC9E2D51u;
            k = rotl32(k, 15) * 0x1B873593u;
            h32 = rotl32(h32 ^ k, 13) * 5 + 0xE6546B64u;
        }
    }
    return (uint32_t)h ^ (uint32_t)(h >> 32) ^ h32;
}
