/* vmachine: a vCPU slot in C: instructions counted per translation block,
 * guest time read without leaving C, stops on block boundaries.
 *
 * Counting. Any Unicorn code hook on every instruction makes Unicorn leave
 * translated code before each instruction; a block hook does not. So, as
 * QEMU's icount, the block hook charges a block's instructions when it
 * starts (both ISAs are fixed 4-byte), and the few events that leave a block
 * early give back what did not run (vm_cut: exceptions, unassigned
 * accesses, a hook that moved PC). Unicorn calls the block hook *before*
 * the block's exit check (translator_loop: the hook call precedes
 * gen_tb_start), so a stop decided there lands before the block runs:
 *   - a guest-visible stop (an interrupt became deliverable, a synchronous
 *     exception to deliver, the budget is spent) is only a flag until the
 *     next block start, where the block hook stops, uncharged: every such
 *     stop lands on a block boundary, whatever Unicorn chained;
 *   - a host stop (Ctrl-C, a wall-clock limit) lands there too; an *exact*
 *     host stop (single step, run to instruction N) is made by a code hook
 *     on every instruction, switched on only for it (`exact`). A host stop
 *     is invisible: the slot continues later as if it never stopped, and
 *     when it stopped inside a block, the rest of that block runs before any
 *     stop is honoured again (`defer`), as it would have.
 *
 * Time. One instruction is one nanosecond of the vCPU's time:
 * now = time_origin + instructions executed before the current one. The
 * PPC timebase (mftb, mfspr TBL/TBU) and the AArch64 counters (CNTVCT_EL0,
 * CNTPCT_EL0) are answered here, by writing the target register (and, on
 * PPC, PC past the instruction: Unicorn's own mftb reads a plain SPR field,
 * its timebase helpers are compiled out).
 *
 * New code (PPC). Time-base and other trapped SPR accesses need a code hook
 * at their address, and hooks apply to code translated after they exist.
 * An edge-generated hook sees every block when Unicorn translates it
 * (loaded images, code the guest copied or wrote): a block holding a
 * trapped access that has no hook yet is stopped before it runs
 * (`retranslate`), Python adds the hooks, drops the translation and
 * starts again there, uncharged and invisible.
 *
 * Built for the host with `python -m ziglang cc -shared` by
 * vmachine/toolchain.py (build_host_library) and loaded with ctypes; no
 * Unicorn header is needed: Unicorn's entry points come in as pointers. */
#include <stdint.h>

#define WATCH_SLOTS 4096u                   /* power of two; 0 = empty */
#define SYSREG_SLOTS 256u                   /* power of two; 0 = empty */

/* sysreg flags */
#define SR_EMULATED 1u                      /* the board answers it */
#define SR_KNOWN_READ 2u                    /* Unicorn implements MRS of it: skipping goes on in the block */
#define SR_COUNTER 4u                       /* CNTVCT/CNTPCT: answered here */
#define SR_KNOWN_WRITE 8u                   /* Unicorn implements MSR to it */

