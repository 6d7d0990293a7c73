/* The SMP workload's AP trampoline: the BSP copies tramp_start..tramp_end to TRAMP_BASE (below 1 MiB, so a
   STARTUP vector can name it: vector = TRAMP_BASE >> 12). Real mode -> flat 32-bit protected mode -> ap_entry32
   in the image, which enters long mode in the 64-bit build. Written position-dependent for TRAMP_BASE. */
#define TRAMP_BASE 0x8000

    .section .rodata.trampoline, "a"
    .code16
    .globl tramp_start, tramp_end
tramp_start:
    cli
    mov %cs, %ax
    mov %ax, %ds
    lgdtl tramp_gdt_ptr - tramp_start   /* 0x66: load a 32-bit GDT base */
    mov %cr0, %eax
    or $1, %eax
    mov %eax, %cr0
    ljmpl $0x18, $(TRAMP_BASE + tramp_pm - tramp_start)
    .code32
tramp_pm:
    mov $0x10, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    mov $ap_entry32, %eax
    jmp *%eax
    .align 8
tramp_gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF
    .quad 0x00CF92000000FFFF
    .quad 0x00CF9A000000FFFF
tramp_gdt_ptr:
    .word 31
    .long TRAMP_BASE + tramp_gdt - tramp_start
tramp_end:
