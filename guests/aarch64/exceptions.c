/* exceptions: synchronous exceptions, PSCI error paths, unassigned MMIO.
 * Every handled exception resumes after its cause. */
#include "rt.h"

static volatile u64 n_exc, e_vec, e_esr, e_far, e_elr;

void on_exception(struct exc_frame *f)
{
    n_exc++;
    e_vec = f->vec;
    e_esr = f->esr;
    e_far = f->far;
    e_elr = f->elr;
    switch (ESR_EC(f->esr)) {
    case 0x15:              /* SVC: ELR already points past it */
        break;
    case 0x00:              /* unknown / UNDEF */
    case 0x25:              /* data abort, same EL */
    case 0x3c:              /* BRK */
        f->elr += 4;
        break;
    default:
        console_lock();
        puts("not ok unexpected exception esr ");
        put_hex(f->esr);
        puts(" elr ");
        put_hex(f->elr);
        puts("\n");
        console_unlock();
        poweroff();
    }
}

static void reset(void) { n_exc = 0; e_vec = e_esr = e_far = e_elr = 0; }

static void load_probe(const char *name, u64 addr)
{
    char buf[96];
    int k = 0;
    reset();
    u64 v = *(volatile u32 *)(uintptr_t)addr;
    for (const char *s = name; *s; s++) buf[k++] = *s;
    if (n_exc) {
        const char *t = " abort esr";
        for (const char *s = t; *s; s++) buf[k++] = *s;
        buf[k] = 0;
        ok_val(buf, e_esr);
        k -= 4;
        t = " far";
        for (const char *s = t; *s; s++) buf[k++] = *s;
        buf[k] = 0;
        check_eq(buf, e_far, addr);
    } else {
        const char *t = " value";
        for (const char *s = t; *s; s++) buf[k++] = *s;
        buf[k] = 0;
        ok_val(buf, v);
    }
}

int main(void)
{
    u64 pc;

    /* UDF -> EC 0 */
    reset();
    __asm__ __volatile__("adr %0, 1f\n1: .inst 0x00000000" : "=r"(pc));
    check_eq("udf vector entry", e_vec, 4);
    check_eq("udf count", n_exc, 1);
    check_eq("udf elr", e_elr, pc);
    check_eq("udf esr", e_esr, 0x02000000);

    /* SVC #5 -> EC 0x15, ISS 5, ELR past the svc */
    reset();
    __asm__ __volatile__("adr %0, 1f\n1: svc #5" : "=r"(pc) :: "x0", "x1");
    check_eq("svc esr", e_esr, 0x56000005);
    check_eq("svc elr", e_elr, pc + 4);

    /* BRK #7 -> EC 0x3c */
    reset();
    __asm__ __volatile__("adr %0, 1f\n1: brk #7" : "=r"(pc));
    check_eq("brk esr", e_esr, 0xf2000007);
    check_eq("brk elr", e_elr, pc);

    /* unaligned load from Device memory (MMU off) -> alignment fault */
    static u64 words[4];
    reset();
    u64 addr = (u64)(uintptr_t)&words[1] + 1, tmp;
    __asm__ __volatile__("ldr %0, [%1]" : "=r"(tmp) : "r"(addr) : "memory");
    (void)tmp;
    if (n_exc) {
        ok_val("unaligned load esr", e_esr);
        check_eq("unaligned load far", e_far, addr);
    } else {
        ok("unaligned load no exception");
    }

    /* loads from addresses nothing is mapped at */
    load_probe("unassigned 0x09100000", 0x09100000);
    load_probe("unassigned 0x4000000000", 0x4000000000ull);

    /* PSCI */
    check_eq("psci version", (u64)psci_call(PSCI_VERSION, 0, 0, 0), 0x10001);
    check_eq("psci features cpu_on", (u64)psci_call(PSCI_FEATURES, PSCI_CPU_ON, 0, 0), 0);
    check_eq("psci features system_off", (u64)psci_call(PSCI_FEATURES, PSCI_SYSTEM_OFF, 0, 0), 0);
    check_eq("psci features unknown", (u64)psci_call(PSCI_FEATURES, 0x8400001f, 0, 0), (u64)PSCI_NOT_SUPPORTED);
    check_eq("psci migrate_info_type", (u64)psci_call(PSCI_MIGRATE_INFO_TYPE, 0, 0, 0), 2);
    check_eq("psci unknown function", (u64)psci_call(0x8400001f, 0, 0, 0), (u64)PSCI_NOT_SUPPORTED);
    check_eq("cpu_on bad mpidr", (u64)psci_call(PSCI_CPU_ON, 0xff, 0x40200000, 0), (u64)PSCI_INVALID_PARAMS);
    check_eq("cpu_on self is ALREADY_ON", (u64)psci_call(PSCI_CPU_ON, cpu_hwid(boot_cpu()), 0x40200000, 0), (u64)PSCI_ALREADY_ON);
    check_eq("affinity_info self", (u64)psci_call(PSCI_AFFINITY_INFO, cpu_hwid(boot_cpu()), 0, 0), 0);

    /* hvc with a function id outside the PSCI range */
    reset();
    s64 r = psci_call(0x12345, 0, 0, 0);
    if (n_exc)
        ok_val("non-psci hvc esr", e_esr);
    else
        ok_sval("non-psci hvc returned", r);
    return 0;
}
