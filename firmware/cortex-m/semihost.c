/* Semihosting calls, Armv7-M flavour: operation in r0, argument (a pointer or a value) in r1,
 * `bkpt 0xab`; QEMU needs `-semihosting-config enable=on,target=native`. Without a host
 * attached the breakpoint faults; that is the nature of semihosting, not of this program. */
#include "semihost.h"

#define SYS_WRITE0 0x04u
#define SYS_EXIT 0x18u
#define SYS_EXIT_EXTENDED 0x20u
#define ADP_STOPPED_APPLICATION_EXIT 0x20026u
#define ADP_STOPPED_RUNTIME_ERROR_UNKNOWN 0x20023u

static uint32_t semihost_call(uint32_t op, uint32_t arg)
{
    register uint32_t r0 __asm__("r0") = op;
    register uint32_t r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void semihost_write0(const char *s)
{
    semihost_call(SYS_WRITE0, (uint32_t)(uintptr_t)s);
}

void semihost_exit(uint32_t status)
{
    /* The extended form carries the status (a 32-bit SYS_EXIT has room for the reason only). */
    static volatile uint32_t block[2];
    block[0] = ADP_STOPPED_APPLICATION_EXIT;
    block[1] = status;
    semihost_call(SYS_EXIT_EXTENDED, (uint32_t)(uintptr_t)block);
    /* A host without the extension returns here: report at least success or failure. */
    semihost_call(SYS_EXIT, status == 0u ? ADP_STOPPED_APPLICATION_EXIT : ADP_STOPPED_RUNTIME_ERROR_UNKNOWN);
    for (;;) {
    }
}
