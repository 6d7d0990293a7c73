/* What every workload provides, and the little runtime it may use. A workload is one C file that defines
   wl_name, wl_default_n and wl_run; the same file builds into the 32-bit and 64-bit images and into the host
   reference (ref.c) that computes the expected checksums. Only fixed-width types, so all three agree. */
#pragma once
#include <stdint.h>
#include <stddef.h>

extern const char wl_name[];
extern const uint32_t wl_default_n;     /* loop count when the command line has no n=... */
uint32_t wl_run(uint32_t n);            /* the checksum printed on the serial port */

extern uint32_t wl_status;              /* isa-debug-exit value: 0 = the workload checked itself and passed */

static inline uint32_t rotl32(uint32_t x, unsigned r) { return (x << (r & 31)) | (x >> ((32 - r) & 31)); }
static inline uint64_t rotl64(uint64_t x, unsigned r) { return (x << (r & 63)) | (x >> ((64 - r) & 63)); }
static inline uint32_t xorshift32(uint32_t *s) { uint32_t x = *s; x ^= x << 13; x ^= x >> 17; x ^= x << 5; return *s = x; }

/* Keeps the compiler from folding a loop whose result it could compute at build time. */
#define OPAQUE(v) __asm__ volatile("" : "+r"(v))
