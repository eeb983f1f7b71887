/* Names of the status codes. */
#include "metabnn.h"

const char *mbnn_status_str(mbnn_status status)
{
    static const char *const names[MBNN_STATUS_COUNT] = {
        "ok",
        "null pointer",
        "misaligned buffer (image needs 4-byte, workspace 8-byte alignment)",
        "target is not little-endian",
        "image truncated",
        "bad magic (not a .mbnn image)",
        "unsupported format version",
        "header file size differs from the buffer size",
        "CRC-32 mismatch",
        "reserved field not zero",
        "layer count out of range or descriptors do not fit",
        "bank count out of range",
        "layer chain does not fit (kinds or K/N)",
        "descriptor field out of range",
        "section misaligned, out of bounds or overlapping",
        "non-zero byte between sections",
        "hidden weight out of range",
        "sign bit disagrees with hidden weight, or padding bit set",
        "table entry out of range",
        "normalization record out of range",
        "workspace too small",
        "bank index out of range",
        "label out of range",
        "argument out of range",
        "model is read-only (load it with mbnn_load_writable)",
    };
    if ((unsigned)status >= (unsigned)MBNN_STATUS_COUNT) return "unknown status";
    return names[status];
}
