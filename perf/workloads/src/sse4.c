/* SSE3..SSE4.2 self-test guest (not a benchmark: build.sh builds it beside the workloads, not into the manifest).
   Prints one line per result: the packed string compares under all 128 imm8 control bytes, CRC32 in every operand
   size, ROUNDxx in every rounding control with the MXCSR flags, DPPS/DPPD, the horizontal and ADDSUB ops, the
   SSE4.1 integer ops, inserts/extracts, FISTTP, and loops gcc vectorises with -msse4.2. The serial text is compared
   with QEMU's line for line; the checksum folds it (the host reference build computes the same value natively). */
#include "wlfp.h"
/* The intrinsics headers pull in mm_malloc.h (and so libc's stdlib.h, absent for -m32): not needed here. */
#define _MM_MALLOC_H_INCLUDED
#include <smmintrin.h>
#include <nmmintrin.h>
const char wl_name[] = "sse4";
const uint32_t wl_default_n = 20;

#if defined WL_HOST_REF && defined SSE4_STDOUT
int fputs(const char *s, void *f);
extern void *stdout;
static void out(const char *s) { fputs(s, stdout); }
#elif defined WL_HOST_REF
static void out(const char *s) { (void)s; }
#else
void puts_serial(const char *s);
static void out(const char *s) { puts_serial(s); }
#endif

static char line[256];
static int pos;
static uint32_t sum;
static int printing;

static void put(char c) { if (pos < (int)sizeof line - 1) line[pos++] = c; sum = rotl32(sum, 5) ^ (uint8_t)c; }
static void puts_(const char *s) { while (*s) put(*s++); }
static void endl(void) { put('\n'); line[pos] = 0; if (printing) out(line); pos = 0; }
static void hex(uint64_t v, int digits) { for (int s = 4 * (digits - 1); s >= 0; s -= 4) put("0123456789abcdef"[(v >> s) & 15]); }
static void sp(void) { put(' '); }
static void vec(__m128i v) { uint64_t q[2]; _mm_storeu_si128((__m128i *)q, v); hex(q[1], 16); put('_'); hex(q[0], 16); }

#define STATUS 0x8D5u /* OF SF ZF AF PF CF */

/* MXCSR flags: QEMU TCG never raises DE (denormal operand) for SSE, so the printed text, which is compared with QEMU's,
   leaves DE out; the checksum keeps it, and is compared with the host reference build, which runs natively. */
static void mxflags(uint32_t f) { hex(f & 0x3D, 2); sum = rotl32(sum, 3) ^ f; }
static uint32_t mxcsr_get(void) { uint32_t m; __asm__ volatile("stmxcsr %0" : "=m"(m)); return m; }
static void mxcsr_set(uint32_t m) { __asm__ volatile("ldmxcsr %0" : : "m"(m)); }

/* Strings for the packed compares: text over a small alphabet with repeats, ranges, embedded zeros. */
static const char strs[][17] = {
    "hello, world!xyz", "lo", "azAZ09", "world", "abcabcabcabcabca", "cab", "\x7f\x80\xff\x01", "a\0bc",
};

