/* Minimal read-only flattened device tree walker. */
#include "rt.h"

#define FDT_MAGIC 0xd00dfeedu
#define FDT_BEGIN_NODE 1
#define FDT_END_NODE 2
#define FDT_PROP 3
#define FDT_NOP 4
#define FDT_END 9

const void *fdt;

u32 fdt_be32(const void *p)
{
    const u8 *b = p;
    return ((u32)b[0] << 24) | ((u32)b[1] << 16) | ((u32)b[2] << 8) | b[3];
}

u64 fdt_be64(const void *p)
{
    return ((u64)fdt_be32(p) << 32) | fdt_be32((const u8 *)p + 4);
}

u64 fdt_cells(const void *p, int ncells)
{
    return ncells >= 2 ? fdt_be64(p) : fdt_be32(p);
}

static u32 hdr(int off) { return fdt_be32((const u8 *)fdt + off); }

int fdt_valid(const void *blob)
{
    if (!blob || fdt_be32(blob) != FDT_MAGIC)
        return 0;
    u32 ver = fdt_be32((const u8 *)blob + 20);
    u32 last = fdt_be32((const u8 *)blob + 24);
    return ver >= 16 && last <= 17;
}

u32 fdt_totalsize(void) { return hdr(4); }
u32 fdt_boot_cpuid(void) { return hdr(28); }

static const u8 *structs(void) { return (const u8 *)fdt + hdr(8); }
static const char *strings(void) { return (const char *)fdt + hdr(12); }

static int align4(int x) { return (x + 3) & ~3; }

/* Offset just after the token at off, also reporting the token. */
static int next_token(int off, u32 *tag)
{
    const u8 *s = structs();
    u32 t;
    for (;;) {
        t = fdt_be32(s + off);
        off += 4;
        if (t != FDT_NOP)
            break;
    }
    *tag = t;
    if (t == FDT_BEGIN_NODE) {
        const char *name = (const char *)s + off;
        off += align4((int)strlen(name) + 1);
    } else if (t == FDT_PROP) {
        u32 len = fdt_be32(s + off);
        off += 8 + align4((int)len);
    }
    return off;
}

/* Skip NOPs; returns offset of the next real token. */
static int skip_nops(int off)
{
    while (fdt_be32(structs() + off) == FDT_NOP)
        off += 4;
    return off;
}

int fdt_root(void)
{
    if (!fdt_valid(fdt))
        return -1;
    int off = skip_nops(0);
    return fdt_be32(structs() + off) == FDT_BEGIN_NODE ? off : -1;
}

const char *fdt_name(int node)
{
    return (const char *)structs() + node + 4;
}

/* Offset of the first token after the node's BEGIN_NODE header. */
static int node_body(int node)
{
    u32 tag;
    return next_token(node, &tag);
}

/* Offset after the END_NODE of node. */
static int node_end(int node)
{
    int depth = 0, off = node;
    u32 tag;
    for (;;) {
        off = next_token(off, &tag);
        if (tag == FDT_BEGIN_NODE)
            depth++;
        else if (tag == FDT_END_NODE && --depth == 0)
            return off;
        else if (tag == FDT_END)
            return -1;
    }
}

int fdt_first_child(int node)
{
    int off = node_body(node);
    u32 tag;
    for (;;) {
        int here = skip_nops(off);
        off = next_token(here, &tag);
        if (tag == FDT_PROP)
            continue;
        return tag == FDT_BEGIN_NODE ? here : -1;
    }
}

int fdt_next_sibling(int node)
{
    int off = node_end(node);
    if (off < 0)
        return -1;
    off = skip_nops(off);
    return fdt_be32(structs() + off) == FDT_BEGIN_NODE ? off : -1;
}

static int parent_walk(int cur, int target)
{
    for (int c = fdt_first_child(cur); c >= 0; c = fdt_next_sibling(c)) {
        if (c == target)
            return cur;
        if (c < target) {
            int r = parent_walk(c, target);
            if (r >= 0)
                return r;
        }
    }
    return -1;
}

int fdt_parent(int node)
{
    int root = fdt_root();
    if (node == root)
        return -1;
    return parent_walk(root, node);
}

const void *fdt_prop(int node, const char *name, int *len)
{
    int off = node_body(node);
    u32 tag;
    for (;;) {
        int here = skip_nops(off);
        off = next_token(here, &tag);
        if (tag != FDT_PROP)
            return NULL;
        const u8 *p = structs() + here + 4;
        u32 plen = fdt_be32(p);
        const char *pname = strings() + fdt_be32(p + 4);
        if (fdt_streq(pname, name)) {
            if (len)
                *len = (int)plen;
            return p + 8;
        }
    }
}

int fdt_streq(const char *a, const char *b)
{
    while (*a && *a == *b)
        a++, b++;
    return *a == *b;
}

/* Does node name match path component comp[0..n)? */
static int name_matches(const char *name, const char *comp, int n)
{
    int has_at = 0;
    for (int i = 0; i < n; i++)
        if (comp[i] == '@')
            has_at = 1;
    for (int i = 0; i < n; i++)
        if (name[i] != comp[i])
            return 0;
    return name[n] == 0 || (!has_at && name[n] == '@');
}

int fdt_path(const char *path)
{
    int node = fdt_root();
    if (node < 0 || *path != '/')
        return -1;
    while (*path) {
        while (*path == '/')
            path++;
        if (!*path)
            break;
        int n = 0;
        while (path[n] && path[n] != '/')
            n++;
        int c;
        for (c = fdt_first_child(node); c >= 0; c = fdt_next_sibling(c))
            if (name_matches(fdt_name(c), path, n))
                break;
        if (c < 0)
            return -1;
        node = c;
        path += n;
    }
    return node;
}

u32 fdt_prop_u32(int node, const char *name, u32 dflt)
{
    int len;
    const void *p = fdt_prop(node, name, &len);
    return p && len >= 4 ? fdt_be32(p) : dflt;
}

u64 fdt_prop_u64(int node, const char *name, u64 dflt)
{
    int len;
    const void *p = fdt_prop(node, name, &len);
    if (!p)
        return dflt;
    if (len >= 8)
        return fdt_be64(p);
    return len >= 4 ? fdt_be32(p) : dflt;
}

int fdt_address_cells(int node) { return (int)fdt_prop_u32(node, "#address-cells", 2); }
int fdt_size_cells(int node) { return (int)fdt_prop_u32(node, "#size-cells", 1); }

int fdt_reg(int node, int idx, u64 *addr, u64 *size)
{
    int parent = fdt_parent(node);
    int ac = parent >= 0 ? fdt_address_cells(parent) : 2;
    int sc = parent >= 0 ? fdt_size_cells(parent) : 1;
    int len;
    const u8 *p = fdt_prop(node, "reg", &len);
    int stride = 4 * (ac + sc);
    if (!p || stride == 0 || (idx + 1) * stride > len)
        return -1;
    p += idx * stride;
    if (addr)
        *addr = ac ? fdt_cells(p, ac) : 0;
    if (size)
        *size = sc ? fdt_cells(p + 4 * ac, sc) : 0;
    return 0;
}
