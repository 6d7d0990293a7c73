/* printf-style formatting of doubles, twice: digit generation in double (SSE2 scalar code) and in long double (the
   x87: FLD/FMUL/FDIV/FISTP with FLDCW), plus results computed under each MXCSR and x87 rounding mode, x87 precision
   control, SQRTSD/FSQRT and the x87 transcendentals (to 12 digits: QEMU computes those in double). The first pass
   prints every line on the serial port, so the whole text can be compared with QEMU's; the checksum folds it. */
#include "wlfp.h"
const char wl_name[] = "fpprint";
const uint32_t wl_default_n = 300;

#if defined WL_HOST_REF && defined FPPRINT_STDOUT
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
static void dec(int v) { char b[12]; int i = 0; if (v < 0) { put('-'); v = -v; } do b[i++] = (char)('0' + v % 10); while (v /= 10); while (i) put(b[--i]); }

static uint64_t bits(double d) { union { double d; uint64_t u; } v = { d }; return v.u; }

/* %.{prec}e of v, digits by repeated scaling in the type T: double (SSE2) for fmt_d, long double (x87) for fmt_ld.
   One body for both, so the two paths differ only in the arithmetic that runs. */
#define DEFINE_FMT(name, T, SIGNBIT, INF, BIG, SMALL, BIGEXP)                                                  \
static void name(T v, int prec)                                                                                 \
{                                                                                                               \
    if (v != v) { puts_("nan"); return; }                                                                      \
    if (SIGNBIT) { put('-'); v = -v; }                                                                          \
    if (v > INF) { puts_("inf"); return; }                                                                     \
    int e10 = 0;                                                                                                \
    if (v != 0)                                                                                                 \
    {                                                                                                           \
        while (v >= BIG) { v /= BIG; e10 += BIGEXP; }                                                           \
        while (v >= 10) { v /= 10; e10++; }                                                                     \
        while (v < SMALL) { v *= BIG; e10 -= BIGEXP; }                                                          \
        while (v < 1) { v *= 10; e10--; }                                                                       \
    }                                                                                                           \
    char dg[40];                                                                                                \
    for (int i = 0; i <= prec + 1; i++) { int d = (int)v; if (d > 9) d = 9; dg[i] = (char)d; v = (v - d) * 10; } \
    if (dg[prec + 1] >= 5)                                                                                      \
        for (int i = prec; i >= 0; i--) { if (++dg[i] < 10) break; dg[i] = 0; if (i == 0) { dg[0] = 1; e10++; } } \
    put((char)('0' + dg[0])); put('.');                                                                         \
    for (int i = 1; i <= prec; i++) put((char)('0' + dg[i]));                                                   \
    put('e'); if (e10 >= 0) put('+'); dec(e10);                                                                 \
}

DEFINE_FMT(fmt_d, double, bits(v) >> 63, 1.7976931348623157e308, 1e16, 1e-16, 16)
DEFINE_FMT(fmt_ld, long double, v < 0 || (v == 0 && 1 / v < 0), 1.18e4932L, 1e64L, 1e-64L, 64)

static void show(const char *name, double d, long double ld)
{
    puts_(name); puts_(" d="); fmt_d(d, 16); puts_(" bits="); hex(bits(d), 16);
    puts_(" ld="); fmt_ld(ld, 19); endl();
}

static void set_mxcsr_rc(int rc)
{
    uint32_t m;
    __asm__ volatile("stmxcsr %0" : "=m"(m));
    m = (m & ~0x6000u) | (uint32_t)rc << 13;
    __asm__ volatile("ldmxcsr %0" : : "m"(m));
}

static void set_fcw(uint16_t cw) { __asm__ volatile("fldcw %0" : : "m"(cw)); }

static long double x87_op(int op, long double x)
{
    long double r;
    switch (op)
    {
    case 0: __asm__("fsin" : "=t"(r) : "0"(x)); break;
    case 1: __asm__("fcos" : "=t"(r) : "0"(x)); break;
    case 2: __asm__("fld1; fpatan" : "=t"(r) : "0"(x)); break;      /* atan(x / 1) */
    case 3: __asm__("fld1; fxch; fyl2x" : "=t"(r) : "0"(x)); break; /* 1 * log2(x) */
    default: __asm__("f2xm1" : "=t"(r) : "0"(x)); break;
    }
    return r;
}