#define STRCMP_ONE(IMM)                                                                                          \
    {                                                                                                            \
        uintptr_t f1, f2, f3, f4; uint32_t i1, i3; __m128i m2, m4;                                               \
        __asm__ volatile("pcmpistri %[i], %[b], %[a]\n\tpushf\n\tpop %[f]"                                       \
                         : [f] "=r"(f1), "=c"(i1) : [a] "x"(a), [b] "x"(b), [i] "i"(IMM) : "cc");                \
        __asm__ volatile("pcmpistrm %[i], %[b], %[a]\n\tpushf\n\tpop %[f]"                                       \
                         : [f] "=r"(f2), "=Yz"(m2) : [a] "x"(a), [b] "x"(b), [i] "i"(IMM) : "cc");               \
        __asm__ volatile("pcmpestri %[i], %[b], %[a]\n\tpushf\n\tpop %[f]"                                       \
                         : [f] "=r"(f3), "=c"(i3) : [a] "x"(a), [b] "x"(b), "a"(la), "d"(lb), [i] "i"(IMM) : "cc"); \
        __asm__ volatile("pcmpestrm %[i], %[b], %[a]\n\tpushf\n\tpop %[f]"                                       \
                         : [f] "=r"(f4), "=Yz"(m4) : [a] "x"(a), [b] "x"(b), "a"(la), "d"(lb), [i] "i"(IMM) : "cc"); \
        puts_("str "); hex(IMM, 2); sp(); hex(k, 1); put(':'); hex(i1, 2); sp(); hex(f1 & STATUS, 3); sp();     \
        vec(m2); sp(); hex(f2 & STATUS, 3); sp(); hex(i3, 2); sp(); hex(f3 & STATUS, 3); sp(); vec(m4); sp();    \
        hex(f4 & STATUS, 3); endl();                                                                             \
    }
#define STR_P(x) STRCMP_ONE(x) STRCMP_ONE(x + 0x10) STRCMP_ONE(x + 0x20) STRCMP_ONE(x + 0x30)
#define STR_A(x) STR_P(x) STR_P(x + 4) STR_P(x + 8) STR_P(x + 12)

static void string_compares(void)
{
    for (int k = 0; k < 4; k++)
    {
        char ta[16] = { 0 }, tb[16] = { 0 };
        for (int j = 0; j < 16; j++) { ta[j] = strs[2 * k + 1][j]; tb[j] = strs[2 * k][j]; }
        if (k == 3) { ta[1] = 0; ta[2] = 'b'; }
        __m128i a = _mm_loadu_si128((const __m128i *)ta), b = _mm_loadu_si128((const __m128i *)tb);
        int32_t la = (int32_t)(k * 5 - 3), lb = (int32_t)(17 - k * 4); /* negative and past-the-end lengths too */
        STR_A(0) STR_A(1) STR_A(2) STR_A(3) STR_A(0x40) STR_A(0x41) STR_A(0x42) STR_A(0x43)
    }
}

/* strlen by PCMPISTRI, as string libraries use it. */
static uint32_t sse42_strlen(const char *s)
{
    uint32_t n = 0;
    for (;;)
    {
        uint32_t idx;
        __m128i v = _mm_loadu_si128((const __m128i *)(s + n));
        __asm__ volatile("pcmpistri $0x08, %1, %1" : "=c"(idx) : "x"(v) : "cc");
        if (idx < 16) return n + idx;
        n += 16;
    }
}

static void crc(void)
{
    static uint8_t buf[64];
    for (int k = 0; k < 64; k++) buf[k] = (uint8_t)(k * 37 + 11);
    uint32_t c8 = ~0u, c16 = ~0u, c32 = ~0u, c64 = ~0u;
    for (int k = 0; k < 64; k++) c8 = _mm_crc32_u8(c8, buf[k]);
    for (int k = 0; k < 64; k += 2) c16 = _mm_crc32_u16(c16, (uint16_t)(buf[k] | buf[k + 1] << 8));
    for (int k = 0; k < 64; k += 4) { uint32_t w; __builtin_memcpy(&w, buf + k, 4); c32 = _mm_crc32_u32(c32, w); }
    for (int k = 0; k < 64; k += 8)
    {
        uint64_t q; __builtin_memcpy(&q, buf + k, 8);
#ifdef __x86_64__
        c64 = (uint32_t)_mm_crc32_u64(c64, q);
#else
        c64 = _mm_crc32_u32(_mm_crc32_u32(c64, (uint32_t)q), (uint32_t)(q >> 32)); /* the same bytes in order */
#endif
    }
    puts_("crc32 "); hex(c8, 8); sp(); hex(c16, 8); sp(); hex(c32, 8); sp(); hex(c64, 8); endl();
    puts_("strlen "); hex(sse42_strlen("the quick brown fox jumps over the lazy dog, twice over"), 4); endl();
}

