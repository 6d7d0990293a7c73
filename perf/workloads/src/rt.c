/* Freestanding runtime of the workload images: COM1 output, the multiboot command line (n=COUNT), and
   isa-debug-exit. kmain is called by boot.S in 32-bit protected mode or in long mode. */
#include "wl.h"

#define COM1 0x3F8
#define DEBUG_EXIT 0xF4

uint32_t wl_status;

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port) { uint8_t v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }

static void serial_init(void)
{
    outb(COM1 + 1, 0x00);   /* no interrupts */
    outb(COM1 + 3, 0x80);   /* DLAB */
    outb(COM1 + 0, 0x01);   /* divisor 1: 115200 baud */
    outb(COM1 + 1, 0x00);
    outb(COM1 + 3, 0x03);   /* 8N1 */
}

void putc_serial(char c)
{
    for (int spin = 0; spin < 100000 && !(inb(COM1 + 5) & 0x20); spin++) { }  /* THR empty */
    outb(COM1, (uint8_t)c);
}

void puts_serial(const char *s) { while (*s) putc_serial(*s++); }

void putdec(uint32_t v)
{
    char buf[12];
    int i = 0;
    do { buf[i++] = (char)('0' + v % 10); v /= 10; } while (v);
    while (i) putc_serial(buf[--i]);
}

void puthex(uint32_t v)
{
    puts_serial("0x");
    for (int s = 28; s >= 0; s -= 4) putc_serial("0123456789abcdef"[(v >> s) & 15]);
}

void debug_exit(uint32_t value)
{
    outl(DEBUG_EXIT, value);
    for (;;) __asm__ volatile("cli; hlt");
}

/* gcc may call these for struct copies even when freestanding; plain loops (built with
   -fno-tree-loop-distribute-patterns so they do not turn back into calls to themselves). */
void *memcpy(void *d, const void *s, size_t n) { uint8_t *p = d; const uint8_t *q = s; while (n--) *p++ = *q++; return d; }
void *memset(void *d, int c, size_t n) { uint8_t *p = d; while (n--) *p++ = (uint8_t)c; return d; }
void *memmove(void *d, const void *s, size_t n)
{
    uint8_t *p = d; const uint8_t *q = s;
    if (p < q) while (n--) *p++ = *q++; else { p += n; q += n; while (n--) *--p = *--q; }
    return d;
}
int memcmp(const void *a, const void *b, size_t n)
{
    const uint8_t *p = a, *q = b;
    for (; n; n--, p++, q++) if (*p != *q) return *p - *q;
    return 0;
}

/* n=COUNT anywhere in the command line (QEMU prefixes it with the kernel's file name). */
static uint32_t count_from_cmdline(const char *s, uint32_t fallback)
{
    for (const char *p = s; *p; p++)
    {
        if (p[0] != 'n' || p[1] != '=' || (p != s && p[-1] != ' ')) continue;
        uint32_t v = 0;
        const char *q = p + 2;
        if (*q < '0' || *q > '9') continue;
        while (*q >= '0' && *q <= '9') v = v * 10 + (uint32_t)(*q++ - '0');
        return v ? v : fallback;
    }
    return fallback;
}

#ifdef __x86_64__
#define MODE "64"
#else
#define MODE "32"
#endif

void kmain(uint32_t magic, uint32_t info)
{
    serial_init();
    uint32_t n = wl_default_n;
    if (magic == 0x2BADB002)
    {
        const uint32_t *mbi = (const uint32_t *)(uintptr_t)info;
        if (mbi[0] & 4) n = count_from_cmdline((const char *)(uintptr_t)mbi[4], n);  /* flags bit 2: cmdline */
    }
    /* The host times the workload from this line to the checksum line, so start-up is not in the figure. */
    puts_serial("workload ");
    puts_serial(wl_name);
    puts_serial(" start\n");
    uint32_t sum = wl_run(n);
    puts_serial("workload ");
    puts_serial(wl_name);
    puts_serial(" mode=" MODE " n=");
    putdec(n);
    puts_serial(" checksum=");
    puthex(sum);
    puts_serial(wl_status ? " FAIL\n" : " ok\n");
    debug_exit(wl_status);
}

/* Only the smp workload starts APs; everywhere else an AP that somehow arrives just parks. */
__attribute__((weak)) void ap_main(uint32_t index)
{
    (void)index;
    for (;;) __asm__ volatile("cli; hlt");
}
