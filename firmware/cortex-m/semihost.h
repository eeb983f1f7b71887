/* Arm semihosting (the host debugger or QEMU services `bkpt 0xab`): console output and exit
 * status, the only I/O the board program needs. */
#ifndef SEMIHOST_H
#define SEMIHOST_H

#include <stdint.h>

/* Write a NUL-terminated string to the host console (SYS_WRITE0). */
void semihost_write0(const char *s);
/* End the program with an exit status the host passes on (SYS_EXIT_EXTENDED, falling back to
 * SYS_EXIT, which only tells success from failure). Never returns. */
void semihost_exit(uint32_t status) __attribute__((noreturn));

#endif
