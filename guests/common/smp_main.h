/* smp_main.h: the "smp" guest, shared by guests/aarch64/smp.c and
 * guests/ppc64/smp.c.  Header only; include after "rt.h".
 *
 * smp_main() starts every CPU in the device tree, each marks itself up;
 * checks that the firmware reports them all running; with more than one
 * CPU calls the guest's smp_start_running_cpu() (the firmware's answer to
 * starting CPU 1 again, which differs per architecture); then lets the
 * secondaries stop themselves and waits until the firmware agrees. */
#ifndef SMP_MAIN_H
#define SMP_MAIN_H
#include "rt.h"
#include "smp_guest.h"

/* defined by the including guest */
static void smp_start_running_cpu(void);

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

static int smp_main(void)
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

    if (n > 1)
        smp_start_running_cpu();

    /* let the secondaries stop themselves and wait until firmware agrees */
    __atomic_store_n(&go, 1, __ATOMIC_RELEASE);
    check(wait_others_stopped(me, 30), "secondaries stopped");
    check(cpu_state(me) == 1, "boot cpu still running");
    return 0;
}

#endif
