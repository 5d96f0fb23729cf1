/* unit_rtas: firmware-call corner cases of QEMU 7.2's pseries, one line each.
 * Used by tests/test_firmware_calls.py; also runs under QEMU (test_toolchain). */
#include "rt.h"

static long call(u32 token, int nargs, int nret, const u32 *args, u32 *rets)
{
    long hret = 0;
    rtas_call_token(token, nargs, nret, args, rets, &hret);
    return hret;
}

int main(void)
{
    u32 rets[8];
    long hret;

    /* Token 0xa is display-character in QEMU (spapr_rtas.c, early debug hack) */
    u32 ch[1] = { 'Z' };
    puts("ok rtas token 0xa prints ");
    hret = call(0xa, 1, 1, ch, rets);
    ch[0] = '\n';
    call(0xa, 1, 1, ch, rets);
    check_eq("rtas token 0xa hcall ret", (u64)hret, H_SUCCESS);
    check_eq("rtas token 0xa status", rets[0], 0);

    /* H_PUT_TERM_CHAR termno 0 reaches the default vty (spapr_vty.c vty_lookup) */
    u64 a[9] = { 0, 12, 0x6f6b207465726d6eull, 0x6f20300a00000000ull };  /* "ok termno 0\n" */
    long r = hcall(H_PUT_TERM_CHAR, a);
    check_eq("put_term_char termno 0 ret", (u64)r, H_SUCCESS);

    /* H_GET_TERM_CHAR with no input: success, length 0 */
    u64 g[9] = { vty_termno };
    r = hcall(H_GET_TERM_CHAR, g);
    check_eq("get_term_char empty ret", (u64)r, H_SUCCESS);
    check_eq("get_term_char empty len", g[0], 0);
    u64 gb[9] = { 0x12345 };
    check_eq("get_term_char bad termno", (u64)hcall(H_GET_TERM_CHAR, gb), (u64)H_PARAMETER);

    /* argument-count checks: -3, nothing else happens */
    s64 tod = rtas_token("get-time-of-day");
    rets[0] = 0x5555;
    hret = call((u32)tod, 0, 7, NULL, rets);
    check_eq("get-time-of-day nret 7 status", (u64)(s64)(s32)rets[0], (u64)-3);
    check_eq("get-time-of-day nret 7 hcall ret", (u64)hret, H_SUCCESS);
    hret = call((u32)tod, 0, 8, NULL, rets);
    check_eq("get-time-of-day status", rets[0], 0);
    /* rets[7] is not "ns within the second": QEMU stores the low 32 bits
     * of the guest time in ns (spapr_rtc_read), so it is not checked here */
    check(rets[1] >= 2000 && rets[2] >= 1 && rets[2] <= 12 && rets[3] >= 1 && rets[3] <= 31 &&
          rets[4] < 24 && rets[5] < 60 && rets[6] < 60,
          "get-time-of-day fields in range");

    s64 off = rtas_token("power-off");
    u32 one[1] = { 0 };
    call((u32)off, 1, 1, one, rets);
    check_eq("power-off nargs 1 status", (u64)(s64)(s32)rets[0], (u64)-3);
    ok("power-off nargs 1 did not power off");

    s64 start = rtas_token("start-cpu");
    u32 two[2] = { 0, 0x400000 };
    call((u32)start, 2, 1, two, rets);
    check_eq("start-cpu nargs 2 status", (u64)(s64)(s32)rets[0], (u64)-3);

    s64 q = rtas_token("query-cpu-stopped-state");
    u32 bad[1] = { 0x4321 };
    call((u32)q, 1, 2, bad, rets);
    check_eq("query-cpu-stopped-state unknown id", (u64)(s64)(s32)rets[0], (u64)-3);
    return 0;
}
