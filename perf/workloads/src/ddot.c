/* Double-precision vector kernels: a scalar dot product (a serial ADDSD chain: no reassociation without
   -ffast-math) and an AXPY on two-lane vectors (MULPD/ADDPD, MOVAPD loads and stores). */
#include "wlfp.h"
const char wl_name[] = "ddot";
const uint32_t wl_default_n = 1500;

#define LEN 2048
typedef double v2d __attribute__((vector_size(16)));
static double x[LEN] __attribute__((aligned(16))), y[LEN] __attribute__((aligned(16)));

uint32_t wl_run(uint32_t n)
{
    wl_fp_enable();
    uint32_t seed = 0x2545F491u;
    for (int i = 0; i < LEN; i++)
    {
        x[i] = (double)(int32_t)xorshift32(&seed) / 2147483648.0;
        y[i] = (double)(int32_t)xorshift32(&seed) / 4294967296.0;
    }
    uint32_t sum = 0;
    for (uint32_t rep = 0; rep < n; rep++)
    {
        double a = 1.0 / (double)(rep + 3);
        OPAQUE_FP(a);
        v2d va = { a, a }, half = { 0.5, 0.5 };
        for (int i = 0; i < LEN; i += 2) *(v2d *)&y[i] = va * *(v2d *)&x[i] + *(v2d *)&y[i] * half;
        double d = 0;
        for (int i = 0; i < LEN; i++) d += x[i] * y[i];
        sum = wl_fold(sum, d);
    }
    return sum;
}
