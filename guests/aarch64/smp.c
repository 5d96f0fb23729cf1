/* smp: start every CPU in the device tree, each marks itself up. */
#include "rt.h"

static u32 up[MAX_CPUS];
static u32 go;

static void secondary(u64 idx)
{
    if ((u64)cpu_index() == idx)
        __atomic_store_n(&up[idx], 1, __ATOMIC_RELEASE);
    else
        __atomic_store_n(&up[idx], 2, __ATOMIC_RELEASE);   /* wrong index */
    wait_flag(&go, 1000000);
}

static void line(const char *pre, int n, const char *post)
{
    char buf[64];
    int k = 0, d = 0;
    char t[12];
    while (*pre)
        buf[k++] = *pre++;
    do { t[d++] = (char)('0' + n % 10); n /= 10; } while (n);
    while (d)
        buf[k++] = t[--d];
    while (*post)
        buf[k++] = *post++;
    buf[k] = 0;
    ok(buf);
}

int main(void)
{
    int n = ncpus(), me = boot_cpu();
    up[me] = 1;
    for (int i = 0; i < n; i++) {
        if (i == me)
            continue;
        s64 r = cpu_start(i, secondary, (u64)i);
        if (r != 0) {
            console_lock();
            puts("not ok start cpu ");
            put_dec((u64)i);
            puts(" returned ");
            put_sdec(r);
            puts("\n");
            console_unlock();
        }
    }
    int all = 1;
    for (int i = 0; i < n; i++) {
        wait_flag(&up[i], 30);
        if (READ_ONCE(up[i]) == 1) {
            line("cpu ", i, " up");
        } else {
            all = 0;
            console_lock();
            puts("not ok cpu ");
            put_dec((u64)i);
            puts(READ_ONCE(up[i]) ? " wrong cpu_index\n" : " did not come up\n");
            console_unlock();
        }
    }
    if (all)
        line("smp all ", n, " cpus");
    else
        not_ok("smp all cpus", "");

    int running = 1;
    for (int i = 0; i < n; i++)
        if (cpu_state(i) != 1)
            running = 0;
    check(running, "firmware reports all cpus running");

    if (n > 1) {
#ifdef __powerpc64__
        /* start-cpu on a running CPU: QEMU answers -1 (hardware error) */
        s64 tok = rtas_token("start-cpu");
        u32 args[3] = { (u32)cpu_hwid(1), 0x400000, 0 };
        u32 rets[1];
        rtas_call_token((u32)tok, 3, 1, args, rets, NULL);
        check_eq("start-cpu on running cpu", (u64)(s64)(s32)rets[0], (u64)-1);
#else
        s64 r = psci_call(PSCI_CPU_ON, cpu_hwid(1), 0x40200000, 0);
        check_eq("cpu_on on running cpu is ALREADY_ON", (u64)r, (u64)PSCI_ALREADY_ON);
#endif
    }

    /* let the secondaries stop themselves and wait until firmware agrees */
    __atomic_store_n(&go, 1, __ATOMIC_RELEASE);
    u64 hz = rt_ticks_hz(), t0 = rt_ticks();
    int stopped;
    do {
        stopped = 1;
        for (int i = 0; i < n; i++)
            if (i != me && cpu_state(i) != 0)
                stopped = 0;
    } while (!stopped && rt_ticks() - t0 < 30 * hz);
    check(stopped, "secondaries stopped");
    check(cpu_state(me) == 1, "boot cpu still running");
    return 0;
}
