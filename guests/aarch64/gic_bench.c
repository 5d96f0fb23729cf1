/* gic_bench: GICv3 SGI costs for tools/bench.py (section 8).
 *
 * 1. `bench_iters` SGI round trips on the boot CPU: ICC_SGI1R_EL1 (SGI 1 to
 *    itself) -> IRQ -> ICC_IAR1_EL1 (1 checked) -> ICC_EOIR1_EL1; the main
 *    loop waits for each round trip before sending the next.
 * 2. `bench_bcast` broadcasts: ICC_SGI1R_EL1 with IRM = 1 (SGI 2 to every
 *    CPU but the sender); every other CPU sits in WFI with IRQs unmasked and
 *    its GIC CPU interface enabled, acknowledges and EOIs each one; the boot
 *    CPU waits until all of them have before sending the next.
 * Every CPU in the device tree is started (up to 512, more than the
 * runtime's MAX_CPUS: this guest starts them itself through PSCI CPU_ON on
 * the runtime's secondary_entry, with 2 KiB stacks carved out of the
 * runtime's cpu_stacks), also when bench_bcast is 0, so that a 0-broadcast
 * run has the same bring-up cost.  tools/bench.py patches bench_iters and
 * bench_bcast in copies of the ELF.  The transcript depends only on the
 * two counts and on -smp. */
#include "rt.h"
#include "gic_guest.h"

volatile u64 bench_iters __attribute__((used, section(".data"))) = 100;
volatile u64 bench_bcast __attribute__((used, section(".data"))) = 2;
/* The guest clock (rt_ticks) before and after the timed loop, and its
 * frequency: tools/bench.py reads them from RAM after the run (section
 * 11); never printed, so the transcript does not depend on them. */
volatile u64 bench_clock[3] __attribute__((used, section(".data")));

#define SGI_SELF 1
#define SGI_BCAST 2
#define BENCH_MAX_CPUS 512
#define BENCH_STACK 2048

/* the runtime's secondary_entry takes x0 = this (runtime/arm.c struct percpu) */
struct bench_percpu {
    u64 stack_top;
    u64 index;
    void (*fn)(u64);
    u64 arg;
};
extern char secondary_entry[];
extern u8 cpu_stacks[MAX_CPUS][CPU_STACK_SIZE];
_Static_assert(BENCH_MAX_CPUS * BENCH_STACK <= MAX_CPUS * CPU_STACK_SIZE, "stacks");

static struct bench_percpu pcs[BENCH_MAX_CPUS];
static u64 hwid[BENCH_MAX_CPUS];
static u64 rd_of[BENCH_MAX_CPUS];
static volatile u32 bcast_taken[BENCH_MAX_CPUS];
static int n_cpus;

static volatile u64 n_self;
static volatile u64 acks;
static volatile u32 ready;
static volatile u32 n_spurious, n_other, n_bad_cpu;

void on_irq(struct exc_frame *f)
{
    (void)f;
    u32 intid = (u32)(icc_iar1() & 0xffffff);
    if (intid >= 1020) {
        __atomic_add_fetch(&n_spurious, 1, __ATOMIC_RELAXED);
        return;
    }
    int me = cpu_index();
    if (intid == SGI_SELF) {
        n_self++;
    } else if (intid == SGI_BCAST) {
        if (me >= 0 && me < BENCH_MAX_CPUS)
            bcast_taken[me]++;
        else
            __atomic_add_fetch(&n_bad_cpu, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&acks, 1, __ATOMIC_RELEASE);
    } else {
        __atomic_add_fetch(&n_other, 1, __ATOMIC_RELAXED);
    }
    icc_eoir1(intid);
}

/* every CPU of /cpus (the runtime stops at MAX_CPUS) */
static int dt_cpus(void)
{
    int cpus = fdt_path("/cpus");
    int ac = cpus >= 0 ? fdt_address_cells(cpus) : 1;
    int n = 0;
    for (int c = cpus >= 0 ? fdt_first_child(cpus) : -1; c >= 0; c = fdt_next_sibling(c)) {
        int len;
        const char *dt = fdt_prop(c, "device_type", &len);
        if (!dt || !fdt_streq(dt, "cpu") || n >= BENCH_MAX_CPUS)
            continue;
        const void *reg = fdt_prop(c, "reg", &len);
        hwid[n++] = reg ? fdt_cells(reg, ac) : 0;
    }
    return n;
}

/* one walk of all redistributor frames: RD_base of each DT CPU */
static int rd_map_cb(u64 rd, u64 typer, void *c)
{
    int *frame = c;
    u32 aff = (u32)(typer >> 32);
    int j = *frame;
    (*frame)++;
    if (j < n_cpus && mpidr_to_typer_aff(hwid[j]) == aff) {    /* the usual order */
        rd_of[j] = rd;
        return 0;
    }
    for (int i = 0; i < n_cpus; i++)
        if (mpidr_to_typer_aff(hwid[i]) == aff)
            rd_of[i] = rd;
    return 0;
}

