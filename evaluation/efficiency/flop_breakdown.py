"""Multiply-adds per aten op, to split a model's GFLOPs into projections (addmm, convolution) and
attention matmuls (bmm: QK^T and AV under the MATH SDPA backend, DAM's and agents' matmuls).

Why: papers count differently. DiT's GFLOPs include the attention matmuls; PT-DiT's Fig. 2 text
models match a count without them (PixArt-alpha-0.6B: 142.8 GFLOPs at 256 px is its Linears and
convolution alone, and every resolution step adds exactly the Linears' cost of the extra tokens).
"""

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

ATTENTION_OPS = ("aten.bmm", "aten.baddbmm")


def count_flops_by_op(model, inputs):
    """{op name: multiply-adds} of one forward call."""
    model.eval()
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(*inputs)
    return {str(op): flops / 2 for op, flops in counter.get_flop_counts()["Global"].items()}


def split_attention(by_op):
    """(multiply-adds of attention matmuls, of everything else)."""
    attention = sum(v for op, v in by_op.items() if op in ATTENTION_OPS)
    return attention, sum(by_op.values()) - attention
