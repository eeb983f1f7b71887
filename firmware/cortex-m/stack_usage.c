#include "stack_usage.h"

extern uint32_t __stack_start[], __stack_end[];

#define PATTERN 0xA5C3E1F0u
#define MARGIN_WORDS 16u /* stay clear of stack_paint's own frame */

void stack_paint(void)
{
    uint32_t *sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    for (uint32_t *p = __stack_start; p < sp - MARGIN_WORDS; p++) *p = PATTERN;
}

uint32_t stack_high_water(void)
{
    const uint32_t *p = __stack_start;
    while (p < __stack_end && *p == PATTERN) p++;
    return (uint32_t)((uintptr_t)__stack_end - (uintptr_t)p);
}

uint32_t stack_size(void) { return (uint32_t)((uintptr_t)__stack_end - (uintptr_t)__stack_start); }