static const double dvals[] = { 0.5, -0.5, 1.5, 2.5, -2.5, 0.49999999999999994, 4503599627370495.5, -0.0, 1e300,
                                4.9e-324, -1e-310, 123456.789 };
static const float fvals[] = { 0.5f, -1.5f, 2.5f, 8388607.5f, -0.0f, 1e-40f, 3.4e38f, -7.25f };

#define ROUND_ONE(IMM)                                                                                           \
    {                                                                                                            \
        mxcsr_set(0x1F80 | rc << 13);                                                                            \
        __m128d d = _mm_round_pd(pd, IMM); __m128d sd = _mm_round_sd(pd, pd, IMM);                               \
        __m128 s = _mm_round_ps(ps, IMM); __m128 ss = _mm_round_ss(ps, ps, IMM);                                 \
        OPAQUE_FP(d); OPAQUE_FP(sd); OPAQUE_FP(s); OPAQUE_FP(ss);                                                \
        uint32_t fl = mxcsr_get() & 0x3F;                                                                        \
        puts_("round "); hex(IMM, 2); sp(); hex(rc, 1); sp(); hex(k, 1); put(':'); vec(_mm_castpd_si128(d)); sp(); \
        vec(_mm_castpd_si128(sd)); sp(); vec(_mm_castps_si128(s)); sp(); vec(_mm_castps_si128(ss)); sp(); mxflags(fl); endl(); \
    }

static void rounding(void)
{
    for (int k = 0; k < 6; k++)
        for (uint32_t rc = 0; rc < 4; rc += 3)
        {
            __m128d pd = _mm_loadu_pd(dvals + 2 * k);
            __m128 ps = _mm_setr_ps(fvals[(k + 0) & 7], fvals[(k + 3) & 7], fvals[(k + 5) & 7], fvals[(k + 6) & 7]);
            ROUND_ONE(0) ROUND_ONE(1) ROUND_ONE(2) ROUND_ONE(3) ROUND_ONE(4) ROUND_ONE(8) ROUND_ONE(9) ROUND_ONE(10)
            ROUND_ONE(11) ROUND_ONE(12)
        }
    mxcsr_set(0x1F80);
}

#define DP_ONE(IMM)                                                                                              \
    {                                                                                                            \
        mxcsr_set(0x1F80);                                                                                       \
        __m128 r = _mm_dp_ps(a, b, IMM); __m128d rd = _mm_dp_pd(c, d, IMM);                                      \
        OPAQUE_FP(r); OPAQUE_FP(rd);                                                                             \
        puts_("dp "); hex(IMM, 2); sp(); hex(k, 1); put(':'); vec(_mm_castps_si128(r)); sp(); vec(_mm_castpd_si128(rd)); \
        sp(); mxflags(mxcsr_get() & 0x3F); endl();                                                                \
    }

