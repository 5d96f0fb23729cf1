/* hello: console, device tree sanity, power-off. */
#include "rt.h"

extern char __image_start[], __image_end[];

int main(void)
{
    puts("hello from ppc64\n");
    check(fdt_valid(fdt), "fdt magic");
    check(fdt_path("/chosen") >= 0, "fdt /chosen");

    int mem = fdt_path("/memory@0");
    check(mem >= 0, "fdt /memory@0");
    int len = 0;
    const char *dt = mem >= 0 ? fdt_prop(mem, "device_type", &len) : NULL;
    check(dt && fdt_streq(dt, "memory"), "memory device_type");
    u64 base = ~0ull, size = 0;
    check(mem >= 0 && fdt_reg(mem, 0, &base, &size) == 0, "memory reg");
    check_eq("memory base", base, 0);
    ok_val("memory size", size);
    /* the image and the device tree itself must lie inside RAM */
    check((u64)(uintptr_t)__image_end <= base + size, "image inside memory");
    check((u64)(uintptr_t)fdt + fdt_totalsize() <= base + size, "fdt inside memory");

    int chosen = fdt_path("/chosen");
    const void *bk = chosen >= 0 ? fdt_prop(chosen, "qemu,boot-kernel", &len) : NULL;
    check(bk && len == 16, "chosen qemu,boot-kernel");
    if (bk && len == 16) {
        check_eq("boot-kernel addr", fdt_be64(bk), (u64)(uintptr_t)__image_start);
        check(fdt_be64((const u8 *)bk + 8) > 0, "boot-kernel size");
    }
    check(vty_termno != 0, "vty found");
    ok_val("vty termno", vty_termno);
    check((mfmsr() & MSR_SF) != 0, "64-bit mode");
    check(rtas_token("power-off") >= 0, "rtas power-off token");
    check(ncpus() >= 1 && boot_cpu() == 0 && cpu_index() == 0, "boot cpu is cpu 0");
    ok("hello");
    return 0;
}
