"""bench/compiled_launches.py counts the kernels of a step, eager and compiled, with one rule: the
top-level calls that do work. Checked on steps whose kernels are known by hand."""

import torch
import torch._inductor.config as inductor_config

from bench.compiled_launches import count_kernels


def test_eager_count_is_one_per_op_that_computes():
    a, b, c = torch.randn(8, 16), torch.randn(8, 16), torch.randn(8, 16)
    linear = torch.nn.Linear(16, 4)
    # matmul and linear are composites (not counted), b.t() a view; addmm's inner copy is addmm's
    counts = count_kernels(lambda: linear((a @ b.t()).relu() @ c).sum())
    assert sum(counts.values()) == 5, counts       # mm, relu, mm, addmm, sum
    assert counts["aten::mm"] == 2 and counts["aten::addmm"] == 1 and counts["aten::relu"] == 1


def test_compiled_pointwise_chain_is_one_fused_kernel():
    a = torch.randn(64, 32)

    def chain(x):
        return ((x * 2 + 1).relu() - x).sum()

    eager = count_kernels(lambda: chain(a))
    assert sum(eager.values()) == 5, eager         # mul, add, relu, sub, sum
    with inductor_config.patch({"cpp.enable_kernel_profile": True}):
        compiled = torch.compile(chain)
        compiled(a)
        counts = count_kernels(lambda: compiled(a))
    fused = {k: v for k, v in counts.items() if "cpp_fused" in k}
    assert sum(fused.values()) == 1, counts
    assert sum(counts.values()) == 1, counts      # nothing else does work: the wrapper's empty is not a kernel
