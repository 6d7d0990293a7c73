/* Multiboot v1 entry for the workload images, assembled for both -m32 and -m64.
   32-bit build: own GDT, stack, zeroed BSS, then kmain(magic, info) in flat protected mode, paging off.
   64-bit build: the same, then identity page tables (0..1 GiB in 2 MiB pages, plus the xAPIC page uncached),
   PAE + EFER.LME + CR0.PG, a far jump into a 64-bit code segment, and kmain in long mode.
   ap_entry32 is where the SMP workload's real-mode trampoline lands each AP in 32-bit protected mode. */

#define MB_MAGIC 0x1BADB002
#define MB_FLAGS 0x00000003
#define SEL_CODE64 0x08
#define SEL_DATA   0x10
#define SEL_CODE32 0x18
#define STACK_SIZE 16384
#define MAX_CPUS   16
#define LAPIC_BASE 0xFEE00000

    .section .multiboot, "a"
    .align 4
    .long MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)

/* Our GDT, then CS = flat 32-bit code and every data segment = flat data: the BSP after the loader, an AP after the
   trampoline. */
.macro enter_flat32
    lgdt gdt_ptr
    ljmp $SEL_CODE32, $1f
1:  mov $SEL_DATA, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    mov %eax, %fs
    mov %eax, %gs
.endm

    .section .text.boot, "ax"
    .code32
    .globl _start
_start:
    cli
    cld
    mov %eax, %esi                  /* multiboot magic */
    mov %ebx, %edi                  /* multiboot information (physical) */
    enter_flat32
    mov $__bss_start, %edx          /* zero the BSS (stack and page tables live there) */
    mov $__bss_end, %ecx
2:  cmp %ecx, %edx
    jae 3f
    movl $0, (%edx)
    add $4, %edx
    jmp 2b
3:  mov $(bsp_stack + STACK_SIZE), %esp

#ifdef __x86_64__
    /* PML4[0] -> PDPT; PDPT[0] -> PD0 (identity 0..1 GiB), PDPT[3] -> PD3 (the xAPIC page, PCD|PWT). */
    movl $(pdpt + 3), pml4
    movl $(pd0 + 3), pdpt
    movl $(pd3 + 3), pdpt + 24
    xor %ecx, %ecx
    mov $0x83, %eax                 /* present | writable | 2 MiB page */
4:  mov %eax, pd0(,%ecx,8)
    add $0x200000, %eax
    inc %ecx
    cmp $512, %ecx
    jb 4b
    movl $(LAPIC_BASE | 0x9B), pd3 + ((LAPIC_BASE >> 21) & 511) * 8
    call long_mode_on
    ljmp $SEL_CODE64, $bsp64

long_mode_on:                       /* SDM Vol. 3A 10.8.5: PAE, CR3, EFER.LME, then CR0.PG */
    mov %cr4, %eax
    or $0x20, %eax
    mov %eax, %cr4
    mov $pml4, %eax
    mov %eax, %cr3
    mov $0xC0000080, %ecx
    rdmsr
    or $0x100, %eax
    wrmsr
    mov %cr0, %eax
    or $0x80000001, %eax
    mov %eax, %cr0
    ret

    .code64
bsp64:
    mov $SEL_DATA, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    mov $(bsp_stack + STACK_SIZE), %esp   /* writing ESP zero-extends into RSP */
    /* kmain(magic = esi, info = edi): System V passes them in edi, esi */
    xchg %esi, %edi
    call kmain
5:  cli
    hlt
    jmp 5b
#else
    push %edi
    push %esi
    call kmain
5:  cli
    hlt
    jmp 5b
#endif

    .code32
    .globl ap_entry32
ap_entry32:                         /* from the trampoline: flat 32-bit protected mode, DS = SEL_DATA */
    enter_flat32
    mov $1, %ebx                    /* this AP's index (1 .. MAX_CPUS-1) and so its stack */
    lock xadd %ebx, ap_next_index
    cmp $MAX_CPUS, %ebx
    jae 9f
    mov %ebx, %esp
    shl $14, %esp                   /* STACK_SIZE = 1 << 14 */
    add $(ap_stacks + STACK_SIZE), %esp
#ifdef __x86_64__
    call long_mode_on
    ljmp $SEL_CODE64, $ap64
    .code64
ap64:
    mov $SEL_DATA, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    mov %esp, %esp                  /* RSP's upper half is undefined after the switch */
    mov %ebx, %edi
    call ap_main
#else
    push %ebx
    call ap_main
#endif
9:  cli
    hlt
    jmp 9b

    .section .data
    .align 8
gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF        /* 0x08: 64-bit code */
    .quad 0x00CF92000000FFFF        /* 0x10: flat data */
    .quad 0x00CF9A000000FFFF        /* 0x18: flat 32-bit code */
gdt_ptr:
    .word gdt_ptr - gdt - 1
    .long gdt
ap_next_index:
    .long 1

    .section .bss.pagetables, "aw", @nobits
    .align 4096
#ifdef __x86_64__
pml4: .skip 4096
pdpt: .skip 4096
pd0:  .skip 4096
pd3:  .skip 4096
#endif
    .align 16
bsp_stack: .skip STACK_SIZE
    .globl ap_stacks
ap_stacks: .skip STACK_SIZE * MAX_CPUS
