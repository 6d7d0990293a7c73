/* SMP atomics: the BSP reads the CPU count from fw_cfg (FW_CFG_NB_CPUS), starts every AP with INIT, INIT
   de-assert, STARTUP, STARTUP through the xAPIC ICR (the trampoline at 0x8000), then every CPU adds to shared
   counters n times each: LOCK XADD, a LOCK CMPXCHG retry loop, a 64-bit compare-exchange loop (CMPXCHG8B in
   the 32-bit build), and a plain increment under an XCHG spinlock. The BSP waits for all, checks the totals
   against their closed forms (status 1 if any differs) and prints a checksum of them, which therefore depends
   only on n and the CPU count (the bench and tests run it with 2 vCPUs). */
#include "wl.h"
const char wl_name[] = "smp";
const uint32_t wl_default_n = 1500000;

#define MAX_CPUS 16          /* as boot.S */

/* Closed forms of the totals when `cpus` CPUs each run n iterations; CPU c adds c + 1 under the lock. */
static uint32_t checksum_of(uint32_t cpus, uint32_t xadd, uint32_t cas, uint32_t locked, uint64_t wide)
{
    uint32_t h = 0x811C9DC5u;
    uint32_t parts[6] = { cpus, xadd, cas, locked, (uint32_t)wide, (uint32_t)(wide >> 32) };
    for (int i = 0; i < 6; i++) h = rotl32(h ^ parts[i], 11) * 0x01000193u;
    return h;
}

static uint32_t cas_per_cpu(uint32_t n) { uint32_t s = 0; for (uint32_t i = 0; i < n; i++) s += i & 7; return s; }
static uint64_t wide_per_cpu(uint32_t n) { uint64_t s = 0; for (uint32_t i = 0; i < n; i++) s += 0x100000001ull + i; return s; }

static uint32_t expected_checksum(uint32_t cpus, uint32_t n)
{
    return checksum_of(cpus, cpus * n, cpus * cas_per_cpu(n), n * (cpus * (cpus + 1) / 2), cpus * wide_per_cpu(n));
}

#ifdef WL_HOST_REF
uint32_t wl_run(uint32_t n) { return expected_checksum(2, n); }
#else

void puts_serial(const char *s);
void putdec(uint32_t v);
extern const uint8_t tramp_start[], tramp_end[];

#define TRAMP_BASE 0x8000u
#define LAPIC_BASE 0xFEE00000u
#define LAPIC_SVR 0xF0
#define LAPIC_ICR_LOW 0x300
#define LAPIC_ICR_HIGH 0x310

static volatile uint32_t xadd_total, cas_total, locked_total, lock_word, online, done, go;
static volatile uint64_t wide_total;
static uint32_t iterations;

static inline void pause(void) { __asm__ volatile("pause" ::: "memory"); }
static inline void outw(uint16_t port, uint16_t v) { __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port) { uint8_t v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }

static inline uint32_t lock_xadd(volatile uint32_t *p, uint32_t v)
{
    __asm__ volatile("lock xaddl %0, %1" : "+r"(v), "+m"(*p) : : "memory");
    return v;
}

static inline uint32_t lock_cmpxchg(volatile uint32_t *p, uint32_t expected, uint32_t desired)
{
    __asm__ volatile("lock cmpxchgl %2, %1" : "+a"(expected), "+m"(*p) : "r"(desired) : "memory");
    return expected;
}

static inline uint32_t xchg(volatile uint32_t *p, uint32_t v)
{
    __asm__ volatile("xchgl %0, %1" : "+r"(v), "+m"(*p) : : "memory");
    return v;
}

static volatile uint32_t *lapic(uint32_t reg) { return (volatile uint32_t *)(uintptr_t)(LAPIC_BASE + reg); }

static void icr_send(uint32_t apic_id, uint32_t low)
{
    *lapic(LAPIC_ICR_HIGH) = apic_id << 24;
    *lapic(LAPIC_ICR_LOW) = low;
    for (uint32_t spin = 0; spin < 1000000 && (*lapic(LAPIC_ICR_LOW) & (1u << 12)); spin++) pause();
}

static void work(uint32_t cpu)
{
    for (uint32_t i = 0; i < iterations; i++)
    {
        lock_xadd(&xadd_total, 1);

        uint32_t old = cas_total, seen;
        while ((seen = lock_cmpxchg(&cas_total, old, old + (i & 7))) != old) old = seen;

        uint64_t w = wide_total;
        while (!__sync_bool_compare_and_swap(&wide_total, w, w + 0x100000001ull + i)) w = wide_total;

        while (xchg(&lock_word, 1)) while (lock_word) pause();
        locked_total = locked_total + cpu + 1;
        __asm__ volatile("" ::: "memory");
        lock_word = 0;
    }
    lock_xadd(&done, 1);
}

/* Entered from boot.S's ap_entry32 with this AP's index (1 .. MAX_CPUS - 1) and its own stack. */
void ap_main(uint32_t index)
{
    lock_xadd(&online, 1);
    while (!go) pause();
    work(index);
    for (;;) __asm__ volatile("cli; hlt");
}

uint32_t wl_run(uint32_t n)
{
    outw(0x510, 0x05);                                  /* fw_cfg selector: FW_CFG_NB_CPUS (16-bit LE) */
    uint32_t cpus = inb(0x511);
    cpus |= (uint32_t)inb(0x511) << 8;
    if (cpus == 0) cpus = 1;
    if (cpus > MAX_CPUS) cpus = MAX_CPUS;
    iterations = n;

    volatile uint8_t *tramp = (volatile uint8_t *)(uintptr_t)TRAMP_BASE;
    for (const uint8_t *p = tramp_start; p < tramp_end; p++) *tramp++ = *p;
    *lapic(LAPIC_SVR) |= 1u << 8;                       /* software-enable the local APIC */

    for (uint32_t id = 1; id < cpus; id++)
    {
        icr_send(id, 0x0000C500);                       /* INIT, level, assert */
        icr_send(id, 0x00008500);                       /* INIT, level, de-assert */
        icr_send(id, 0x00000600 | (TRAMP_BASE >> 12));  /* STARTUP */
        icr_send(id, 0x00000600 | (TRAMP_BASE >> 12));  /* STARTUP again, as the MP spec says */
    }
    for (uint32_t spin = 0; online < cpus - 1 && spin < 200000000; spin++) pause();
    uint32_t running = online + 1;
    if (running != cpus)
    {
        puts_serial("smp: only ");
        putdec(running);
        puts_serial(" CPUs came online\n");
        wl_status = 1;
    }

    go = 1;
    work(0);
    while (done < running) pause();

    uint32_t sum = checksum_of(running, xadd_total, cas_total, locked_total, wide_total);
    if (sum != expected_checksum(running, n)) wl_status = 1;
    puts_serial("smp: ");
    putdec(running);
    puts_serial(" CPUs, xadd ");
    putdec(xadd_total);
    puts_serial(", cmpxchg ");
    putdec(cas_total);
    puts_serial(", locked ");
    putdec(locked_total);
    puts_serial("\n");
    return sum;
}
#endif
