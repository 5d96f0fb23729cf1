/* loop: a fixed counted ALU loop, then power-off (tools/bench.py).
 *
 * The loop body between the global labels bench_loop_body and bench_loop_end
 * is 8 ALU instructions + subs + b.ne = 10 instructions per iteration,
 * counted in x10. tools/bench.py runs the same bytes on raw Unicorn, and
 * patches `loop_iters` in a copy of the ELF to choose the iteration count. */
#include "rt.h"

volatile u64 loop_iters __attribute__((used, section(".data"))) = 1000000;

static void __attribute__((noinline)) run_loop(u64 n)
{
    if (n == 0)
        return;
    __asm__ __volatile__(
        "mov x10, %0\n"
        ".globl bench_loop_body\n"
        "bench_loop_body:\n"
        "add x5, x5, #1\n"
        "add x6, x6, x5\n"
        "eor x7, x7, x6\n"
        "add x8, x8, #3\n"
        "and x9, x7, x8\n"
        "orr x11, x11, x9\n"
        "sub x6, x6, x8\n"
        "add x5, x5, x11\n"
        "subs x10, x10, #1\n"
        "b.ne bench_loop_body\n"
        ".globl bench_loop_end\n"
        "bench_loop_end:\n"
        :: "r"(n) : "x5", "x6", "x7", "x8", "x9", "x10", "x11", "cc", "memory");
}

int main(void)
{
    u64 n = loop_iters;
    run_loop(n);
    ok_val("loop iterations", n);
    ok("loop");
    return 0;
}