uint32_t wl_run(uint32_t n)
{
    wl_fp_enable();
    static const double values[] = { 0.0, -0.0, 1.0, 0.1, 1.0 / 3, 3.141592653589793, -2.5, 123456789.125, 1e300, 1e-300,
                                      4.9406564584124654e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 0.5e-5, 6.02214076e23 };
    uint32_t total = 0;
    for (uint32_t rep = 0; rep < n; rep++)
    {
        sum = 0;
        pos = 0;
        printing = rep == 0;
        for (unsigned k = 0; k < sizeof values / sizeof values[0]; k++)
        {
            double d = values[k];
            OPAQUE_FP(d);
            puts_("v"); dec((int)k); show("", d, d);
        }
        double h = 0; long double hl = 0;
        for (int i = 1; i <= 1000; i++) { h += 1.0 / i; hl += 1.0L / i; }
        show("harmonic", h, hl);
        double two = 2 + (double)(rep & 0);
        OPAQUE_FP(two);
        show("sqrt2", __builtin_sqrt(two), __builtin_sqrtl((long double)two));
        show("inf", 1 / (two - 2), -1 / (long double)(two - 2));
        show("nan", (two - 2) / (two - 2), 0 * (1 / (long double)(two - 2)));
        for (int rc = 0; rc < 4; rc++)
        {
            /* Flags from a clean MXCSR: QEMU 7.2 does not raise DE for SSE denormal operands (the host does), so the
               denormals printed above must not reach these lines. */
            __asm__ volatile("ldmxcsr %0" : : "m"((uint32_t){0x1F80}));
            set_mxcsr_rc(rc);
            double a = 1, b = 3, c = 2;
            OPAQUE_FP(a); OPAQUE_FP(b); OPAQUE_FP(c);
            double q = a / b, r = -c / b, s = __builtin_sqrt(c), m = 1e308 * (c * 5), t = 1e-300 / (b * 1e10);
            set_mxcsr_rc(0);
            uint32_t mx;
            __asm__ volatile("stmxcsr %0" : "=m"(mx));
            puts_("mxcsr rc="); dec(rc); puts_(" flags="); hex(mx & 0x3F, 2); endl();
            show(" 1/3", q, q); show(" -2/3", r, r); show(" sqrt2", s, s); show(" big", m, m); show(" tiny", t, t);
            __asm__ volatile("ldmxcsr %0" : : "m"((uint32_t){0x1F80}));
        }
        for (int pc = 0; pc < 4; pc++)
            for (int rc = 0; rc < 4; rc++)
            {
                if (pc == 1) continue; /* reserved */
                set_fcw((uint16_t)(0x37F & ~0x0F00) | (uint16_t)(pc << 8 | rc << 10));
                long double one = 1, three = 3;
                __asm__ volatile("" : "+t"(one));
                long double q = one / three;
                long double s = __builtin_sqrtl(three);
                set_fcw(0x37F);
                puts_("x87 pc="); dec(pc); puts_(" rc="); dec(rc); endl();
                show(" 1/3", (double)q, q); show(" sqrt3", (double)s, s);
            }
        static const long double args[] = { 0.5L, 1.0L, -0.75L, 3.0L, 1e-3L };
        for (int op = 0; op < 5; op++)
            for (unsigned k = 0; k < sizeof args / sizeof args[0]; k++)
            {
                long double x = args[k];
                if (op == 3 && x <= 0) continue;
                if (op == 4 && (x > 1 || x < -1)) continue;
                puts_(op == 0 ? "fsin(" : op == 1 ? "fcos(" : op == 2 ? "fpatan(" : op == 3 ? "fyl2x(" : "f2xm1(");
                fmt_ld(x, 4); puts_(")="); fmt_ld(x87_op(op, x), 11); endl();
            }
        total = rotl32(total, 1) ^ sum;
    }
    return total;
}
