/* 48 x 48 unsigned 32-bit matrix multiply: IMUL and indexed loads in a triple loop. */
#include "wl.h"
const char wl_name[] = "matmul";
const uint32_t wl_default_n = 400;

#define N 48
static uint32_t a[N][N], b[N][N], c[N][N];

uint32_t wl_run(uint32_t n)
{
    uint32_t seed = 0x9E3779B9u;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) { a[i][j] = xorshift32(&seed) & 0xFFFF; b[i][j] = xorshift32(&seed) & 0xFFFF; }

    uint32_t sum = 0;
    for (uint32_t rep = 0; rep < n; rep++)
    {
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++)
            {
                uint32_t s = 0;
                for (int k = 0; k < N; k++) s += a[i][k] * b[k][j];
                c[i][j] = s;
            }
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++) { sum = rotl32(sum, 5) ^ c[i][j]; a[i][j] = (c[i][j] >> 7) & 0xFFFF; }
    }
    return sum;
}
