"""Classifier-free guidance around any sampler, as DiT's sample.py and SiT's sample.py do it.

The guidance itself lives in the model (model.forward_with_cfg, DiT's channel convention:
DiT and SiT guide channels 0-2 only). This file only builds the doubled batch the official
scripts build: noise repeated twice, labels [y, null], then keeps the conditional half.
"""

import torch


def cfg_inputs(model, z, y, cfg_scale, null_label):
    """(model_fn, z, model_kwargs) for a sampler call; guidance only when cfg_scale > 1.

    As in DiT/SiT sample.py: with cfg_scale > 1 the batch is doubled, the second half
    unconditional (label null_label, 1000 for ImageNet) and model_fn = model.forward_with_cfg.
    """
    if cfg_scale > 1.0:
        z = torch.cat([z, z], 0)
        y_null = torch.full_like(y, null_label)
        return model.forward_with_cfg, z, dict(y=torch.cat([y, y_null], 0), cfg_scale=cfg_scale)
    return model, z, dict(y=y)


def drop_null_half(samples, cfg_scale):
    """Keep the conditional half of a guided batch (DiT: samples.chunk(2)[0])."""
    if cfg_scale > 1.0:
        samples, _ = samples.chunk(2, dim=0)
    return samples
