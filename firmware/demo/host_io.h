/* Host-side file helpers shared by the demo and the test tools (not part of the library:
 * the library never allocates; these host programs read files into heap buffers). */
#ifndef HOST_IO_H
#define HOST_IO_H
#include <stddef.h>
#include <stdint.h>

/* Read a whole file into a fresh buffer of exactly its size (so AddressSanitizer sees any
 * read past the end). Returns NULL and prints a message on failure. */
uint8_t *host_read_file(const char *path, size_t *size);
/* Append / write bytes; return 0 on success, print a message and return -1 on failure. */
int host_write_file(const char *path, const void *data, size_t size, int append);
/* An 8-byte-aligned heap buffer of `size` bytes (zeroed), for workspaces. */
void *host_alloc(size_t size);
#endif
