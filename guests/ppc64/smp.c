/* smp: start every CPU in the device tree, each marks itself up
 * (guests/common/smp_main.h). */
#include "rt.h"
#include "smp_main.h"

/* start-cpu on a running CPU: QEMU answers -1 (hardware error) */
static void smp_start_running_cpu(void)
{
    s64 tok = rtas_token("start-cpu");
    u32 args[3] = { (u32)cpu_hwid(1), 0x400000, 0 };
    u32 rets[1];
    rtas_call_token((u32)tok, 3, 1, args, rets, NULL);
    check_eq("start-cpu on running cpu", (u64)(s64)(s32)rets[0], (u64)-1);
}

int main(void)
{
    return smp_main();
}
