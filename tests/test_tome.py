"""Token merging (baselines/tome.py): ratio 0 is DiT bit for bit, merge-then-unmerge of identical tokens
is lossless, the merged token count is N - r, merged destinations are the mean of their sources, and
the counted GFLOPs fall by the closed form of the smaller sub-layers minus the matching's cost."""

import numpy as np
import pytest
import torch

from baselines.tome import bipartite_match
from evaluation.efficiency.flops import count_flops, model_gflops
from ptdit import create_model
from ptdit.sample import sample
from tests.test_sample import run  # noqa: F401  (fixture: a tiny DiT-S/2 run)
from tests.test_train import one_thread, pixels  # noqa: F401  (fixtures)

TINY = {"depth": 2, "hidden_size": 32, "num_heads": 2, "input_size": 16, "in_channels": 3, "num_classes": 10}


def randomised(model, seed=0):
    """A model whose adaLN gates are not zero (DiT's init makes every block the identity)."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.normal_(0, 0.2)
    return model.eval()


def inputs(batch=3):
    torch.manual_seed(1)
    return torch.randn(batch, 3, 16, 16), torch.rand(batch) * 999, torch.randint(0, 10, (batch,))


def test_ratio_zero_is_dit_exactly():
    dit = randomised(create_model("DiT-S/2", **TINY))
    tome = create_model("DiT-S/2-ToMe0.5", **TINY, tome_ratio=0.0).eval()
    tome.load_state_dict(dit.state_dict(), strict=True)            # the same keys: a DiT checkpoint loads
    with torch.no_grad():
        assert torch.equal(tome(*inputs()), dit(*inputs()))


def test_merging_changes_the_output_and_is_seeded():
    dit = randomised(create_model("DiT-S/2", **TINY))
    tome = create_model("DiT-S/2-ToMe0.5", **TINY).eval()
    tome.load_state_dict(dit.state_dict())
    with torch.no_grad():
        a, b, plain = tome(*inputs()), tome(*inputs()), dit(*inputs())
    assert torch.equal(a, b)                                        # one seeded partition per call
    assert not torch.allclose(a, plain)
    assert torch.isfinite(a).all()


def cell_constant_tokens(batch, h, w, c):
    """Tokens equal within each 2x2 cell, integer-valued (means are exact), a different direction per cell."""
    torch.manual_seed(2)
    cells = torch.randint(-8, 9, (batch, h // 2, w // 2, c)).float()
    return cells.repeat_interleave(2, 1).repeat_interleave(2, 2).reshape(batch, h * w, c)


@pytest.mark.parametrize("ratio", [0.25, 0.5, 0.75])
def test_merge_then_unmerge_of_identical_tokens_is_lossless(ratio):
    x = cell_constant_tokens(2, 8, 8, 16)
    n = x.shape[1]
    m = bipartite_match(x, (8, 8), int(ratio * n), torch.Generator().manual_seed(0))
    merged = m.merge(x)
    assert merged.shape == (2, n - int(ratio * n), 16)              # N - r tokens
    assert torch.equal(m.unmerge(merged), x)


def test_merged_destination_is_the_mean_of_its_sources():
    torch.manual_seed(3)
    x = torch.randn(1, 16, 4)
    m = bipartite_match(x, (4, 4), 6, torch.Generator().manual_seed(5))
    out = m.merge(x)[0]
    n_unm = m.unm.shape[1]
    for j, dst in enumerate(m.dst_idx.tolist()):                    # a loop over 4 tokens, in the test only
        sources = [m.src_idx[s].item() for s, t in zip(m.merged[0].tolist(), m.target[0].tolist()) if t == j]
        expected = x[0, [dst] + sources].mean(0)
        assert torch.allclose(out[n_unm + j], expected, atol=1e-6)
    # the merged sources are those whose best match is most similar
    assert len(set(m.merged[0].tolist()) | set(m.unm[0].tolist())) == len(m.src_idx)


def test_gflops_fall_by_the_closed_form():
    d, depth, n = 32, 2, 64                                         # 16x16 input, patch 2: 8x8 tokens
    _, plain = model_gflops("DiT-S/2", **TINY)
    for ratio in (0.25, 0.5):
        _, merged = model_gflops("DiT-S/2-ToMe0.5", **TINY, tome_ratio=ratio)
        r = int(ratio * n)
        n_dst = n // 4
        # per block: qkv + proj + MLP (12 D^2 per token) and attention (2 N^2 D) on N - r tokens, plus the
        # cosine scores of 3N/4 sources against N/4 destinations
        saved = 12 * r * d * d + 2 * (n * n - (n - r) ** 2) * d - (n - n_dst) * n_dst * d
        assert (plain - merged) * 1e9 == pytest.approx(depth * saved, rel=1e-9)


def test_gflops_at_xl_fall_with_the_ratio():
    gflops = [model_gflops(name)[1] for name in ("DiT-XL/2", "DiT-XL/2-ToMe0.25", "DiT-XL/2-ToMe0.5")]
    assert gflops[0] == pytest.approx(118.62, abs=0.01)
    assert gflops[0] > gflops[1] > gflops[2]
    with torch.device("meta"):
        model = create_model("DiT-XL/2-ToMe0.25")
    assert count_flops(model) / 1e9 == pytest.approx(gflops[1])


def test_bad_ratio_names_the_limit():
    with pytest.raises(ValueError, match="tome_ratio 0.9"):
        create_model("DiT-S/2-ToMe0.5", **TINY, tome_ratio=0.9)


def test_sampling_a_dit_run_with_tome(tmp_path, run):  # noqa: F811
    """`ptdit sample RUN --model DiT-S/2-ToMe0.5`: the DiT run's weights and its shape overrides, with
    merging; ratio 0 gives the DiT's samples byte for byte. (After 4 training steps the adaLN gates are
    still near zero, so merging barely moves these samples: the model built is what is checked.)"""
    from ptdit.sample import resolve
    from tests.test_sample import sample_config
    from tests.test_train import TINY

    config = sample_config(run, tmp_path / "tome.npz", model="DiT-S/2-ToMe0.5")
    name, overrides = resolve(config)[:2]
    assert name == "DiT-S/2-ToMe0.5" and TINY.items() <= overrides.items()   # the run's shape is kept
    merged = sample(config)
    plain = sample(sample_config(run, tmp_path / "dit.npz"))
    zero = sample(sample_config(run, tmp_path / "tome0.npz", model="DiT-S/2-ToMe0.5", model_overrides={"tome_ratio": 0.0}))
    with np.load(plain) as a, np.load(zero) as b, np.load(merged) as c:
        assert np.array_equal(a["arr_0"], b["arr_0"])
        assert c["arr_0"].shape == a["arr_0"].shape