struct vm_slot {
    int64_t remaining;                      /* instructions left in the slot */
    int64_t executed;                       /* instructions charged */
    uint64_t block_pc;                      /* the block being executed: [block_pc, block_end) */
    uint64_t block_end;
    int32_t stop;                           /* guest stop at the next block start */
    int32_t defer;                          /* no stop before the first block of this run */
    int32_t enabled;                        /* 0 while running register stubs */
    int32_t host_stop;                      /* the host wants the run back */
    int32_t host_stopped;                   /* the run ended for the host only */
    int32_t exact;                          /* exact host stop after exact_left instructions */
    int64_t exact_left;
    int32_t retranslate;                    /* new code needs hooks: run again from PC */
    int32_t watch_blocks;                   /* call on_block at block starts */
    uint64_t new_code_pc;                   /* the block that needs hooks */
    uint64_t new_code_end;
    int (*emu_stop)(void *uc);
    int (*reg_read)(void *uc, int regid, void *value);
    int (*reg_write)(void *uc, int regid, const void *value);
    /* uc_reg_write2: a PC write that leaves the block without switching off
     * Unicorn's PC sync for memory hooks (uc_reg_write leaves that off until
     * an exit through a code-hook check, which an ending block never makes) */
    int (*reg_write2)(void *uc, int regid, const void *value, uint64_t *size);
    void (*on_block)(uint64_t address);
    uint64_t (*on_watch)(uint64_t address);  /* emulated: where the block ends; 0: runs natively */
    uint32_t (*on_sysreg)(int reg, void *cp_reg, int is_write);
    int32_t pc_reg;
    int32_t enable_reg;                     /* register holding the interrupt-enable bit */
    uint64_t enable_mask;                   /* deliverable when (reg & mask) == want */
    uint64_t enable_want;
    /* time */
    int64_t time_origin;                    /* ns of the vCPU when executed == 0 */
    int32_t tb_fast;                        /* PPC: answer time-base reads here */
    int32_t gpr0_reg;                       /* PPC: register id of r0 */
    uint64_t tb_guest_offset;               /* PPC: what the guest's TBL/TBU writes added */
    /* PPC: guest RAM, to scan new blocks */
    const uint8_t *ram;
    uint64_t ram_base;
    uint64_t ram_size;
    uint32_t spr_trap[2][32];               /* [mfspr, mtspr] bit per SPR 0..1023 */
    int32_t nwatch;
    int32_t nsysreg;
    uint64_t watch[WATCH_SLOTS];            /* addresses with a watch hook */
    uint32_t sysreg[SYSREG_SLOTS];          /* keys (op0,op1,CRn,CRm,op2)+1 */
    uint8_t sysreg_flags[SYSREG_SLOTS];
    int32_t access_size;                    /* the guest's access now reaching an MMIO window */
    int32_t pad;
    int64_t counted;                        /* exact mode: instructions seen by vm_insn (an audit) */
};

/* Unicorn's uc_arm64_cp_reg */
struct cp_reg {
    uint32_t crn, crm, op0, op1, op2;
    uint64_t val;
};

/* Unicorn's uc_tb */
struct uc_tb {
    uint64_t pc;
    uint16_t icount;
    uint16_t size;
};

/* ---- counting ------------------------------------------------------------------- */

/* The instructions of the current block from `pc` on did not run (and will
 * be charged again by the block that runs them). */
void vm_cut(struct vm_slot *s, uint64_t pc)
{
    if (s->block_pc <= pc && pc < s->block_end) {
        int64_t back = (int64_t)((s->block_end - pc) >> 2);
        s->executed -= back;
        s->remaining += back;
        s->block_end = pc;
    }
}

/* Instructions executed before the one at `pc` (charged minus the rest of the block). */
static inline int64_t position(const struct vm_slot *s, uint64_t pc)
{
    if (s->block_pc <= pc && pc < s->block_end)
        return s->executed - (int64_t)((s->block_end - pc) >> 2);
    return s->executed;
}

int64_t vm_position(const struct vm_slot *s, uint64_t pc)
{
    return position(s, pc);
}

static inline int64_t now_ns(const struct vm_slot *s, uint64_t pc)
{
    return s->time_origin + position(s, pc);
}

void vm_block(void *uc, uint64_t address, uint32_t size, void *user)
{
    struct vm_slot *s = (struct vm_slot *)user;
    uint64_t reg = 0;
    if (!s->enabled)
        return;
    if (s->retranslate) {                   /* hooks first: this block must not run */
        s->emu_stop(uc);
        return;
    }
    if (s->defer) {
        s->defer = 0;                       /* the rest of a block a host stop cut */
    } else {
        if (s->stop || s->remaining <= 0) {
            s->stop = 1;
            s->emu_stop(uc);
            return;
        }
        if (s->watch_blocks && !(s->reg_read && (s->reg_read(uc, s->enable_reg, &reg) != 0
                                                 || (reg & s->enable_mask) != s->enable_want))) {
            s->on_block(address);           /* a masked interrupt may be deliverable now */
            if (s->stop) {
                s->emu_stop(uc);
                return;
            }
        }
        if (s->host_stop) {
            s->host_stopped = 1;
            s->emu_stop(uc);
            return;
        }
    }
    s->block_pc = address;
    s->block_end = address + size;
    s->remaining -= size >> 2;
    s->executed += size >> 2;
}

