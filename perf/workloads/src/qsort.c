/* Quicksort (median of three, Hoare partition, insertion sort below 16) of 32768 pseudo-random words:
   data-dependent branches, swaps, recursion. */
#include "wl.h"
const char wl_name[] = "qsort";
const uint32_t wl_default_n = 60;

#define COUNT 32768
static uint32_t v[COUNT];

static void swap(uint32_t *x, uint32_t *y) { uint32_t t = *x; *x = *y; *y = t; }

static void sort(uint32_t *p, int32_t lo, int32_t hi)
{
    while (hi - lo >= 16)
    {
        int32_t mid = lo + (hi - lo) / 2;
        if (p[mid] < p[lo]) swap(&p[mid], &p[lo]);
        if (p[hi] < p[lo]) swap(&p[hi], &p[lo]);
        if (p[hi] < p[mid]) swap(&p[hi], &p[mid]);
        uint32_t pivot = p[mid];
        int32_t i = lo - 1, j = hi + 1;
        for (;;)
        {
            do i++; while (p[i] < pivot);
            do j--; while (p[j] > pivot);
            if (i >= j) break;
            swap(&p[i], &p[j]);
        }
        if (j - lo < hi - j) { sort(p, lo, j); lo = j + 1; }   /* recurse into the smaller half */
        else { sort(p, j + 1, hi); hi = j; }
    }
    for (int32_t i = lo + 1; i <= hi; i++)
    {
        uint32_t x = p[i];
        int32_t k = i - 1;
        while (k >= lo && p[k] > x) { p[k + 1] = p[k]; k--; }
        p[k + 1] = x;
    }
}

uint32_t wl_run(uint32_t n)
{
    uint32_t sum = 0;
    for (uint32_t rep = 0; rep < n; rep++)
    {
        uint32_t seed = 0x2545F491u + rep;
        for (uint32_t i = 0; i < COUNT; i++) v[i] = xorshift32(&seed) % 1000003u;
        sort(v, 0, COUNT - 1);
        uint32_t ordered = 1;
        for (uint32_t i = 1; i < COUNT; i++) ordered &= v[i - 1] <= v[i];
        sum = sum * 33 + v[rep % COUNT] + v[COUNT / 2] + ordered;
    }
    return sum;
}
