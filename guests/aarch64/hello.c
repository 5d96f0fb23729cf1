/* hello: console, device tree sanity, power-off. */
#include "rt.h"

extern char __image_start[], __image_end[];

int main(void)
{
    puts("hello from aarch64\n");
    check(fdt_valid(fdt), "fdt magic");
    check_eq("fdt address", (u64)(uintptr_t)fdt, 0x40000000);
    check(fdt_path("/chosen") >= 0, "fdt /chosen");

    int mem = fdt_path("/memory");
    check(mem >= 0, "fdt /memory");
    int len = 0;
    const char *dt = mem >= 0 ? fdt_prop(mem, "device_type", &len) : NULL;
    check(dt && fdt_streq(dt, "memory"), "memory device_type");
    u64 base = 0, size = 0;
    check(mem >= 0 && fdt_reg(mem, 0, &base, &size) == 0, "memory reg");
    check_eq("memory base", base, 0x40000000);
    ok_val("memory size", size);
    check((u64)(uintptr_t)__image_start >= base &&
          (u64)(uintptr_t)__image_end <= base + size, "image inside memory");
    check((u64)(uintptr_t)fdt + fdt_totalsize() <= (u64)(uintptr_t)__image_start,
          "fdt below image");
    check_eq("uart base", uart_base, 0x09000000);
    int psci = fdt_path("/psci");
    const char *m = psci >= 0 ? fdt_prop(psci, "method", NULL) : NULL;
    check(m && fdt_streq(m, "hvc"), "psci method hvc");
    check_eq("current el", read_sysreg(CurrentEL) >> 2, 1);
    check(ncpus() >= 1 && boot_cpu() == 0 && cpu_index() == 0, "boot cpu is cpu 0");
    ok("hello");
    return 0;
}
