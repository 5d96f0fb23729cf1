/* unit_psci: PSCI corner cases of QEMU 7.2's virt, one line each.
 * Used by tests/test_firmware_calls.py; also runs under QEMU (test_toolchain). */
#include "rt.h"

#define AFFINITY_INFO32 0x84000004u
#define CPU_ON32        0x84000003u
#define MIGRATE64       0xc4000005u
#define CPU_SUSPEND64   0xc4000001u

int main(void)
{
    u64 me = cpu_hwid(boot_cpu());
    check_eq("affinity_info32 self", (u64)psci_call(AFFINITY_INFO32, me, 0, 0), 0);
    check_eq("affinity_info unknown mpidr", (u64)psci_call(PSCI_AFFINITY_INFO, 0xff, 0, 0),
             (u64)PSCI_INVALID_PARAMS);
    /* levels above 0 are always on (QEMU psci.c) */
    check_eq("affinity_info level 1", (u64)psci_call(PSCI_AFFINITY_INFO, 0xff, 1, 0), 0);
    /* MPIDR bit 31 (RES1 in the register) is not part of the CPU id QEMU compares */
    ok_sval("affinity_info self with bit 31", psci_call(PSCI_AFFINITY_INFO, me | 0x80000000u, 0, 0));
    check_eq("cpu_on32 self is ALREADY_ON", (u64)psci_call(CPU_ON32, me, 0x40200000, 0),
             (u64)PSCI_ALREADY_ON);
    check_eq("migrate not supported", (u64)psci_call(MIGRATE64, 0, 0, 0), (u64)PSCI_NOT_SUPPORTED);
    check_eq("features migrate", (u64)psci_call(PSCI_FEATURES, MIGRATE64, 0, 0),
             (u64)PSCI_NOT_SUPPORTED);
    check_eq("cpu_suspend bad power_state", (u64)psci_call(CPU_SUSPEND64, 0x10000000, 0, 0),
             (u64)PSCI_INVALID_PARAMS);
    return 0;
}