/* Exact mode: a code hook on every instruction, for host stops only. */
void vm_insn(void *uc, uint64_t address, uint32_t size, void *user)
{
    struct vm_slot *s = (struct vm_slot *)user;
    (void)size;
    if (!s->enabled || !s->exact)
        return;
    if (s->exact_left <= 0 || s->host_stop) {
        if (address != s->block_pc)
            s->defer = 1;                   /* mid-block: its rest runs first when continued */
        vm_cut(s, address);
        s->host_stopped = 1;
        s->emu_stop(uc);
        return;
    }
    s->exact_left--;
    s->counted++;
}

/* UC_HOOK_MEM_READ | UC_HOOK_MEM_WRITE on each MMIO window: the size of
 * the guest's access, which Unicorn then splits into <= 4-byte device
 * callbacks (memory.AccessAssembler puts them together again). Unicorn
 * also syncs PC for a memory hook, so the callbacks know where they are. */
void vm_mem(void *uc, int type, uint64_t address, int size, int64_t value, void *user)
{
    (void)uc;
    (void)type;
    (void)address;
    (void)value;
    ((struct vm_slot *)user)->access_size = size;
}

/* ---- watched addresses (PPC SPR accesses) -------------------------------------------- */

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
    return 1;
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

static inline int ram_insn(const struct vm_slot *s, uint64_t address, uint32_t *insn)
{
    if (!s->ram || address < s->ram_base || address - s->ram_base + 4 > s->ram_size)
        return 0;
    const uint8_t *p = s->ram + (address - s->ram_base);
    *insn = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    return 1;
}

/* mfspr/mftb (0) or mtspr (1) of an SPR the machine answers; -1 otherwise */
static inline int trapped_spr(const struct vm_slot *s, uint32_t insn, uint32_t *spr_out)
{
    uint32_t xo = (insn >> 1) & 0x3FF, spr;
    int kind;
    if (insn >> 26 != 31)
        return -1;
    if (xo == 339 || xo == 371)
        kind = 0;
    else if (xo == 467)
        kind = 1;
    else
        return -1;
    spr = ((insn >> 16) & 31) | (((insn >> 11) & 31) << 5);
    if (!(s->spr_trap[kind][spr >> 5] >> (spr & 31) & 1))
        return -1;
    *spr_out = spr;
    return kind;
}

/* A code hook on one watched instruction (installed by Python per address). */
void vm_watch(void *uc, uint64_t address, uint32_t size, void *user)
{
    struct vm_slot *s = (struct vm_slot *)user;
    uint32_t insn = 0, spr = 0;
    uint64_t pc = 0;
    (void)size;
    if (!s->enabled)
        return;
    if (s->exact && (s->exact_left <= 0 || s->host_stop))
        return;                             /* vm_insn stops before it */
    if (s->tb_fast && ram_insn(s, address, &insn) && trapped_spr(s, insn, &spr) == 0
        && (spr == 268 || spr == 269)) {
        /* mftb / mfspr TBL, TBU: 512 MHz (QEMU's pseries), plus the guest's writes */
        unsigned __int128 ns = (unsigned __int128)(uint64_t)now_ns(s, address);
        uint64_t tb = (uint64_t)(ns * 64u / 125u) + s->tb_guest_offset;
        if (spr == 269)
            tb >>= 32;
        s->reg_write(uc, s->gpr0_reg + (int)((insn >> 21) & 31), &tb);
        pc = address + 4;
        s->reg_write(uc, s->pc_reg, &pc);
        vm_cut(s, pc);
        return;
    }
    pc = s->on_watch(address);              /* where the block ends, 0: it goes on */
    if (pc)
        vm_cut(s, pc);
}

