/* Core-clock ticks of one measured interval, from SysTick, the timer every Armv7-M core has
 * (QEMU does not model the DWT cycle counter). Under `qemu-system-arm -icount shift=0` QEMU
 * executes exactly one instruction per nanosecond of virtual time and the MPS2 core clock is
 * 25 MHz, so one tick is 40 instructions; main.c times a loop of known length to prove it. */
#ifndef CYCLES_H
#define CYCLES_H

#include <stdint.h>

#define CYCLES_OVERFLOW 0xFFFFFFFFu

void cycles_begin(void);   /* restart SysTick on the core clock */
uint32_t cycles_end(void); /* ticks since cycles_begin(), or CYCLES_OVERFLOW past 2^24 - 1 */

#endif
