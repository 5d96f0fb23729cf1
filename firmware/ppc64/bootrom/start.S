/* Boot ROM entry.  QEMU's pseries enters at 0x100 in real mode with
 * r3 = FDT and MSR[SF] = 0; switch to 64-bit mode, set up a stack and TOC,
 * then hand over to rom_main(fdt). */
    .section .text.entry, "ax"
    .globl _start
_start:
    mfmsr   %r11
    li      %r12, 1
    sldi    %r12, %r12, 63          /* MSR[SF] */
    ori     %r12, %r12, 0x1000      /* MSR[ME] */
    or      %r11, %r11, %r12
    mtmsrd  %r11
    isync
    bl      1f
1:  mflr    %r12
    addis   %r2, %r12, (.TOC. - 1b)@ha
    addi    %r2, %r2, (.TOC. - 1b)@l
    addis   %r1, %r12, (rom_stack_top - 1b)@ha
    addi    %r1, %r1, (rom_stack_top - 1b)@l
    li      %r0, 0
    stdu    %r0, -32(%r1)
    bl      rom_main
    nop
2:  b       2b

    /* long rom_hcall(op, a0, a1, a2, a3): sc 1 with r3..r7 as given. */
    .text
    .globl rom_hcall
rom_hcall:
    sc      1
    blr

    .bss
    .p2align 4
    .space  4096
rom_stack_top:
