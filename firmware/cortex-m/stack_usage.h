/* Measured stack use: paint the free stack with a pattern, run, find the deepest word that no
 * longer holds it. */
#ifndef STACK_USAGE_H
#define STACK_USAGE_H

#include <stdint.h>

void stack_paint(void);       /* fill the stack below the caller's frame with the pattern */
uint32_t stack_high_water(void); /* bytes of stack used since the last paint (from the top) */
uint32_t stack_size(void);

#endif