static void fp_ops(void)
{
    for (int k = 0; k < 3; k++)
    {
        __m128 a = _mm_setr_ps(1.5f, -2.25f, 3e-39f * (float)k, 1e30f), b = _mm_setr_ps(0.1f * (float)(k + 1), 7.0f, 1e10f, -1e10f);
        __m128d c = _mm_setr_pd(0.1 * (k + 1), -1e308), d = _mm_setr_pd(3.0, 2.0 - k);
        DP_ONE(0xFF) DP_ONE(0x31) DP_ONE(0x72) DP_ONE(0xF1) DP_ONE(0x13) DP_ONE(0x22) DP_ONE(0x8C) DP_ONE(0x00)
        mxcsr_set(0x1F80);
        __m128 h1 = _mm_hadd_ps(a, b), h2 = _mm_hsub_ps(a, b), h3 = _mm_addsub_ps(a, b);
        __m128d h4 = _mm_hadd_pd(c, d), h5 = _mm_hsub_pd(c, d), h6 = _mm_addsub_pd(c, d);
        OPAQUE_FP(h1); OPAQUE_FP(h2); OPAQUE_FP(h3); OPAQUE_FP(h4); OPAQUE_FP(h5); OPAQUE_FP(h6);
        puts_("horiz "); hex(k, 1); put(':'); vec(_mm_castps_si128(h1)); sp(); vec(_mm_castps_si128(h2)); sp();
        vec(_mm_castps_si128(h3)); endl();
        puts_("horizd "); hex(k, 1); put(':'); vec(_mm_castpd_si128(h4)); sp(); vec(_mm_castpd_si128(h5)); sp();
        vec(_mm_castpd_si128(h6)); sp(); mxflags(mxcsr_get() & 0x3F); endl();
        __m128 dup = _mm_movehdup_ps(a), dupl = _mm_moveldup_ps(b); __m128d ddup = _mm_movedup_pd(c);
        OPAQUE_FP(dup); OPAQUE_FP(dupl); OPAQUE_FP(ddup);
        puts_("dup "); vec(_mm_castps_si128(dup)); sp(); vec(_mm_castps_si128(dupl)); sp(); vec(_mm_castpd_si128(ddup)); endl();
    }
    /* FISTTP: truncation whatever the x87 rounding mode, all three sizes, and the integer indefinite out of range. */
    static const long double lds[] = { -2.75L, 2.75L, 40000.5L, -3e9L, 1e19L, -0.9L };
    for (int k = 0; k < 6; k++)
    {
        int16_t w; int32_t dw; int64_t qw;
        __asm__ volatile("fldt %3\n\tfisttps %0\n\tfldt %3\n\tfisttpl %1\n\tfldt %3\n\tfisttpll %2"
                         : "=m"(w), "=m"(dw), "=m"(qw) : "m"(lds[k]));
        uint16_t fsw; __asm__ volatile("fnstsw %0\n\tfnclex" : "=m"(fsw));
        puts_("fisttp "); hex((uint16_t)w, 4); sp(); hex((uint32_t)dw, 8); sp(); hex((uint64_t)qw, 16); sp(); hex(fsw & 0x3F, 2); endl();
    }
}

#define IMM_OPS(IMM)                                                                                             \
    {                                                                                                            \
        __m128i r1 = _mm_blend_epi16(a, b, IMM), r2 = _mm_mpsadbw_epu8(a, b, (IMM) & 7);                         \
        __m128 r3 = _mm_insert_ps(_mm_castsi128_ps(a), _mm_castsi128_ps(b), IMM);                                \
        __m128 r4 = _mm_blend_ps(_mm_castsi128_ps(a), _mm_castsi128_ps(b), (IMM) & 15);                          \
        OPAQUE_FP(r1); OPAQUE_FP(r2); OPAQUE_FP(r3); OPAQUE_FP(r4);                                              \
        puts_("imm "); hex(IMM, 2); sp(); vec(r1); sp(); vec(r2); sp(); vec(_mm_castps_si128(r3)); sp();         \
        vec(_mm_castps_si128(r4)); sp(); hex((uint32_t)_mm_extract_epi8(a, (IMM) & 15), 2); sp();                \
        hex((uint32_t)_mm_extract_epi32(b, (IMM) & 3), 8); sp(); hex((uint32_t)_mm_extract_ps(_mm_castsi128_ps(a), (IMM) & 3), 8); sp(); \
        vec(_mm_insert_epi8(a, 0x5A, (IMM) & 15)); endl();                                                       \
    }

