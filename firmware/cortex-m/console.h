/* Line-buffered text output over semihosting: whole lines go to the host in one call, and
 * numbers are formatted here (no printf: newlib-nano's lacks 64-bit integers). */
#ifndef CONSOLE_H
#define CONSOLE_H

#include <stdint.h>

void out_str(const char *s);
void out_u32(uint32_t v);
void out_i64(int64_t v);
void out_hex32(uint32_t v);                 /* 8 lower-case hex digits */
void out_hex_bytes(const uint8_t *p, uint32_t n); /* 2 hex digits per byte, in memory order */
void out_nl(void);                          /* end the line and send it */

#endif
