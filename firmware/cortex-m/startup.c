/* Start-up for an Armv7-M core: the vector table and the reset handler.
 *
 * The core itself loads the initial stack pointer from word 0 of the table and jumps to the
 * reset vector (word 1), so the reset handler is plain C: copy .data's initial values from
 * flash, zero .bss, run main, hand its status to the host. Faults print their name and exit
 * with a status of their own instead of hanging the emulator. */
#include <stdint.h>

#include "semihost.h"

extern uint32_t __data_load[], __data_start[], __data_end[];
extern uint32_t __bss_start[], __bss_end[];
extern uint32_t __stack_end[];

int main(void);

enum { EXIT_FAULT = 90 };

void Reset_Handler(void) __attribute__((noreturn));
void Reset_Handler(void)
{
    const uint32_t *src = __data_load;
    for (uint32_t *dst = __data_start; dst < __data_end;) *dst++ = *src++;
    for (uint32_t *dst = __bss_start; dst < __bss_end;) *dst++ = 0u;
    semihost_exit((uint32_t)main());
}

static void fault(const char *name, uint32_t status) __attribute__((noreturn));
static void fault(const char *name, uint32_t status)
{
    semihost_write0("FAULT ");
    semihost_write0(name);
    semihost_write0("\n");
    semihost_exit(status);
}

static void NMI_Handler(void) { fault("NMI", EXIT_FAULT + 0); }
static void HardFault_Handler(void) { fault("HardFault", EXIT_FAULT + 1); }
static void MemManage_Handler(void) { fault("MemManage", EXIT_FAULT + 2); }
static void BusFault_Handler(void) { fault("BusFault", EXIT_FAULT + 3); }
static void UsageFault_Handler(void) { fault("UsageFault", EXIT_FAULT + 4); }
static void Unexpected_Handler(void) { fault("unexpected exception", EXIT_FAULT + 5); }

typedef void (*vector)(void);

/* Armv7-M exception numbers 0..15; no device interrupt is enabled, so none is listed. */
__attribute__((section(".vectors"), used)) static const vector vectors[16] = {
    (vector)(uintptr_t)__stack_end, /* 0: initial main stack pointer */
    Reset_Handler,                  /* 1 */
    NMI_Handler,                    /* 2 */
    HardFault_Handler,              /* 3 */
    MemManage_Handler,              /* 4 */
    BusFault_Handler,               /* 5 */
    UsageFault_Handler,             /* 6 */
    0, 0, 0, 0,                     /* 7-10: reserved */
    Unexpected_Handler,             /* 11: SVCall */
    Unexpected_Handler,             /* 12: DebugMonitor */
    0,                              /* 13: reserved */
    Unexpected_Handler,             /* 14: PendSV */
    Unexpected_Handler,             /* 15: SysTick (cycles.c polls it, no interrupt) */
};
