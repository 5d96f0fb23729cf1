/* pseries guest entry, secondary entry, exception stubs, hcall. */
#define SPRG1 273
#define SPRG2 274
#define FRAME_OFF 32            /* struct exc_frame starts after the ABI header */
#define FRAME_ALLOC 656         /* 288 protected zone + 32 header + 336 frame */

    .section .text.entry, "ax"
    .globl _start
_start:
    /* %r3 = FDT address.  Make sure we are in 64-bit mode with ME set. */
    mfmsr   %r11
    li      %r12, 1
    sldi    %r12, %r12, 63
    ori     %r12, %r12, 0x1000
    or      %r11, %r11, %r12
    mtmsrd  %r11
    isync
    bl      1f
1:  mflr    %r12
    addis   %r2, %r12, (.TOC. - 1b)@ha
    addi    %r2, %r2, (.TOC. - 1b)@l
    addis   %r1, %r12, (boot_stack_top - 1b)@ha
    addi    %r1, %r1, (boot_stack_top - 1b)@l
    li      %r13, 0
    li      %r0, 0
    stdu    %r0, -32(%r1)
    bl      rt_start
    nop
2:  b       2b

    .text
    /* Secondary CPUs: started by RTAS start-cpu with %r3 = struct percpu *. */
    .globl secondary_entry
secondary_entry:
    bl      1f
1:  mflr    %r12
    addis   %r2, %r12, (.TOC. - 1b)@ha
    addi    %r2, %r2, (.TOC. - 1b)@l
    ld      %r1, 0(%r3)
    ld      %r13, 8(%r3)
    li      %r0, 0
    stdu    %r0, -32(%r1)
    bl      secondary_main
    nop
2:  b       2b

    /* Template copied to each real-mode vector; the C side ORs the vector
     * number into the "li" immediate and the address of exc_common into
     * the absolute branch, so the copies are position independent. */
    .globl exc_stub_template
    .globl exc_stub_template_end
exc_stub_template:
    mtspr   SPRG1, %r1
    mtspr   SPRG2, %r12
    li      %r12, 0
    .long   0x48000002          /* "ba 0": C patches in exc_common */
exc_stub_template_end:

    .globl exc_common
    .p2align 4
exc_common:
    addi    %r1, %r1, -FRAME_ALLOC
    std     %r0, FRAME_OFF+0(%r1)
    mfspr   %r0, SPRG1
    std     %r0, FRAME_OFF+8(%r1)
    std     %r0, 0(%r1)
    std     %r2, FRAME_OFF+16(%r1)
    .irp n, 3,4,5,6,7,8,9,10,11,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    std     %r\n, FRAME_OFF+8*\n(%r1)
    .endr
    mfspr   %r0, SPRG2
    std     %r0, FRAME_OFF+96(%r1)
    std     %r12, FRAME_OFF+256(%r1)
    mfsrr0  %r0
    std     %r0, FRAME_OFF+264(%r1)
    mfsrr1  %r0
    std     %r0, FRAME_OFF+272(%r1)
    mflr    %r0
    std     %r0, FRAME_OFF+280(%r1)
    mfctr   %r0
    std     %r0, FRAME_OFF+288(%r1)
    mfcr    %r0
    std     %r0, FRAME_OFF+296(%r1)
    mfxer   %r0
    std     %r0, FRAME_OFF+304(%r1)
    mfspr   %r0, 19              /* DAR */
    std     %r0, FRAME_OFF+312(%r1)
    mfspr   %r0, 18              /* DSISR */
    std     %r0, FRAME_OFF+320(%r1)
    bl      1f
1:  mflr    %r12
    addis   %r2, %r12, (.TOC. - 1b)@ha
    addi    %r2, %r2, (.TOC. - 1b)@l
    addi    %r3, %r1, FRAME_OFF
    bl      exc_dispatch
    nop
    ld      %r0, FRAME_OFF+264(%r1)
    mtsrr0  %r0
    ld      %r0, FRAME_OFF+272(%r1)
    mtsrr1  %r0
    ld      %r0, FRAME_OFF+280(%r1)
    mtlr    %r0
    ld      %r0, FRAME_OFF+288(%r1)
    mtctr   %r0
    ld      %r0, FRAME_OFF+296(%r1)
    mtcrf   0xff, %r0
    ld      %r0, FRAME_OFF+304(%r1)
    mtxer   %r0
    .irp n, 2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    ld      %r\n, FRAME_OFF+8*\n(%r1)
    .endr
    ld      %r0, FRAME_OFF+0(%r1)
    ld      %r1, FRAME_OFF+8(%r1)
    rfid

    /* long hcall(u64 op, u64 args[9]): %r4..%r12 from args, written back. */
    .globl hcall
hcall:
    stdu    %r1, -64(%r1)
    std     %r4, 32(%r1)
    mr      %r12, %r4
    ld      %r4, 0(%r12)
    ld      %r5, 8(%r12)
    ld      %r6, 16(%r12)
    ld      %r7, 24(%r12)
    ld      %r8, 32(%r12)
    ld      %r9, 40(%r12)
    ld      %r10, 48(%r12)
    ld      %r11, 56(%r12)
    ld      %r12, 64(%r12)
    sc      1
    std     %r12, 40(%r1)
    ld      %r12, 32(%r1)
    std     %r4, 0(%r12)
    std     %r5, 8(%r12)
    std     %r6, 16(%r12)
    std     %r7, 24(%r12)
    std     %r8, 32(%r12)
    std     %r9, 40(%r12)
    std     %r10, 48(%r12)
    std     %r11, 56(%r12)
    ld      %r0, 40(%r1)
    std     %r0, 64(%r12)
    addi    %r1, %r1, 64
    blr

    .section .stacks, "aw", @nobits
    .p2align 12
    .space  16384
boot_stack_top:

    /* Per-CPU stacks: MAX_CPUS (128) x CPU_STACK_SIZE (8 KiB). */
    .globl cpu_stacks
    .p2align 12
cpu_stacks:
    .space  128 * 8192
