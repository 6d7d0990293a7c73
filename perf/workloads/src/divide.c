/* Integer division by divisors unknown at compile time: DIV and IDIV (32-bit in both builds, so the 32-bit
   image needs no libgcc), remainders, and Euclid's GCD. */
#include "wl.h"
const char wl_name[] = "divide";
const uint32_t wl_default_n = 800;

uint32_t wl_run(uint32_t n)
{
    uint32_t seed = 0xDEADBEEFu, sum = 0;
    for (uint32_t rep = 0; rep < n; rep++)
    {
        for (uint32_t i = 1; i <= 4096; i++)
        {
            uint32_t a = xorshift32(&seed);
            uint32_t d = (i * 7 + rep) | 1;
            sum += a / d + a % (d + 2);
            int32_t sa = (int32_t)a, sd = (int32_t)(d & 0xFFF) - 2048;
            if (sd == 0) sd = 3;
            sum ^= (uint32_t)(sa / sd) + (uint32_t)(sa % sd);
            uint32_t g = a | 1, h = d;
            while (h) { uint32_t t = g % h; g = h; h = t; }
            sum += g;
        }
    }
    return sum;
}