/* Redistributor + CPU interface of a secondary CPU, SGI 2 enabled */
static void secondary(u64 rd)
{
    u64 sgi = rd + GICR_SGI_OFFSET;
    mmio_w32(rd + GICR_WAKER, mmio_r32(rd + GICR_WAKER) & ~GICR_WAKER_ProcessorSleep);
    mmio_w32(sgi + GICR_IGROUPR0, ~0u);
    mmio_w8(sgi + GICR_IPRIORITYR0 + SGI_BCAST, 0x80);
    mmio_w32(sgi + GICR_ISENABLER0, 1u << SGI_BCAST);
    gic_cpu_sys_reg_init();
    __atomic_add_fetch(&ready, 1, __ATOMIC_RELEASE);
    irq_enable();
    for (;;)
        __asm__ __volatile__("wfi" ::: "memory");
}

/* Poll until *v >= want; 0 after 30 s.  The clock is read only after 1024
 * polls and then every 1024 (on vmachine every system register read,
 * CNTFRQ and CNTVCT included, is a trip to the host): a round trip that
 * is already done costs no clock read. */
static int wait_ge(volatile u64 *v, u64 want)
{
    for (int i = 0; i < 1024; i++) {
        if (*v >= want)
            return 1;
        cpu_relax();
    }
    u64 hz = rt_ticks_hz(), t0 = rt_ticks();
    while (*v < want) {
        for (int i = 0; i < 1024 && *v < want; i++)
            cpu_relax();
        if (*v < want && rt_ticks() - t0 > 30 * hz)
            return 0;
    }
    return 1;
}

int main(void)
{
    u64 iters = bench_iters, nb = bench_bcast;
    n_cpus = dt_cpus();
    int me = boot_cpu();
    if (n_cpus == 0 || gic_discover() < 0) {
        not_ok("gic bench discover", "no cpus or no intc node");
        return 0;
    }
    gic_dist_init();
    check(gic_cpu_init() == 0, "gic bench cpu init");
    gic_set_prio(SGI_SELF, 0x80);
    gic_set_prio(SGI_BCAST, 0x80);
    gic_enable(SGI_SELF);
    gic_enable(SGI_BCAST);

    int frame = 0;
    gic_walk_rdists(rd_map_cb, &frame);
    int missing = 0;
    for (int i = 0; i < n_cpus; i++)
        missing += rd_of[i] == 0;
    check_eq("gic bench cpus without a redistributor frame", (u64)missing, 0);

    /* start every other CPU */
    int start_fail = 0;
    u8 *stacks = &cpu_stacks[0][0];
    for (int i = 0; i < n_cpus; i++) {
        if (i == me)
            continue;
        struct bench_percpu *pc = &pcs[i];
        pc->stack_top = (u64)(uintptr_t)(stacks + (u64)(i + 1) * BENCH_STACK);
        pc->index = (u64)i;
        pc->fn = secondary;
        pc->arg = rd_of[i];
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        if (psci_call(PSCI_CPU_ON, hwid[i], (u64)(uintptr_t)secondary_entry,
                      (u64)(uintptr_t)pc) != PSCI_SUCCESS)
            start_fail++;
    }
    check_eq("gic bench cpu_on failures", (u64)start_fail, 0);
    u64 hz = rt_ticks_hz(), t0 = rt_ticks();
    while (READ_ONCE(ready) < (u32)(n_cpus - 1) && rt_ticks() - t0 < 60 * hz)
        for (int i = 0; i < 1024; i++)
            cpu_relax();
    check(READ_ONCE(ready) == (u32)(n_cpus - 1), "gic bench every cpu ready");

    /* 1. SGI to self */
    u64 self = cpu_hwid(me), timeouts = 0;
    irq_enable();
    bench_clock[2] = rt_ticks_hz();
    bench_clock[0] = rt_ticks();
    for (u64 i = 0; i < iters; i++) {
        u64 before = n_self;
        gic_send_sgi(self, SGI_SELF);
        if (!wait_ge(&n_self, before + 1)) {
            timeouts++;
            break;
        }
    }
    bench_clock[1] = rt_ticks();
    /* 2. IRM = 1 broadcasts */
    u64 others = (u64)(n_cpus - 1), sent = 0;
    for (u64 b = 0; b < nb && !timeouts; b++) {
        gic_send_sgi_others(SGI_BCAST);
        sent++;
        if (!wait_ge(&acks, (b + 1) * others))
            timeouts++;
    }
    irq_disable();

    check_eq("gic bench timeouts", timeouts, 0);
    console_lock();
    puts("ok gic bench ");
    put_dec(n_self);
    puts(" sgi round trips\n");
    puts("ok gic bench ");
    put_dec(sent);
    puts(" broadcasts to ");
    put_dec(others);
    puts(" cpus\n");
    console_unlock();
    int all = 1;
    for (int i = 0; i < n_cpus; i++)
        if (bcast_taken[i] != (i == me ? 0 : sent))
            all = 0;
    check(all, "gic bench every other cpu took every broadcast, the sender none");
    check_eq("gic bench broadcast acks", acks, sent * others);
    check_eq("gic bench spurious iar1", n_spurious, 0);
    check_eq("gic bench other intids", n_other + n_bad_cpu, 0);
    return 0;
}
