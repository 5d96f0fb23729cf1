/* pseries runtime: console, RTAS, SMP, exception vectors. */
#include "rt.h"

extern char __bss_start[], __bss_end[];
extern char exc_stub_template[], exc_stub_template_end[];
extern char secondary_entry[], exc_common[];
extern u8 cpu_stacks[MAX_CPUS][CPU_STACK_SIZE];

u64 vty_termno = 0x71000000;

struct percpu {
    u64 stack_top;      /* read by secondary_entry */
    u64 index;          /* -> r13 */
    void (*fn)(u64);
    u64 arg;
};

static struct percpu percpu[MAX_CPUS];
static u64 hwids[MAX_CPUS];
static int n_cpus;
static int boot_idx;
static u32 rtas_bufs[MAX_CPUS][32] __attribute__((aligned(64)));

int cpu_index(void)
{
    u64 v;
    __asm__ __volatile__("mr %0, 13" : "=r"(v));
    return (int)v;
}

int ncpus(void) { return n_cpus; }
u64 cpu_hwid(int idx) { return hwids[idx]; }
int boot_cpu(void) { return boot_idx; }
void cpu_relax(void) { __asm__ __volatile__("or 1,1,1; or 2,2,2" ::: "memory"); }

void arch_console_write(const char *s, int n)
{
    while (n > 0) {
        int len = n > 16 ? 16 : n;
        u8 b[16] = { 0 };
        for (int i = 0; i < len; i++)
            b[i] = (u8)s[i];
        u64 a[9] = { vty_termno, (u64)len, fdt_be64(b), fdt_be64(b + 8) };
        long r = hcall(H_PUT_TERM_CHAR, a);
        if (r == 1 /* H_BUSY */)
            continue;
        s += len;
        n -= len;
    }
}

s64 rtas_token(const char *name)
{
    int node = fdt_path("/rtas");
    if (node < 0)
        return -1;
    int len;
    const void *p = fdt_prop(node, name, &len);
    return p && len == 4 ? (s64)fdt_be32(p) : -1;
}

s32 rtas_call_token(u32 token, int nargs, int nret, const u32 *args,
                    u32 *rets, long *hret)
{
    u32 *b = rtas_bufs[cpu_index()];
    b[0] = token;
    b[1] = (u32)nargs;
    b[2] = (u32)nret;
    for (int i = 0; i < nargs; i++)
        b[3 + i] = args[i];
    for (int i = 0; i < nret; i++)
        b[3 + nargs + i] = 0;
    u64 a[9] = { (u64)(uintptr_t)b };
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    long h = hcall(KVMPPC_H_RTAS, a);
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (hret)
        *hret = h;
    for (int i = 0; rets && i < nret; i++)
        rets[i] = READ_ONCE(b[3 + nargs + i]);
    return nret ? (s32)READ_ONCE(b[3 + nargs]) : 0;
}

s32 rtas_call(const char *name, int nargs, int nret, const u32 *args, u32 *rets)
{
    s64 tok = rtas_token(name);
    if (tok < 0)
        return -9999;
    return rtas_call_token((u32)tok, nargs, nret, args, rets, NULL);
}

void arch_poweroff(void)
{
    u32 args[2] = { 0, 0 };
    rtas_call("power-off", 2, 1, args, NULL);
    for (;;)
        ;
}

u64 rt_ticks(void) { return mftb(); }

u64 rt_ticks_hz(void)
{
    int cpus = fdt_path("/cpus");
    for (int c = cpus >= 0 ? fdt_first_child(cpus) : -1; c >= 0; c = fdt_next_sibling(c)) {
        u32 f = fdt_prop_u32(c, "timebase-frequency", 0);
        if (f)
            return f;
    }
    return 512000000;
}

/* ---- SMP ---- */
static void find_cpus(void)
{
    int cpus = fdt_path("/cpus");
    n_cpus = 0;
    for (int c = cpus >= 0 ? fdt_first_child(cpus) : -1; c >= 0; c = fdt_next_sibling(c)) {
        int len;
        const char *dt = fdt_prop(c, "device_type", &len);
        if (!dt || !fdt_streq(dt, "cpu"))
            continue;
        const u8 *srv = fdt_prop(c, "ibm,ppc-interrupt-server#s", &len);
        if (srv && len >= 4) {
            for (int i = 0; i < len / 4 && n_cpus < MAX_CPUS; i++)
                hwids[n_cpus++] = fdt_be32(srv + 4 * i);
        } else if (n_cpus < MAX_CPUS) {
            hwids[n_cpus++] = fdt_prop_u32(c, "reg", 0);
        }
    }
    if (n_cpus == 0)
        hwids[n_cpus++] = 0;
    boot_idx = 0;
    u32 boot = fdt_boot_cpuid();
    for (int i = 0; i < n_cpus; i++)
        if (hwids[i] == boot)
            boot_idx = i;
}

