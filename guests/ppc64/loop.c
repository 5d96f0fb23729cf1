/* loop: a fixed counted ALU loop, then power-off (tools/bench.py).
 *
 * The loop body between the global labels bench_loop_body and bench_loop_end
 * is 9 ALU instructions + bdnz = 10 instructions per iteration, counted by
 * CTR. tools/bench.py runs the same bytes on raw Unicorn, and patches
 * `loop_iters` in a copy of the ELF to choose the iteration count. */
#include "rt.h"

volatile u64 loop_iters __attribute__((used, section(".data"))) = 1000000;

static void __attribute__((noinline)) run_loop(u64 n)
{
    if (n == 0)
        return;
    __asm__ __volatile__(
        "mtctr %0\n"
        ".globl bench_loop_body\n"
        "bench_loop_body:\n"
        "addi %%r5, %%r5, 1\n"
        "add  %%r6, %%r6, %%r5\n"
        "xor  %%r7, %%r7, %%r6\n"
        "addi %%r8, %%r8, 3\n"
        "and  %%r9, %%r7, %%r8\n"
        "or   %%r10, %%r10, %%r9\n"
        "subf %%r6, %%r8, %%r6\n"
        "addi %%r7, %%r7, -1\n"
        "add  %%r5, %%r5, %%r10\n"
        "bdnz bench_loop_body\n"
        ".globl bench_loop_end\n"
        "bench_loop_end:\n"
        :: "r"(n) : "r5", "r6", "r7", "r8", "r9", "r10", "ctr", "memory");
}

int main(void)
{
    u64 n = loop_iters;
    run_loop(n);
    ok_val("loop iterations", n);
    ok("loop");
    return 0;
}
