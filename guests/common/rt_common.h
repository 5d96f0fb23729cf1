/* vmachine guest runtime: API shared by every architecture.
 * Included by guests/<arch>/runtime/rt.h; guests include "rt.h" only. */
#ifndef RT_COMMON_H
#define RT_COMMON_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef signed char s8;
typedef short s16;
typedef int s32;
typedef long long s64;
typedef unsigned long size_t;
typedef unsigned long uintptr_t;

#define NULL ((void *)0)
#define MAX_CPUS 128            /* per-cpu stacks and tables */
#define CPU_STACK_SIZE 8192

#define READ_ONCE(x) (*(volatile __typeof__(x) *)&(x))
#define WRITE_ONCE(x, v) (*(volatile __typeof__(x) *)&(x) = (v))
#define barrier() __asm__ __volatile__("" ::: "memory")

/* ---- console (all output is '\n'-terminated lines, no '\r') ---- */
void putc(char c);
void puts(const char *s);            /* writes s as is: no newline added */
void put_hex(u64 v);                 /* "0x" + lowercase hex, no leading zeros */
void put_dec(u64 v);
void put_sdec(s64 v);                /* signed decimal */

/* TAP-like results; each prints one whole line under the console lock. */
void ok(const char *name);                         /* "ok NAME\n" */
void not_ok(const char *name, const char *detail); /* "not ok NAME DETAIL\n" */
void check(int cond, const char *name);            /* ok or "not ok NAME failed" */
/* "ok NAME" if got == want, else "not ok NAME got 0x.. want 0x.." */
void check_eq(const char *name, u64 got, u64 want);
/* prints "ok NAME = VALUE" with VALUE in hex: for recording observed values */
void ok_val(const char *name, u64 value);
/* prints "ok NAME = VALUE" with VALUE signed decimal */
void ok_sval(const char *name, s64 value);
int failures(void);                                /* number of not_ok so far */

void poweroff(void) __attribute__((noreturn));

/* ---- spinlock (the console lock serialises whole lines on SMP) ---- */
typedef struct { volatile u32 v; } spinlock_t;
void spin_lock(spinlock_t *l);
void spin_unlock(spinlock_t *l);
void console_lock(void);
void console_unlock(void);

/* ---- flattened device tree (read-only; FDT_NOP tokens are skipped) ---- */
extern const void *fdt;              /* set by the runtime before main() */
int fdt_valid(const void *blob);     /* 1 if the header magic/version are sane */
u32 fdt_totalsize(void);
u32 fdt_boot_cpuid(void);
int fdt_root(void);                  /* offset of the root node */
/* "/a/b@1/c": a component without '@' also matches "name@unit" */
int fdt_path(const char *path);      /* node offset or -1 */
const char *fdt_name(int node);      /* "name@unit" ("" for root) */
int fdt_first_child(int node);       /* -1 if none */
int fdt_next_sibling(int node);      /* -1 if none */
int fdt_parent(int node);            /* -1 for root */
const void *fdt_prop(int node, const char *name, int *len); /* NULL if absent */
u32 fdt_be32(const void *p);
u64 fdt_be64(const void *p);
u64 fdt_cells(const void *p, int ncells);   /* 1 or 2 cells, big-endian */
u32 fdt_prop_u32(int node, const char *name, u32 dflt);
u64 fdt_prop_u64(int node, const char *name, u64 dflt);
int fdt_address_cells(int node);     /* of node's children; default 2 */
int fdt_size_cells(int node);        /* of node's children; default 1 */
/* idx-th (addr,size) of node's "reg", decoded with the parent's cells */
int fdt_reg(int node, int idx, u64 *addr, u64 *size);
int fdt_streq(const char *a, const char *b);

/* ---- CPUs ---- */
int cpu_index(void);                 /* 0 .. ncpus()-1, in device-tree order */
int ncpus(void);                     /* CPUs listed in the device tree */
u64 cpu_hwid(int idx);               /* ppc64: RTAS cpu id; aarch64: MPIDR affinity */
int boot_cpu(void);                  /* index of the CPU that ran main() */
/* Start CPU idx at fn(arg) on its own stack; returns the firmware status
 * (RTAS status on ppc64, PSCI return on aarch64).  When fn returns the
 * CPU stops itself. */
s64 cpu_start(int idx, void (*fn)(u64 arg), u64 arg);
/* Firmware view: 1 running, 0 stopped, other values as the firmware says
 * (ppc64: query-cpu-stopped-state state; aarch64: AFFINITY_INFO). */
s64 cpu_state(int idx);
void cpu_relax(void);

/* ---- time (only for timeouts; never print these values) ---- */
u64 rt_ticks(void);                  /* ppc64: timebase; aarch64: CNTVCT_EL0 */
u64 rt_ticks_hz(void);               /* ppc64: /cpus timebase-frequency; aarch64: CNTFRQ_EL0 */
/* Poll until *flag != 0 or `seconds` elapse; returns the final *flag. */
u32 wait_flag(volatile u32 *flag, u64 seconds);

/* ---- exceptions ----
 * struct exc_frame is arch-specific (rt.h).  Weak handlers: a guest defines
 * on_exception() / on_irq() to take over; the frame may be modified and is
 * restored on return (e.g. advance the PC to skip a faulting instruction). */
struct exc_frame;
void on_exception(struct exc_frame *f);
void on_irq(struct exc_frame *f);

/* ---- libc bits the compiler may call ---- */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

/* entry point provided by each guest */
int main(void);

/* arch hooks used by the common code */
void arch_console_write(const char *s, int n);
void arch_poweroff(void) __attribute__((noreturn));

#endif
