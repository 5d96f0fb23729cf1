/* Console output and result lines, common to all architectures. */
#include "rt.h"

static spinlock_t console_spin;
static volatile int nfail;

void spin_lock(spinlock_t *l)
{
    while (__atomic_exchange_n(&l->v, 1, __ATOMIC_ACQUIRE))
        while (READ_ONCE(l->v))
            cpu_relax();
}

void spin_unlock(spinlock_t *l)
{
    __atomic_store_n(&l->v, 0, __ATOMIC_RELEASE);
}

void console_lock(void) { spin_lock(&console_spin); }
void console_unlock(void) { spin_unlock(&console_spin); }

size_t strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

void putc(char c) { arch_console_write(&c, 1); }
void puts(const char *s) { arch_console_write(s, (int)strlen(s)); }

/* A line is assembled here, then written with one console call. */
struct line { char buf[256]; int n; };

static void l_str(struct line *l, const char *s)
{
    while (*s && l->n < (int)sizeof(l->buf) - 1)
        l->buf[l->n++] = *s++;
}

static void l_hex(struct line *l, u64 v)
{
    char t[20];
    int i = 0;
    l_str(l, "0x");
    do {
        t[i++] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    while (i && l->n < (int)sizeof(l->buf) - 1)
        l->buf[l->n++] = t[--i];
}

static void l_dec(struct line *l, u64 v)
{
    char t[24];
    int i = 0;
    do {
        t[i++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (i && l->n < (int)sizeof(l->buf) - 1)
        l->buf[l->n++] = t[--i];
}

static void l_sdec(struct line *l, s64 v)
{
    if (v < 0) {
        l_str(l, "-");
        l_dec(l, (u64)0 - (u64)v);
    } else {
        l_dec(l, (u64)v);
    }
}

static void l_flush(struct line *l)
{
    console_lock();
    arch_console_write(l->buf, l->n);
    console_unlock();
}

void put_hex(u64 v) { struct line l = { .n = 0 }; l_hex(&l, v); arch_console_write(l.buf, l.n); }
void put_dec(u64 v) { struct line l = { .n = 0 }; l_dec(&l, v); arch_console_write(l.buf, l.n); }
void put_sdec(s64 v) { struct line l = { .n = 0 }; l_sdec(&l, v); arch_console_write(l.buf, l.n); }

void ok(const char *name)
{
    struct line l = { .n = 0 };
    l_str(&l, "ok ");
    l_str(&l, name);
    l_str(&l, "\n");
    l_flush(&l);
}

void not_ok(const char *name, const char *detail)
{
    struct line l = { .n = 0 };
    __atomic_add_fetch(&nfail, 1, __ATOMIC_RELAXED);
    l_str(&l, "not ok ");
    l_str(&l, name);
    if (detail && *detail) {
        l_str(&l, " ");
        l_str(&l, detail);
    }
    l_str(&l, "\n");
    l_flush(&l);
}

int failures(void) { return nfail; }

void check(int cond, const char *name)
{
    if (cond)
        ok(name);
    else
        not_ok(name, "failed");
}

void check_eq(const char *name, u64 got, u64 want)
{
    struct line l = { .n = 0 };
    if (got == want) {
        ok(name);
        return;
    }
    __atomic_add_fetch(&nfail, 1, __ATOMIC_RELAXED);
    l_str(&l, "not ok ");
    l_str(&l, name);
    l_str(&l, " got ");
    l_hex(&l, got);
    l_str(&l, " want ");
    l_hex(&l, want);
    l_str(&l, "\n");
    l_flush(&l);
}

void ok_val(const char *name, u64 value)
{
    struct line l = { .n = 0 };
    l_str(&l, "ok ");
    l_str(&l, name);
    l_str(&l, " = ");
    l_hex(&l, value);
    l_str(&l, "\n");
    l_flush(&l);
}

void ok_sval(const char *name, s64 value)
{
    struct line l = { .n = 0 };
    l_str(&l, "ok ");
    l_str(&l, name);
    l_str(&l, " = ");
    l_sdec(&l, value);
    l_str(&l, "\n");
    l_flush(&l);
}

void poweroff(void)
{
    arch_poweroff();
}

/* ---- memory helpers (the compiler may emit calls to these) ---- */
void *memset(void *d, int c, size_t n)
{
    volatile u8 *p = d;
    while (n--)
        *p++ = (u8)c;
    return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
    volatile u8 *p = d;
    const volatile u8 *q = s;
    while (n--)
        *p++ = *q++;
    return d;
}

void *memmove(void *d, const void *s, size_t n)
{
    volatile u8 *p = d;
    const volatile u8 *q = s;
    if (p < q || p >= q + n) {
        while (n--)
            *p++ = *q++;
    } else {
        while (n--)
            p[n] = q[n];
    }
    return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const u8 *p = a, *q = b;
    for (; n; n--, p++, q++)
        if (*p != *q)
            return *p < *q ? -1 : 1;
    return 0;
}

u32 wait_flag(volatile u32 *flag, u64 seconds)
{
    u64 hz = rt_ticks_hz();
    u64 start = rt_ticks();
    u32 v;
    while (!(v = __atomic_load_n(flag, __ATOMIC_ACQUIRE))) {
        if (hz && rt_ticks() - start > seconds * hz)
            break;
        cpu_relax();
    }
    return v;
}
