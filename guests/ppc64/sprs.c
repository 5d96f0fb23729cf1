/* sprs: what mfspr/mtspr of every SPR does in a pseries guest (supervisor
 * state), as kvm-unit-tests' sprs test probes it.
 *
 * The timebase-derived SPRs (PURR, SPURR, TBU40 reads) print properties
 * only: their values follow the clock. Every other SPR 0..1023 is read
 * with mfspr and written back with mtspr (the value read, or 0 when the
 * read raised an interrupt, so nothing changes): one line per SPR with the
 * value read or the interrupt raised. SPRs the runtime itself depends on
 * (XER/LR/CTR used by the calling code, DEC, SRR0/1, SPRG0-2) are skipped.
 * Last, the timebase writes QEMU allows (TBL/TBU, SPR 284/285). */
#include "rt.h"

static volatile u64 n_exc, e_vec, e_srr0, e_srr1;

void on_exception(struct exc_frame *f)
{
    n_exc++;
    e_vec = f->vec;
    e_srr0 = f->srr0;
    e_srr1 = f->srr1;
    f->srr0 += 4;                       /* skip the mfspr/mtspr */
}

/* One "mfspr r3, N; blr" and one "mtspr N, r3; blr" per SPR number. */
extern char mf_stubs[], mt_stubs[];
__asm__(".text\n.balign 8\n.globl mf_stubs\nmf_stubs:\n"
        ".set sprn, 0\n.rept 1024\nmfspr 3, sprn\nblr\n.set sprn, sprn+1\n.endr\n"
        ".globl mt_stubs\nmt_stubs:\n"
        ".set sprn, 0\n.rept 1024\nmtspr sprn, 3\nblr\n.set sprn, sprn+1\n.endr\n");
typedef u64 (*stub_fn)(u64);

#define UNCHANGED 0x5a5a5a5aull         /* r3 before a read: a no-op leaves it */

static u64 mf(int n) { return ((stub_fn)(uintptr_t)(mf_stubs + 8 * n))(UNCHANGED); }
static void mt(int n, u64 v) { ((stub_fn)(uintptr_t)(mt_stubs + 8 * n))(v); }

static int skipped(int n)
{
    return n == 1 || n == 8 || n == 9 || n == 22 || n == 26 || n == 27
        || (n >= 272 && n <= 274);
}

/* Timebase-derived reads: their values depend on when they run. */
static int timed(int n)
{
    return n == 268 || n == 269 || n == 284 || n == 285 || n == 308 || n == 309 || n == 849;
}

static void report(const char *op, int n, u64 insn_addr, u64 value, int show)
{
    if (n_exc) {
        puts("ok ");
        puts(op);
        puts(" ");
        put_dec(n);
        puts(" vector ");
        put_hex(e_vec);
        puts(" reason ");
        put_hex(e_srr1 & 0x1f0000ull);
        puts(e_srr0 == insn_addr ? " at insn" : " elsewhere");
        puts("\n");
    } else if (show) {
        puts("ok ");
        puts(op);
        puts(" ");
        put_dec(n);
        if (value == UNCHANGED)
            puts(" no-op");
        else {
            puts(" = ");
            put_hex(value);
        }
        puts("\n");
    }
}

int main(void)
{
    /* PURR, SPURR and TBU40 reads give the timebase; VTB is not there */
    u64 t0 = mftb();
    u64 purr = mf(309), spurr = mf(308), tbu40 = mf(849);
    u64 t1 = mftb();
    check(t0 <= purr && purr <= spurr && spurr <= tbu40 && tbu40 <= t1,
          "purr, spurr, tbu40 read the timebase");
    check_eq("timed reads raise nothing", n_exc, 0);
    for (volatile int i = 0; i < 100000; i++)
        ;
    u64 purr2 = mf(309), spurr2 = mf(308);
    check(purr2 > purr && spurr2 > spurr, "purr and spurr advance");
    check_eq("vtb read is a no-op", mf(351), UNCHANGED);
    u64 tbu = mf(269);
    check(tbu == (mftb() >> 32) || tbu + 1 == (mftb() >> 32), "tbu is the timebase upper half");

    for (int n = 0; n < 1024; n++) {
        if (skipped(n))
            continue;
        n_exc = 0;
        u64 v = mf(n);
        int raised = n_exc != 0;
        report("mfspr", n, (u64)(uintptr_t)(mf_stubs + 8 * n), v, !timed(n));
        n_exc = 0;
        mt(n, raised || timed(n) ? 0 : v);
        report("mtspr", n, (u64)(uintptr_t)(mt_stubs + 8 * n), 0, 0);
    }
    ok("sprs swept");

    /* QEMU lets a supervisor-state guest write TBL/TBU; PURR does not follow */
    n_exc = 0;
    mt(285, 0x12);
    check((mftb() >> 32) == 0x12, "tbu write sets the timebase upper half");
    check((mf(309) >> 32) == 0, "purr does not follow timebase writes");
    mt(284, 0);
    u64 tb = mftb();
    check((tb >> 32) == 0x12 && (tb & 0xffffffffull) < 0x1000000, "tbl write sets the lower half");
    check_eq("timebase writes raise nothing", n_exc, 0);
    return 0;
}
