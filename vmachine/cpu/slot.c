/* vmachine: instruction counting and exact stops for a vCPU slot, in C.
 *
 * Python hooks cost microseconds per call, and Unicorn's emu_start(count=N)
 * walks its whole code-hook list before every instruction, so each extra
 * exact-address hook (the trapped mftb/DEC instructions) slows every
 * instruction. This one code hook does all per-instruction work:
 *   - charges the instruction to the slot and stops before the first
 *     instruction past the budget, or as soon as the machine asks
 *     (an interrupt became deliverable): stops land on exact instruction
 *     boundaries whatever the translation blocks look like, so a restored
 *     machine continues exactly like the original;
 *   - calls back into Python only at watched addresses (a small hash set).
 * A block hook watches, while a masked interrupt waits, for the block start
 * where it can be taken (unmasking instructions end a block): it reads the
 * CPU's interrupt-enable bit itself (MSR[EE], PSTATE.I) and calls Python
 * only when that bit allows delivery.
 *
 * Built for the host with `python -m ziglang cc -shared` by
 * vmachine/toolchain.py (build_host_library) and loaded with ctypes; no
 * Unicorn header is needed: uc_emu_stop comes in as a function pointer. */
#include <stdint.h>

#define WATCH_SLOTS 1024u                   /* power of two; 0 = empty */

struct vm_slot {
    int64_t remaining;                      /* instructions left in the slot */
    int64_t executed;                       /* instructions charged */
    int32_t stop;                           /* stop before the next instruction */
    int32_t watch_blocks;                   /* call on_block at block starts */
    int32_t enabled;                        /* 0 while running register stubs */
    int32_t nwatch;                         /* entries in watch[] */
    int (*emu_stop)(void *uc);
    void (*on_block)(uint64_t address);
    void (*on_watch)(uint64_t address);
    int (*reg_read)(void *uc, int regid, void *value);
    int32_t enable_reg;                     /* register holding the enable bit */
    int32_t pad;
    uint64_t enable_mask;                   /* deliverable when (reg & mask) == want */
    uint64_t enable_want;
    uint64_t watch[WATCH_SLOTS];
};

static inline uint32_t slot_of(uint64_t a)
{
    return (uint32_t)((a >> 2) * 2654435761u) & (WATCH_SLOTS - 1);
}

int vm_watch_add(struct vm_slot *s, uint64_t address)
{
    uint32_t i = slot_of(address);
    if (address == 0 || (uint32_t)s->nwatch >= WATCH_SLOTS / 2)
        return -1;
    while (s->watch[i] != 0) {
        if (s->watch[i] == address)
            return 0;
        i = (i + 1) & (WATCH_SLOTS - 1);
    }
    s->watch[i] = address;
    s->nwatch++;
    return 0;
}

static inline int watched(const struct vm_slot *s, uint64_t address)
{
    uint32_t i = slot_of(address);
    while (s->watch[i] != 0) {
        if (s->watch[i] == address)
            return 1;
        i = (i + 1) & (WATCH_SLOTS - 1);
    }
    return 0;
}

void vm_insn(void *uc, uint64_t address, uint32_t size, void *user)
{
    struct vm_slot *s = (struct vm_slot *)user;
    (void)size;
    if (!s->enabled)
        return;
    if (s->stop || s->remaining <= 0) {
        s->emu_stop(uc);
        return;
    }
    s->remaining--;
    s->executed++;
    if (s->nwatch && watched(s, address)) {
        s->on_watch(address);
        if (s->stop)
            s->emu_stop(uc);
    }
}

void vm_block(void *uc, uint64_t address, uint32_t size, void *user)
{
    struct vm_slot *s = (struct vm_slot *)user;
    uint64_t reg = 0;
    (void)size;
    if (!s->enabled || !s->watch_blocks)
        return;
    if (s->reg_read && (s->reg_read(uc, s->enable_reg, &reg) != 0
                        || (reg & s->enable_mask) != s->enable_want))
        return;                             /* still masked: nothing to do */
    s->on_block(address);
    if (s->stop)
        s->emu_stop(uc);
}
