/* tools/bench.py, section 1: an empty Unicorn block hook in C, i.e. what a
 * block hook costs before it does anything (vmachine's engine, slot.c, is
 * one block hook that counts). Built for the host like slot.c
 * (vmachine/toolchain.py build_host_library) and installed with ctypes. */
#include <stdint.h>

void bench_empty_block(void *uc, uint64_t address, uint32_t size, void *user)
{
    (void)uc;
    (void)address;
    (void)size;
    (void)user;
}
