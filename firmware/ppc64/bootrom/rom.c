/* pseries boot ROM: find /chosen/qemu,boot-kernel and jump to the kernel
 * with r3 = FDT, r4 = kernel address, r5 = 0. */
typedef unsigned int u32;
typedef unsigned long long u64;

long rom_hcall(u64 op, u64 a0, u64 a1, u64 a2, u64 a3);

static u32 be32(const void *p)
{
    const unsigned char *b = p;
    return ((u32)b[0] << 24) | ((u32)b[1] << 16) | ((u32)b[2] << 8) | b[3];
}

static u64 be64(const void *p)
{
    return ((u64)be32(p) << 32) | be32((const char *)p + 4);
}

static int streq(const char *a, const char *b)
{
    while (*a && *a == *b)
        a++, b++;
    return *a == *b;
}

static int slen(const char *s)
{
    int n = 0;
    while (s[n])
        n++;
    return n;
}

/* Property `prop` of a top-level node whose name (before '@') is `node`. */
static const void *find_prop(const char *fdt, const char *node,
                             const char *prop, u32 *len)
{
    if (be32(fdt) != 0xd00dfeedu)
        return 0;
    const char *st = fdt + be32(fdt + 8);
    const char *strs = fdt + be32(fdt + 12);
    u32 off = 0;
    int depth = 0, in_node = 0;
    for (;;) {
        u32 tag = be32(st + off);
        off += 4;
        if (tag == 1) {                 /* BEGIN_NODE */
            const char *name = st + off;
            depth++;
            if (depth == 2) {
                int n = slen(node);
                int i = 0;
                while (i < n && name[i] == node[i])
                    i++;
                in_node = i == n && (name[n] == 0 || name[n] == '@');
            }
            off += (u32)(slen(name) + 4) & ~3u;
        } else if (tag == 2) {          /* END_NODE */
            if (depth == 2)
                in_node = 0;
            depth--;
        } else if (tag == 3) {          /* PROP */
            u32 plen = be32(st + off);
            const char *pname = strs + be32(st + off + 4);
            if (in_node && depth == 2 && streq(pname, prop)) {
                *len = plen;
                return st + off + 8;
            }
            off += 8 + ((plen + 3) & ~3u);
        } else if (tag == 4) {          /* NOP */
            continue;
        } else {
            return 0;
        }
    }
}

/* vty termno: the unit address of /chosen/stdout-path ("/vdevice/vty@N"),
 * else QEMU's first VIO address. */
static u64 vty_termno(const char *fdt)
{
    u32 len;
    const char *p = find_prop(fdt, "chosen", "stdout-path", &len);
    if (!p)
        return 0x71000000;
    while (*p && *p != '@')
        p++;
    if (!*p)
        return 0x71000000;
    u64 v = 0;
    for (p++; *p && *p != ':'; p++) {
        int d = *p >= '0' && *p <= '9' ? *p - '0' :
                *p >= 'a' && *p <= 'f' ? *p - 'a' + 10 : -1;
        if (d < 0)
            return 0x71000000;
        v = v * 16 + (u64)d;
    }
    return v;
}

static void say(const char *fdt, const char *s)
{
    u64 term = vty_termno(fdt);
    int n = slen(s);
    while (n > 0) {
        int k = n > 16 ? 16 : n;
        unsigned char b[16] = { 0 };
        for (int i = 0; i < k; i++)
            b[i] = (unsigned char)s[i];
        rom_hcall(0x58, term, (u64)k, be64(b), be64(b + 8));
        s += k;
        n -= k;
    }
}

static void power_off(const char *fdt)
{
    u32 len;
    const void *tok = find_prop(fdt, "rtas", "power-off", &len);
    static u32 buf[8] __attribute__((aligned(16)));
    if (tok && len == 4) {
        buf[0] = be32(tok);
        buf[1] = 2;
        buf[2] = 1;
        buf[3] = buf[4] = buf[5] = 0;
        rom_hcall(0xf000, (u64)(unsigned long)buf, 0, 0, 0);
    }
    for (;;)
        ;
}

void rom_main(u64 fdt_addr)
{
    const char *fdt = (const char *)(unsigned long)fdt_addr;
    u32 len = 0;
    const void *k = find_prop(fdt, "chosen", "qemu,boot-kernel", &len);
    if (!k || len < 16) {
        say(fdt, "bootrom: no kernel\n");
        power_off(fdt);
    }
    u64 addr = be64(k);
    void (*entry)(u64, u64, u64) = (void (*)(u64, u64, u64))(unsigned long)addr;
    entry(fdt_addr, addr, 0);
    for (;;)
        ;
}
