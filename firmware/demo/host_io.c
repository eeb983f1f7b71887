/* Host-side file helpers (see host_io.h). */
#define _POSIX_C_SOURCE 200112L /* posix_memalign: C99 has no aligned allocation (aligned_alloc is C11) */
#include "host_io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint8_t *host_read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "error: cannot open %s\n", path);
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) != 0) goto bad;
    long n = ftell(f);
    if (n < 0 || fseek(f, 0, SEEK_SET) != 0) goto bad;
    uint8_t *buf = (uint8_t *)host_alloc((size_t)n);
    if (buf == NULL) goto bad;
    if (n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        goto bad;
    }
    fclose(f);
    *size = (size_t)n;
    return buf;
bad:
    fprintf(stderr, "error: cannot read %s\n", path);
    fclose(f);
    return NULL;
}

int host_write_file(const char *path, const void *data, size_t size, int append)
{
    FILE *f = fopen(path, append ? "ab" : "wb");
    if (f == NULL || fwrite(data, 1, size, f) != size) {
        fprintf(stderr, "error: cannot write %s\n", path);
        if (f) fclose(f);
        return -1;
    }
    return fclose(f) == 0 ? 0 : -1;
}

void *host_alloc(size_t size)
{
    /* exactly `size` bytes (1 for 0): ASan puts its red zone right after them */
    void *p = NULL;
    if (posix_memalign(&p, HOST_ALIGN, size ? size : 1u) != 0) p = NULL;
    if (p == NULL) {
        fprintf(stderr, "error: out of memory (%zu bytes)\n", size);
        return NULL;
    }
    memset(p, 0, size ? size : 1u);
    return p;
}
