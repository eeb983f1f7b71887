/* One interval at a time on the 24-bit SysTick down-counter, no interrupt: the interval must
 * stay below 2^24 ticks (0.67 s at 25 MHz, 671 M instructions under -icount shift=0), and the
 * COUNTFLAG bit says when it did not, so an overflow is reported, never wrapped silently. */
#include "cycles.h"

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define CSR_ENABLE 1u
#define CSR_CLKSOURCE_CORE 4u
#define CSR_COUNTFLAG (1u << 16)
#define RELOAD 0x00FFFFFFu

void cycles_begin(void)
{
    SYST_CSR = 0u;
    SYST_RVR = RELOAD;
    SYST_CVR = 0u; /* any write zeroes the counter; the next tick reloads it */
    SYST_CSR = CSR_ENABLE | CSR_CLKSOURCE_CORE;
    while (SYST_CVR == 0u) { /* start on the reload, with COUNTFLAG clear */
    }
    (void)SYST_CSR; /* reading clears COUNTFLAG */
}

uint32_t cycles_end(void)
{
    uint32_t v = SYST_CVR;
    if (SYST_CSR & CSR_COUNTFLAG) return CYCLES_OVERFLOW;
    return RELOAD - v;
}
