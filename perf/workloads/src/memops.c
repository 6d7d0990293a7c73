/* memcpy/memset both ways: REP MOVSB/MOVSD and REP STOSB/STOSD (inline assembly, so the compiler cannot pick
   something else), and plain byte loops (built with -fno-tree-loop-distribute-patterns so they stay loops). */
#include "wl.h"
const char wl_name[] = "memops";
const uint32_t wl_default_n = 1500;

#define SIZE 32768
static uint8_t src[SIZE], dst[SIZE];

static void rep_movsb(void *d, const void *s, size_t n) { __asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory"); }
static void rep_movsd(void *d, const void *s, size_t n) { __asm__ volatile("rep movsl" : "+D"(d), "+S"(s), "+c"(n) : : "memory"); }
static void rep_stosb(void *d, uint8_t v, size_t n) { __asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(v) : "memory"); }
static void rep_stosd(void *d, uint32_t v, size_t n) { __asm__ volatile("rep stosl" : "+D"(d), "+c"(n) : "a"(v) : "memory"); }

__attribute__((noinline)) static void byte_copy(uint8_t *d, const uint8_t *s, uint32_t n) { for (uint32_t i = 0; i < n; i++) d[i] = s[i]; }
__attribute__((noinline)) static void byte_fill(uint8_t *d, uint8_t v, uint32_t n) { for (uint32_t i = 0; i < n; i++) d[i] = v; }

uint32_t wl_run(uint32_t n)
{
    uint32_t seed = 0xC0FFEEu;
    for (uint32_t i = 0; i < SIZE; i++) src[i] = (uint8_t)xorshift32(&seed);
    uint32_t sum = 0;
    for (uint32_t rep = 0; rep < n; rep++)
    {
        uint32_t off = rep & 63;
        rep_stosd(dst, 0x01010101u * (rep & 0xFF), SIZE / 4);
        rep_movsb(dst + off, src, SIZE - 64);
        sum += dst[rep % SIZE];
        rep_stosb(dst + off, (uint8_t)rep, SIZE / 2);
        rep_movsd(dst, src + off, SIZE / 4 - 16);
        sum = rotl32(sum, 3) ^ dst[(rep * 7) % SIZE];
        byte_fill(dst, (uint8_t)(rep >> 3), SIZE);
        byte_copy(dst + off, src + (rep & 31), SIZE - 64);
        sum += dst[(rep * 13) % SIZE] + dst[SIZE - 1];
    }
    for (uint32_t i = 0; i < SIZE; i++) sum = sum * 31 + dst[i];
    return sum;
}