static void integer_ops(uint32_t seed)
{
    for (int k = 0; k < 4; k++)
    {
        uint32_t w[8];
        for (int j = 0; j < 8; j++) w[j] = xorshift32(&seed) >> (j & 3) * 8;
        __m128i a = _mm_setr_epi32((int)w[0], (int)w[1], (int)w[2], (int)w[3]);
        __m128i b = _mm_setr_epi32((int)w[4], (int)w[5], (int)w[6], (int)w[7]);
        if (k == 1) b = _mm_and_si128(a, b);
        if (k == 2) b = _mm_andnot_si128(a, b);
        puts_("int "); hex(k, 1); put(':');
        vec(_mm_min_epi8(a, b)); sp(); vec(_mm_max_epu16(a, b)); sp(); vec(_mm_min_epu32(a, b)); sp(); vec(_mm_max_epi32(a, b)); endl();
        puts_("mul "); vec(_mm_mullo_epi32(a, b)); sp(); vec(_mm_mul_epi32(a, b)); sp(); vec(_mm_packus_epi32(a, b)); sp();
        vec(_mm_cmpeq_epi64(a, b)); sp(); vec(_mm_cmpgt_epi64(a, b)); sp(); vec(_mm_minpos_epu16(a)); endl();
        puts_("mov "); vec(_mm_cvtepi8_epi16(a)); sp(); vec(_mm_cvtepu8_epi64(b)); sp(); vec(_mm_cvtepi16_epi64(a)); sp();
        vec(_mm_cvtepu32_epi64(b)); sp(); vec(_mm_cvtepi32_epi64(a)); sp(); vec(_mm_cvtepu16_epi32(b)); endl();
        puts_("test "); hex((uint32_t)_mm_testz_si128(a, b), 1); hex((uint32_t)_mm_testc_si128(a, b), 1);
        hex((uint32_t)_mm_testnzc_si128(a, b), 1); sp(); vec(_mm_blendv_epi8(a, b, _mm_xor_si128(a, b))); sp();
        vec(_mm_castps_si128(_mm_blendv_ps(_mm_castsi128_ps(a), _mm_castsi128_ps(b), _mm_castsi128_ps(b)))); sp();
        vec(_mm_castpd_si128(_mm_blendv_pd(_mm_castsi128_pd(a), _mm_castsi128_pd(b), _mm_castsi128_pd(a)))); sp();
        vec(_mm_insert_epi32(a, (int)w[5], 2)); sp(); vec(_mm_lddqu_si128((const __m128i *)w)); sp();
        static __m128i aligned;
        aligned = b;
        vec(_mm_stream_load_si128(&aligned)); endl();
        IMM_OPS(0x00) IMM_OPS(0x35) IMM_OPS(0x5A) IMM_OPS(0xC3) IMM_OPS(0xFF) IMM_OPS(0x96)
    }
}

/* Loops gcc -O2 -msse4.2 vectorises with PMINSD/PMAXUD/PMULLD/PMOVSX. */
static int32_t va[256], vb[256], vc[256];
static int8_t vs[256];

static uint32_t vector_loops(uint32_t seed)
{
    for (int k = 0; k < 256; k++) { va[k] = (int32_t)xorshift32(&seed); vb[k] = (int32_t)xorshift32(&seed) >> (k & 15); vs[k] = (int8_t)xorshift32(&seed); }
    for (int k = 0; k < 256; k++) vc[k] = (va[k] < vb[k] ? va[k] : vb[k]) * vs[k] + ((uint32_t)va[k] > (uint32_t)vb[k] ? va[k] : vb[k]);
    uint32_t h = 0;
    for (int k = 0; k < 256; k++) h = rotl32(h, 3) ^ (uint32_t)vc[k];
    return h;
}

uint32_t wl_run(uint32_t n)
{
    wl_fp_enable();
    uint32_t total = 0;
    for (uint32_t rep = 0; rep < n; rep++)
    {
        printing = rep == 0;
        sum = 0;
        string_compares();
        crc();
        rounding();
        fp_ops();
        integer_ops(0x9E3779B9u);
        puts_("vector "); hex(vector_loops(12345u), 8); endl();
        total = rotl32(total, 1) ^ sum;
    }
    return total;
}
