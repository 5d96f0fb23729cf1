/* virt guest entry, secondary entry, exception vectors, PSCI conduits. */
#define FRAME 304       /* sizeof(struct exc_frame) */

    .section .text.entry, "ax"
    .globl _start
_start:
    mov     x19, x0                 /* DTB address, or 0 for an ELF boot */
    adrp    x1, boot_stack_top
    add     x1, x1, :lo12:boot_stack_top
    mov     sp, x1
    msr     tpidr_el1, xzr
    adrp    x1, vectors
    add     x1, x1, :lo12:vectors
    msr     vbar_el1, x1
    isb
    mov     x0, x19
    bl      rt_start
1:  wfe
    b       1b

    .text
    /* Secondary CPUs: PSCI CPU_ON with context x0 = struct percpu *. */
    .globl secondary_entry
secondary_entry:
    ldr     x1, [x0]
    mov     sp, x1
    ldr     x1, [x0, #8]
    msr     tpidr_el1, x1
    adrp    x1, vectors
    add     x1, x1, :lo12:vectors
    msr     vbar_el1, x1
    isb
    bl      secondary_main
1:  wfe
    b       1b

    /* 16 entries: {cur EL SP0, cur EL SPx, lower A64, lower A32} x
     * {sync, irq, fiq, serror}; entry number goes to the C handler. */
    .macro vent idx
    .p2align 7
    sub     sp, sp, #FRAME
    stp     x0, x1, [sp, #0]
    mov     x0, #\idx
    b       exc_common
    .endm

    .p2align 11
    .globl vectors
vectors:
    .irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    vent    \i
    .endr

exc_common:
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    str     x30, [sp, #240]
    add     x1, sp, #FRAME
    str     x1, [sp, #248]
    mrs     x1, elr_el1
    str     x1, [sp, #256]
    mrs     x1, spsr_el1
    str     x1, [sp, #264]
    mrs     x1, esr_el1
    str     x1, [sp, #272]
    mrs     x1, far_el1
    str     x1, [sp, #280]
    str     x0, [sp, #288]
    mov     x0, sp
    bl      exc_dispatch
    ldr     x1, [sp, #256]
    msr     elr_el1, x1
    ldr     x1, [sp, #264]
    msr     spsr_el1, x1
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x19, [sp, #144]
    ldp     x20, x21, [sp, #160]
    ldp     x22, x23, [sp, #176]
    ldp     x24, x25, [sp, #192]
    ldp     x26, x27, [sp, #208]
    ldp     x28, x29, [sp, #224]
    ldr     x30, [sp, #240]
    ldp     x0, x1, [sp, #0]
    add     sp, sp, #FRAME
    eret

    /* s64 psci_hvc(fn, a1, a2, a3) / psci_smc(...) */
    .globl psci_hvc
psci_hvc:
    hvc     #0
    ret
    .globl psci_smc
psci_smc:
    .inst   0xd4000003          /* smc #0 */
    ret

    .section .stacks, "aw", @nobits
    .p2align 12
    .space  16384
boot_stack_top:
    /* Per-CPU stacks: MAX_CPUS (128) x CPU_STACK_SIZE (8 KiB). */
    .globl cpu_stacks
    .p2align 12
cpu_stacks:
    .space  128 * 8192
