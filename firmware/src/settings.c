/* Run-time settings of a loaded model: the active bank, stream adaptation, learning shifts. */
#include "mbnn_internal.h"

mbnn_status mbnn_select_bank(mbnn_model *model, uint32_t bank)
{
    if (model == NULL || model->image == NULL) return MBNN_ERR_NULL;
    if (bank >= model->n_banks) return MBNN_ERR_BANK;
    model->bank = bank;
    return MBNN_OK;
}

mbnn_status mbnn_set_adapt(mbnn_model *model, int enabled)
{
    if (model == NULL || model->image == NULL) return MBNN_ERR_NULL;
    if (enabled && !model->writable) {
        for (uint32_t l = 0; l < model->n_layers; l++)
            if (model->layers[l].adapt_shift > 0) return MBNN_ERR_READONLY; /* M would be written */
    }
    model->adapt = (uint8_t)(enabled != 0);
    return MBNN_OK;
}

mbnn_status mbnn_set_shifts(mbnn_model *model, uint32_t layer, uint32_t lr_shift, uint32_t bshift)
{
    if (model == NULL || model->image == NULL) return MBNN_ERR_NULL;
    if (layer >= model->n_layers || lr_shift > 31 || bshift > 31) return MBNN_ERR_ARG;
    mbnn_layer *l = &model->layers[layer];
    if (model->writable) { /* keep the image the single source of truth (mbnn_image_seal re-CRCs) */
        l->desc[12] = (uint8_t)lr_shift;
        l->desc[13] = (uint8_t)bshift;
    }
    l->lr_shift = (uint8_t)lr_shift;
    l->bshift = (uint8_t)bshift;
    return MBNN_OK;
}
