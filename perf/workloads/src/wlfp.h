/* Floating-point workloads: the guest must turn on the FPU and SSE before its first FP instruction (boot.S leaves
   them as the loader did). Built into the images only; the host reference already runs with them on. */
#pragma once
#include "wl.h"

static inline void wl_fp_enable(void)
{
#ifndef WL_HOST_REF
    uintptr_t cr0, cr4;
    __asm__ volatile("mov %%cr0, %0" : "=r"(cr0));
    cr0 = (cr0 & ~(uintptr_t)(1u << 2 | 1u << 3)) | 1u << 1 | 1u << 5;  /* EM, TS clear; MP, NE set */
    __asm__ volatile("mov %0, %%cr0" : : "r"(cr0));
    __asm__ volatile("mov %%cr4, %0" : "=r"(cr4));
    cr4 |= 1u << 9 | 1u << 10;                                           /* OSFXSR, OSXMMEXCPT */
    __asm__ volatile("mov %0, %%cr4" : : "r"(cr4));
    __asm__ volatile("fninit");
#endif
}

/* Folds a double's bits into a running checksum. */
static inline uint32_t wl_fold(uint32_t sum, double d)
{
    union { double d; uint64_t u; } v = { d };
    return rotl32(sum, 7) ^ (uint32_t)v.u ^ (uint32_t)(v.u >> 32);
}

/* OPAQUE for a value in an SSE register. */
#define OPAQUE_FP(v) __asm__ volatile("" : "+x"(v))
