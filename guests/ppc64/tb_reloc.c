/* tb_reloc: time-base and decrementer reads in code the guest copied at run
 * time (as Linux, loaded at 0x400000, copies itself down to 0) see a moving
 * timebase; so does code rewritten in place afterwards. */
#include "rt.h"

/* Position-independent routines, copied below the image before they run.
 * r3 = loop count in, timebase delta out; r4 = DEC before, r5 = DEC after. */
extern char tb_a_start[], tb_a_end[], tb_b_start[], tb_b_end[];
__asm__(".pushsection .text\n"
        ".balign 4\n"
        ".globl tb_a_start\n"
        "tb_a_start:\n"
        "  mfspr 6, 22\n"              /* DEC */
        "  mfspr 7, 268\n"             /* TBL (mfspr form) */
        "  mtctr 3\n"
        "1: bdnz 1b\n"
        "  mftb 8\n"                   /* mftb form */
        "  mfspr 5, 22\n"
        "  mr 4, 6\n"
        "  subf 3, 7, 8\n"
        "  blr\n"
        ".globl tb_a_end\n"
        "tb_a_end:\n"
        /* the same length, other instructions: rewritten over tb_a */
        ".globl tb_b_start\n"
        "tb_b_start:\n"
        "  mfspr 6, 22\n"
        "  mftb 7\n"
        "  mtctr 3\n"
        "1: bdnz 1b\n"
        "  mfspr 8, 268\n"
        "  mfspr 5, 22\n"
        "  subf 3, 7, 8\n"
        "  mr 4, 6\n"
        "  blr\n"
        ".globl tb_b_end\n"
        "tb_b_end:\n"
        ".popsection\n");

#define RELOC_AT 0x8000ul               /* below the image, above the vectors */

static void copy_code(const char *from, const char *to)
{
    volatile u32 *dst = (volatile u32 *)RELOC_AT;
    const u32 *src = (const u32 *)from;
    u64 n = (u64)(to - from) / 4;
    for (u64 i = 0; i < n; i++)
        dst[i] = src[i];
    for (u64 i = 0; i < n; i++)
        __asm__ __volatile__("dcbst 0, %0" :: "r"(&dst[i]) : "memory");
    __asm__ __volatile__("sync" ::: "memory");
    for (u64 i = 0; i < n; i++)
        __asm__ __volatile__("icbi 0, %0" :: "r"(&dst[i]) : "memory");
    __asm__ __volatile__("sync; isync" ::: "memory");
}

static u64 call_copy(u64 loops, u64 *dec0, u64 *dec1)
{
    register u64 r3 __asm__("r3") = loops;
    register u64 r4 __asm__("r4");
    register u64 r5 __asm__("r5");
    __asm__ __volatile__("mtctr %3\n\tbctrl"
                         : "+r"(r3), "=r"(r4), "=r"(r5)
                         : "r"(RELOC_AT)
                         : "ctr", "lr", "r6", "r7", "r8", "r9", "r10", "r11", "r12",
                           "cr0", "memory");
    *dec0 = r4;
    *dec1 = r5;
    return r3;
}

int main(void)
{
    u64 d0, d1;
    mtdec(0x7fffffff);

    copy_code(tb_a_start, tb_a_end);
    u64 short_run = call_copy(1000, &d0, &d1);
    check(short_run > 0, "relocated code: timebase advances");
    check((u32)d1 < (u32)d0, "relocated code: decrementer counts down");
    u64 long_run = call_copy(1000000, &d0, &d1);
    check(long_run > short_run, "relocated code: a longer loop takes more timebase");
    check((u32)d1 < (u32)d0, "relocated code: decrementer counts down again");

    copy_code(tb_b_start, tb_b_end);    /* new code at the same address */
    u64 rewritten = call_copy(1000, &d0, &d1);
    check(rewritten > 0, "rewritten code: timebase advances");
    check((u32)d1 < (u32)d0, "rewritten code: decrementer counts down");
    return 0;
}
