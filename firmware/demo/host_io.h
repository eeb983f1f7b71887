/* Host-side file helpers shared by the demo, the test tools and the benchmark harness (not part
 * of the library: the library never allocates; these host programs read files into heap buffers). */
#ifndef HOST_IO_H
#define HOST_IO_H
#include <stddef.h>
#include <stdint.h>

/* Every buffer below starts on a cache line: a .mbnn writer puts each packed-sign section at a
 * 64-byte file offset (docs/FORMAT.md 6), so a model read into one of these buffers has the sign
 * rows of its binary layers on cache lines (every row when K is a multiple of 512), the case the
 * AVX-512 kernel runs fastest on. */
#define HOST_ALIGN 64u

/* Read a whole file into a fresh HOST_ALIGN-aligned buffer of exactly its size (so
 * AddressSanitizer sees any read past the end). Returns NULL and prints a message on failure. */
uint8_t *host_read_file(const char *path, size_t *size);
/* Append / write bytes; return 0 on success, print a message and return -1 on failure. */
int host_write_file(const char *path, const void *data, size_t size, int append);
/* A zeroed HOST_ALIGN-aligned heap buffer of exactly `size` bytes (images, workspaces); free() it.
 * Prints a message and returns NULL when out of memory. */
void *host_alloc(size_t size);
#endif
