"""GFLOPs in DiT's convention: one forward pass, batch 1, no CFG, one multiply-add = 1 FLOP,
attention matmuls included.

torch.utils.flop_counter counts 2 FLOPs per multiply-add, so we halve it. It only sees the matmuls
inside scaled_dot_product_attention when the MATH backend runs (the fused CPU kernels count as 0),
so counting forces that backend. Models are built on the meta device: nothing is allocated, which is
what makes 2048 px (65k tokens, a 4.3e9-entry attention matrix per head) countable on a laptop.
"""

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode


def count_params(model):
    """All parameters, the frozen pos_embed included, as DiT's paper and train.py log do."""
    return sum(p.numel() for p in model.parameters())


def example_inputs(model, batch=1, device="meta"):
    """(x, t, y) for one forward pass of a zoo model."""
    x = torch.zeros(batch, *model.config.input_shape, device=device)
    t = torch.zeros(batch, device=device)
    y = torch.zeros(batch, dtype=torch.long, device=device)
    return x, t, y


def count_flops(model, inputs=None):
    """Multiply-adds of one forward call (torch FLOPs / 2). `inputs` defaults to batch-1 inputs on
    the model's device."""
    if inputs is None:
        inputs = example_inputs(model, device=next(model.parameters()).device)
    model.eval()
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(*inputs)
    return counter.get_total_flops() / 2


def model_gflops(name, **overrides):
    """(params, GFLOPs) of a registered model, built on the meta device."""
    from ptdit import create_model
    with torch.device("meta"):
        model = create_model(name, **overrides)
    return count_params(model), count_flops(model) / 1e9
