"""Search (depth, width) of PT-DiT's class-conditional configs against the rebuttal's numbers.

The paper never published depth/width of PT-DiT/S-, B- and L-Class; this script finds the configs
whose params and GFLOPs (DiT convention, our counter) come closest, for each block variant.
Params and GFLOPs are affine in depth, so each width is counted twice (1 and 2 blocks, meta device).

    PYTHONPATH=. python bench/search_class_configs.py
"""

import itertools

import torch

from evaluation.efficiency.flops import count_flops, count_params
from ptdit.pt_dit import PTDiT, PTDiTConfig

# name: (params, {input_size: GFLOPs}) from the rebuttal (pt-dit.md).
TARGETS = {
    "S-Class": (32.5e6, {32: 3.8}),
    "B-Class": (152e6, {32: 18.3, 64: 68.6, 128: 269.6}),
    "L-Class": (693e6, {32: 82.6}),
}
PARAM_TOL, FLOP_TOL = 0.02, 0.03
WIDTHS = range(192, 1537, 32)
DEPTHS = range(4, 41)


def measure(width, depth, input_size, layout):
    with torch.device("meta"):
        model = PTDiT(PTDiTConfig(depth=depth, hidden_size=width, num_heads=width // 32 if width % 64 else width // 64,
                                  input_size=input_size, layout=layout))
    return count_params(model), count_flops(model) / 1e9


def affine_in_depth(width, input_size, layout):
    """(params per block, params base, GFLOPs per block, GFLOPs base)."""
    p1, f1 = measure(width, 1, input_size, layout)
    p2, f2 = measure(width, 2, input_size, layout)
    return p2 - p1, 2 * p1 - p2, f2 - f1, 2 * f1 - f2


def search(layout):
    sizes = sorted({s for _, flops in TARGETS.values() for s in flops})
    tables = {w: {s: affine_in_depth(w, s, layout) for s in sizes} for w in WIDTHS}
    best = {}
    for name, (params, flops) in TARGETS.items():
        rows = []
        for width, depth in itertools.product(WIDTHS, DEPTHS):
            t = tables[width]
            p = t[32][1] + depth * t[32][0]
            f = {s: t[s][3] + depth * t[s][2] for s in flops}
            err_p = p / params - 1
            err_f = max((f[s] / flops[s] - 1 for s in flops), key=abs)
            score = max(abs(err_p) / PARAM_TOL, abs(err_f) / FLOP_TOL)
            rows.append((score, depth, width, p, f, err_p, err_f))
        best[name] = sorted(rows, key=lambda r: r[0])[:3]
    return best


def main():
    for layout in ("released", "compact"):
        variant = f"{layout} block"
        print(f"\n== {variant}; score = max(|dParams|/2%, |dGFLOPs|/3%), <= 1 means both within tolerance")
        for name, rows in search(layout).items():
            for score, depth, width, p, f, err_p, err_f in rows:
                fl = ", ".join(f"{v:.1f}" for v in f.values())
                print(f"{name:8s} depth {depth:2d} width {width:4d}: {p / 1e6:7.1f}M ({err_p:+.1%})  "
                      f"GFLOPs {fl} ({err_f:+.1%})  score {score:.2f}")


if __name__ == "__main__":
    main()
