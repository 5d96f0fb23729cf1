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
#define SYSREG_SLOTS 256u                   /* power of two; 0 = empty */

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
    /* AArch64 MRS/MSR: only registers the board emulates go to Python. */
    uint32_t (*on_sysreg)(int reg, void *cp_reg, int is_write);
    int32_t nsysreg;
    int32_t pad2;
    uint32_t sysreg[SYSREG_SLOTS];          /* keys (op0,op1,CRn,CRm,op2)+1 */
    /* The host wants the run back (Ctrl-C, a wall-clock limit): stop before
     * the next instruction, uncharged, and say so in host_stopped, so that
     * the slot can be continued with its remaining budget as if it had never
     * stopped. Unlike `stop` it survives the start of a run (the host clears
     * it) and yields to every other reason to stop. */
    int32_t host_stop;
    int32_t host_stopped;                   /* the run ended for the host only */
    /* A trapped MRS/MSR moved PC in the middle of a block: Unicorn calls the
     * code hook of the next instruction once more before it leaves the
     * block (that call has always been charged; runs depend on it), so the
     * next call is no place for a host stop. */
    int32_t pc_moved;
};

/* Unicorn's uc_arm64_cp_reg */
struct cp_reg {
    uint32_t crn, crm, op0, op1, op2;
    uint64_t val;
};

static inline uint32_t sysreg_key(const struct cp_reg *c)
{
    return ((c->op0 & 3) << 14 | (c->op1 & 7) << 11 | (c->crn & 15) << 7
            | (c->crm & 15) << 3 | (c->op2 & 7)) + 1;
}

int vm_sysreg_add(struct vm_slot *s, uint32_t op0, uint32_t op1, uint32_t crn,
                  uint32_t crm, uint32_t op2)
{
    struct cp_reg c = { crn, crm, op0, op1, op2, 0 };
    uint32_t key = sysreg_key(&c), i = (key * 2654435761u) & (SYSREG_SLOTS - 1);
    if ((uint32_t)s->nsysreg >= SYSREG_SLOTS / 2)
        return -1;
    while (s->sysreg[i] != 0) {
        if (s->sysreg[i] == key)
            return 0;
        i = (i + 1) & (SYSREG_SLOTS - 1);
    }
    s->sysreg[i] = key;
    s->nsysreg++;
    return 0;
}

static int sysreg_emulated(const struct vm_slot *s, const struct cp_reg *c)
{
    uint32_t key = sysreg_key(c), i = (key * 2654435761u) & (SYSREG_SLOTS - 1);
    while (s->sysreg[i] != 0) {
        if (s->sysreg[i] == key)
            return 1;
        i = (i + 1) & (SYSREG_SLOTS - 1);
    }
    return 0;
}

/* UC_HOOK_INSN callbacks for UC_ARM64_INS_MRS / _MSR: 0 = let Unicorn do it. */
static uint32_t sysreg(struct vm_slot *s, int reg, void *cp, int is_write)
{
    uint32_t handled = sysreg_emulated(s, (struct cp_reg *)cp) ? s->on_sysreg(reg, cp, is_write) : 0;
    if (handled)
        s->pc_moved = 1;                    /* Python wrote PC past the instruction */
    return handled;
}

uint32_t vm_mrs(void *uc, int reg, void *cp, void *user)
{
    (void)uc;
    return sysreg((struct vm_slot *)user, reg, cp, 0);
}

uint32_t vm_msr(void *uc, int reg, void *cp, void *user)
{
    (void)uc;
    return sysreg((struct vm_slot *)user, reg, cp, 1);
}

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
    if (s->stop | s->host_stop || s->remaining <= 0) {
        if (s->stop || s->remaining <= 0 || !s->pc_moved) {
            if (!s->stop && s->remaining > 0)
                s->host_stopped = 1;
            s->emu_stop(uc);
            return;
        }
        s->pc_moved = 0;                    /* the repeated call: charge it, stop at the next */
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
