/* vmachine guest runtime, ppc64 pseries flavour. */
#ifndef RT_H
#define RT_H
#include "rt_common.h"

#define ARCH_NAME "ppc64"

/* Saved state handed to on_exception()/on_irq(); modify and return to
 * resume (srr0 = resume address, srr1 = resume MSR). */
struct exc_frame {
    u64 gpr[32];
    u64 vec;        /* 0x300, 0x700, 0x900, ... */
    u64 srr0, srr1;
    u64 lr, ctr, cr, xer;
    u64 dar, dsisr;
    u64 pad;
};
#define EXC_PC(f) ((f)->srr0)

/* SRR1 program-check reason bits */
#define SRR1_PROG_FP      0x100000ull
#define SRR1_PROG_ILLEGAL 0x80000ull
#define SRR1_PROG_PRIV    0x40000ull
#define SRR1_PROG_TRAP    0x20000ull
#define MSR_SF 0x8000000000000000ull
#define MSR_EE 0x8000ull
#define MSR_PR 0x4000ull
#define MSR_ME 0x1000ull

/* hcall: r3 = op, r4..r12 = args[0..8]; on return args[] = r4..r12. */
long hcall(u64 op, u64 args[9]);
#define H_SUCCESS 0
#define H_FUNCTION (-2)
#define H_PARAMETER (-4)
#define H_GET_TERM_CHAR 0x54
#define H_PUT_TERM_CHAR 0x58
#define KVMPPC_H_RTAS 0xf000

extern u64 vty_termno;         /* reg of /vdevice/vty@... */

/* RTAS via KVMPPC_H_RTAS.  rtas_token(): -1 if /rtas lacks the name.
 * rtas_call(): returns rets[0] (status), or -9999 if the call is absent;
 * rets may be NULL when nret <= 1. */
s64 rtas_token(const char *name);
s32 rtas_call(const char *name, int nargs, int nret, const u32 *args, u32 *rets);
/* Raw call with an explicit token; *hret gets the hcall return. */
s32 rtas_call_token(u32 token, int nargs, int nret, const u32 *args,
                    u32 *rets, long *hret);

static inline u64 mfmsr(void) { u64 v; __asm__ __volatile__("mfmsr %0" : "=r"(v)); return v; }
static inline void mtmsrd(u64 v) { __asm__ __volatile__("mtmsrd %0" :: "r"(v) : "memory"); }
static inline u64 mftb(void) { u64 v; __asm__ __volatile__("mfspr %0, 268" : "=r"(v)); return v; }
static inline u64 mfdec(void) { u64 v; __asm__ __volatile__("mfspr %0, 22" : "=r"(v)); return v; }
static inline void mtdec(u64 v) { __asm__ __volatile__("mtspr 22, %0" :: "r"(v)); }
static inline u64 mfpvr(void) { u64 v; __asm__ __volatile__("mfspr %0, 287" : "=r"(v)); return v; }
static inline void local_irq_enable(void) { mtmsrd(mfmsr() | MSR_EE); }
static inline void local_irq_disable(void) { mtmsrd(mfmsr() & ~MSR_EE); }

#endif
