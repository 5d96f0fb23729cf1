/* smp: start every CPU in the device tree, each marks itself up
 * (guests/common/smp_main.h). */
#include "rt.h"
#include "smp_main.h"

/* CPU_ON for a running CPU: QEMU answers ALREADY_ON */
static void smp_start_running_cpu(void)
{
    s64 r = psci_call(PSCI_CPU_ON, cpu_hwid(1), 0x40200000, 0);
    check_eq("cpu_on on running cpu is ALREADY_ON", (u64)r, (u64)PSCI_ALREADY_ON);
}

int main(void)
{
    return smp_main();
}
