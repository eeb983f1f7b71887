/* argmax of the scores; the lowest index wins a tie (FORMAT.md 3). */
#include "mbnn_internal.h"

mbnn_status mbnn_argmax(const int64_t *scores, uint32_t n, uint32_t *label)
{
    if (scores == NULL || label == NULL) return MBNN_ERR_NULL;
    if (n == 0) return MBNN_ERR_ARG;
    uint32_t best = 0;
    for (uint32_t j = 1; j < n; j++)
        if (scores[j] > scores[best]) best = j;
    *label = best;
    return MBNN_OK;
}
