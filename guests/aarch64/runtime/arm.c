/* virt runtime: PL011 console, PSCI, SMP, exception dispatch. */
#include "rt.h"

extern char __bss_start[], __bss_end[];
extern char secondary_entry[];
extern u8 cpu_stacks[MAX_CPUS][CPU_STACK_SIZE];
s64 psci_hvc(u64, u64, u64, u64);
s64 psci_smc(u64, u64, u64, u64);

u64 uart_base = 0x09000000;
static int use_smc;

struct percpu {
    u64 stack_top;      /* read by secondary_entry */
    u64 index;          /* -> TPIDR_EL1 */
    void (*fn)(u64);
    u64 arg;
};

static struct percpu percpu[MAX_CPUS];
static u64 hwids[MAX_CPUS];
static int n_cpus;
static int boot_idx;

int cpu_index(void) { return (int)read_sysreg(tpidr_el1); }
int ncpus(void) { return n_cpus; }
u64 cpu_hwid(int idx) { return hwids[idx]; }
int boot_cpu(void) { return boot_idx; }
void cpu_relax(void) { __asm__ __volatile__("yield" ::: "memory"); }

s64 psci_call(u64 fn, u64 a1, u64 a2, u64 a3)
{
    return use_smc ? psci_smc(fn, a1, a2, a3) : psci_hvc(fn, a1, a2, a3);
}

void arch_console_write(const char *s, int n)
{
    volatile u32 *dr = (volatile u32 *)(uintptr_t)uart_base;
    volatile u32 *fr = (volatile u32 *)(uintptr_t)(uart_base + 0x18);
    for (int i = 0; i < n; i++) {
        while (*fr & 0x20)      /* TXFF */
            ;
        *dr = (u8)s[i];
    }
}

void arch_poweroff(void)
{
    psci_call(PSCI_SYSTEM_OFF, 0, 0, 0);
    for (;;)
        __asm__ __volatile__("wfi");
}

u64 rt_ticks(void) { isb(); return read_sysreg(cntvct_el0); }
u64 rt_ticks_hz(void) { return read_sysreg(cntfrq_el0); }

static void find_cpus(void)
{
    int cpus = fdt_path("/cpus");
    int ac = cpus >= 0 ? fdt_address_cells(cpus) : 1;
    n_cpus = 0;
    for (int c = cpus >= 0 ? fdt_first_child(cpus) : -1; c >= 0; c = fdt_next_sibling(c)) {
        int len;
        const char *dt = fdt_prop(c, "device_type", &len);
        if (!dt || !fdt_streq(dt, "cpu") || n_cpus >= MAX_CPUS)
            continue;
        const void *reg = fdt_prop(c, "reg", &len);
        hwids[n_cpus++] = reg ? fdt_cells(reg, ac) : 0;
    }
    u64 me = read_sysreg(mpidr_el1) & 0xff00ffffffull;
    if (n_cpus == 0)
        hwids[n_cpus++] = me;
    boot_idx = 0;
    for (int i = 0; i < n_cpus; i++)
        if (hwids[i] == me)
            boot_idx = i;
}

void secondary_main(struct percpu *pc)
{
    pc->fn(pc->arg);
    psci_call(PSCI_CPU_OFF, 0, 0, 0);
    for (;;)
        __asm__ __volatile__("wfi");
}

s64 cpu_start(int idx, void (*fn)(u64), u64 arg)
{
    if (idx < 0 || idx >= n_cpus)
        return PSCI_INVALID_PARAMS;
    struct percpu *pc = &percpu[idx];
    pc->stack_top = (u64)(uintptr_t)&cpu_stacks[idx][CPU_STACK_SIZE];
    pc->index = (u64)idx;
    pc->fn = fn;
    pc->arg = arg;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return psci_call(PSCI_CPU_ON, hwids[idx], (u64)(uintptr_t)secondary_entry,
                     (u64)(uintptr_t)pc);
}

s64 cpu_state(int idx)
{
    s64 r = psci_call(PSCI_AFFINITY_INFO, hwids[idx], 0, 0);
    return r == 0 ? 1 : r == 1 ? 0 : r;
}

static void dump(const char *what, struct exc_frame *f)
{
    console_lock();
    puts("not ok ");
    puts(what);
    puts(" vec ");
    put_dec(f->vec);
    puts(" esr ");
    put_hex(f->esr);
    puts(" elr ");
    put_hex(f->elr);
    puts(" far ");
    put_hex(f->far);
    puts(" cpu ");
    put_dec((u64)cpu_index());
    puts("\n");
    console_unlock();
    poweroff();
}

__attribute__((weak)) void on_exception(struct exc_frame *f) { dump("unexpected exception", f); }
__attribute__((weak)) void on_irq(struct exc_frame *f) { dump("unexpected interrupt", f); }

void exc_dispatch(struct exc_frame *f)
{
    u64 kind = f->vec & 3;          /* 0 sync, 1 irq, 2 fiq, 3 serror */
    if (kind == 1 || kind == 2)
        on_irq(f);
    else
        on_exception(f);
}

void rt_start(u64 dtb)
{
    for (char *p = __bss_start; p < __bss_end; p++)
        *(volatile char *)p = 0;
    if (dtb && fdt_valid((const void *)(uintptr_t)dtb))
        fdt = (const void *)(uintptr_t)dtb;
    else if (fdt_valid((const void *)0x40000000))
        fdt = (const void *)0x40000000;
    if (fdt) {
        int chosen = fdt_path("/chosen");
        const char *sp = chosen >= 0 ? fdt_prop(chosen, "stdout-path", NULL) : NULL;
        if (sp) {
            char path[128];
            int i = 0;
            while (sp[i] && sp[i] != ':' && i < 127) {
                path[i] = sp[i];
                i++;
            }
            path[i] = 0;
            int node = fdt_path(path);
            u64 base;
            if (node >= 0 && fdt_reg(node, 0, &base, NULL) == 0)
                uart_base = base;
        }
        int psci = fdt_path("/psci");
        const char *m = psci >= 0 ? fdt_prop(psci, "method", NULL) : NULL;
        use_smc = m && fdt_streq(m, "smc");
    }
    find_cpus();
    write_sysreg(tpidr_el1, (u64)boot_idx);
    main();
    poweroff();
}