/* UC_HOOK_EDGE_GENERATED: a block was just translated; does it need hooks? */
void vm_edge(void *uc, struct uc_tb *cur, struct uc_tb *prev, void *user)
{
    struct vm_slot *s = (struct vm_slot *)user;
    uint32_t insn, spr;
    (void)uc;
    (void)prev;
    if (!s->enabled || !s->ram)
        return;
    for (uint64_t a = cur->pc; a < cur->pc + cur->size; a += 4) {
        if (ram_insn(s, a, &insn) && trapped_spr(s, insn, &spr) >= 0 && !watched(s, a)) {
            s->retranslate = 1;             /* vm_block stops before it runs */
            s->new_code_pc = cur->pc;
            s->new_code_end = cur->pc + cur->size;
            return;
        }
    }
}

/* ---- AArch64 MRS/MSR ------------------------------------------------------------------ */

static inline uint32_t sysreg_key(const struct cp_reg *c)
{
    return ((c->op0 & 3) << 14 | (c->op1 & 7) << 11 | (c->crn & 15) << 7
            | (c->crm & 15) << 3 | (c->op2 & 7)) + 1;
}

int vm_sysreg_add(struct vm_slot *s, uint32_t op0, uint32_t op1, uint32_t crn,
                  uint32_t crm, uint32_t op2, uint32_t flags)
{
    struct cp_reg c = { crn, crm, op0, op1, op2, 0 };
    uint32_t key = sysreg_key(&c), i = (key * 2654435761u) & (SYSREG_SLOTS - 1);
    if ((uint32_t)s->nsysreg >= SYSREG_SLOTS / 2)
        return -1;
    while (s->sysreg[i] != 0 && s->sysreg[i] != key)
        i = (i + 1) & (SYSREG_SLOTS - 1);
    if (s->sysreg[i] == 0)
        s->nsysreg++;
    s->sysreg[i] = key;
    s->sysreg_flags[i] = (uint8_t)(flags | SR_EMULATED);
    return 0;
}

static uint32_t sysreg_flags(const struct vm_slot *s, const struct cp_reg *c)
{
    uint32_t key = sysreg_key(c), i = (key * 2654435761u) & (SYSREG_SLOTS - 1);
    while (s->sysreg[i] != 0) {
        if (s->sysreg[i] == key)
            return s->sysreg_flags[i];
        i = (i + 1) & (SYSREG_SLOTS - 1);
    }
    return 0;
}

/* 0 = let Unicorn do it. A register Unicorn implements is skipped and the
 * block goes on; for one it does not, Unicorn ends the block at the
 * instruction with PC on it, so PC moves past it here. on_sysreg returns 2
 * when the handler raised: PC stays on the access (it runs again when the
 * slot goes on) where Unicorn allows it, i.e. for a register it does not
 * implement; for one it does, the access is dropped, the block goes on. */
static uint32_t sysreg(struct vm_slot *s, void *uc, int reg, struct cp_reg *cp, int is_write)
{
    uint32_t flags = s->enabled ? sysreg_flags(s, cp) : 0, handled = 1;
    uint64_t pc = 0;
    if (!flags)
        return 0;
    if (flags & SR_COUNTER && !is_write) {
        uint64_t value = 0;
        if (s->reg_read(uc, s->pc_reg, &pc) != 0)
            return 0;
        value = (uint64_t)now_ns(s, pc) / 16u;  /* 62.5 MHz, as QEMU's virt */
        s->reg_write(uc, reg, &value);      /* XZR: Unicorn ignores it */
    } else if (!(handled = s->on_sysreg(reg, cp, is_write))) {
        return 0;
    }
    if (!(flags & (is_write ? SR_KNOWN_WRITE : SR_KNOWN_READ))) {
        uint64_t size = 8;
        if (s->reg_read(uc, s->pc_reg, &pc) != 0)
            return 1;
        if (handled != 2)
            pc += 4;
        s->reg_write2(uc, s->pc_reg, &pc, &size);
        vm_cut(s, pc);
    }
    return 1;
}

uint32_t vm_mrs(void *uc, int reg, void *cp, void *user)
{
    return sysreg((struct vm_slot *)user, uc, reg, (struct cp_reg *)cp, 0);
}

uint32_t vm_msr(void *uc, int reg, void *cp, void *user)
{
    return sysreg((struct vm_slot *)user, uc, reg, (struct cp_reg *)cp, 1);
}