void secondary_main(struct percpu *pc)
{
    pc->fn(pc->arg);
    rtas_call("stop-self", 0, 0, NULL, NULL);
    for (;;)
        ;
}

s64 cpu_start(int idx, void (*fn)(u64), u64 arg)
{
    if (idx < 0 || idx >= n_cpus)
        return -3;
    struct percpu *pc = &percpu[idx];
    pc->stack_top = (u64)(uintptr_t)&cpu_stacks[idx][CPU_STACK_SIZE - 64];
    pc->index = (u64)idx;
    pc->fn = fn;
    pc->arg = arg;
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    u32 args[3] = { (u32)hwids[idx], (u32)(uintptr_t)secondary_entry,
                    (u32)(uintptr_t)pc };
    return rtas_call("start-cpu", 3, 1, args, NULL);
}

s64 cpu_state(int idx)
{
    u32 args[1] = { (u32)hwids[idx] };
    u32 rets[2];
    s32 st = rtas_call("query-cpu-stopped-state", 1, 2, args, rets);
    if (st != 0)
        return st;
    return rets[1] == 2 ? 1 : rets[1] == 0 ? 0 : (s64)rets[1] + 100;
}

/* ---- exceptions ---- */
static const u16 vectors[] = {
    0x200, 0x300, 0x380, 0x400, 0x480, 0x500, 0x600, 0x700, 0x800, 0x900,
    0x980, 0xa00, 0xb00, 0xc00, 0xd00, 0xe00, 0xe20, 0xe40, 0xe60, 0xe80,
    0xea0, 0xf00, 0xf20, 0xf40, 0xf60,
};

static void install_vectors(void)
{
    int n = (int)(exc_stub_template_end - exc_stub_template) / 4;
    const u32 *t = (const u32 *)exc_stub_template;
    for (unsigned v = 0; v < sizeof(vectors) / sizeof(vectors[0]); v++) {
        volatile u32 *dst = (volatile u32 *)(uintptr_t)vectors[v];
        for (int i = 0; i < n; i++) {
            u32 w = t[i];
            if ((w & 0xffff0000u) == 0x39800000u) /* li r12, 0 */
                w |= vectors[v];
            else if (w == 0x48000002u)                /* ba 0 */
                w |= (u32)(uintptr_t)exc_common & 0x03fffffcu;
            dst[i] = w;
        }
        for (int i = 0; i < n; i++)
            __asm__ __volatile__("dcbst 0,%0; sync; icbi 0,%0" :: "r"(&dst[i]) : "memory");
    }
    __asm__ __volatile__("sync; isync" ::: "memory");
}

static void dump(const char *what, struct exc_frame *f)
{
    console_lock();
    puts("not ok ");
    puts(what);
    puts(" vec ");
    put_hex(f->vec);
    puts(" srr0 ");
    put_hex(f->srr0);
    puts(" srr1 ");
    put_hex(f->srr1);
    puts(" dar ");
    put_hex(f->dar);
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
    if (f->vec == 0x500 || f->vec == 0x900 || f->vec == 0xa00)
        on_irq(f);
    else
        on_exception(f);
}

/* ---- boot ---- */
void rt_start(u64 fdt_addr)
{
    for (char *p = __bss_start; p < __bss_end; p++)
        *(volatile char *)p = 0;
    fdt = (const void *)(uintptr_t)fdt_addr;
    if (fdt_valid(fdt)) {
        int vdev = fdt_path("/vdevice");
        for (int c = vdev >= 0 ? fdt_first_child(vdev) : -1; c >= 0; c = fdt_next_sibling(c)) {
            const char *nm = fdt_name(c);
            if (nm[0] == 'v' && nm[1] == 't' && nm[2] == 'y' && nm[3] == '@') {
                vty_termno = fdt_prop_u32(c, "reg", (u32)vty_termno);
                break;
            }
        }
    }
    find_cpus();
    __asm__ __volatile__("mr 13, %0" :: "r"((u64)boot_idx));
    install_vectors();
    main();
    poweroff();
}
