/* vmachine guest runtime, aarch64 virt flavour. */
#ifndef RT_H
#define RT_H
#include "rt_common.h"

#define ARCH_NAME "aarch64"

/* Saved state handed to on_exception()/on_irq(); modify and return to
 * resume (elr = resume address). */
struct exc_frame {
    u64 x[31];
    u64 sp;         /* SP at the time of the exception */
    u64 elr, spsr, esr, far;
    u64 vec;        /* vector entry 0..15: 4 = sync, 5 = IRQ from EL1h */
    u64 pad;
};
#define EXC_PC(f) ((f)->elr)
#define ESR_EC(esr) (((esr) >> 26) & 0x3f)
#define ESR_ISS(esr) ((esr) & 0x1ffffff)

/* PSCI through the conduit named by /psci "method" (hvc or smc). */
s64 psci_call(u64 fn, u64 a1, u64 a2, u64 a3);
#define PSCI_VERSION        0x84000000u
#define PSCI_CPU_OFF        0x84000002u
#define PSCI_CPU_ON         0xc4000003u
#define PSCI_AFFINITY_INFO  0xc4000004u
#define PSCI_MIGRATE_INFO_TYPE 0x84000006u
#define PSCI_SYSTEM_OFF     0x84000008u
#define PSCI_FEATURES       0x8400000au
#define PSCI_SUCCESS 0
#define PSCI_NOT_SUPPORTED (-1)
#define PSCI_INVALID_PARAMS (-2)
#define PSCI_ALREADY_ON (-4)

extern u64 uart_base;           /* PL011 from /chosen/stdout-path */

#define read_sysreg(r) ({ u64 __v; __asm__ __volatile__("mrs %0, " #r : "=r"(__v)); __v; })
#define write_sysreg(r, v) __asm__ __volatile__("msr " #r ", %0" :: "r"((u64)(v)) : "memory")
static inline void isb(void) { __asm__ __volatile__("isb" ::: "memory"); }

#endif
