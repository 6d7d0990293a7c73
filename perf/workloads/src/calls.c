/* Recursive calls: Fibonacci and Takeuchi's function. CALL/RET, pushes and pops, short bodies. */
#include "wl.h"
const char wl_name[] = "calls";
const uint32_t wl_default_n = 160;

__attribute__((noinline)) static uint32_t fib(uint32_t k) { return k < 2 ? k : fib(k - 1) + fib(k - 2); }

__attribute__((noinline)) static int32_t tak(int32_t x, int32_t y, int32_t z)
{
    return y < x ? tak(tak(x - 1, y, z), tak(y - 1, z, x), tak(z - 1, x, y)) : z;
}

uint32_t wl_run(uint32_t n)
{
    uint32_t sum = 0;
    for (uint32_t rep = 0; rep < n; rep++)
    {
        uint32_t k = 20 + (rep & 1);
        int32_t x = 16 + (int32_t)(rep & 1);
        OPAQUE(k);
        OPAQUE(x);
        sum = sum * 17 + fib(k) + (uint32_t)tak(x, 10, 4);
    }
    return sum;
}
