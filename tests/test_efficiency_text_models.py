"""Text-to-image models of the paper's Fig. 2: they run, and PixArt-alpha's count matches the paper."""

import pytest

from evaluation.efficiency.profile import build, make_inputs, profile_point

TINY = {"depth": 1, "hidden_size": 64, "num_heads": 2}


@pytest.mark.parametrize("name", ["PixArt-alpha-0.6B", "PT-DiT/L-T2I"])
def test_text_model_forward_and_backward(name):
    model = build(name, 256, "cpu", TINY)
    x, t, text = make_inputs(model, 2, "cpu")
    assert text.shape == (2, 120, 4096)
    out = model(x, t, text)
    assert out.shape == (2, 8, 32, 32)
    out.square().mean().backward()
    assert model.y_embedder.y_proj.fc1.weight.grad is not None


def test_pixart_matches_fig2_without_attention_matmuls():
    # The paper's 142.8 GFLOPs leaves the attention matmuls out (evaluation/efficiency/flop_breakdown.py).
    point = profile_point("PixArt-alpha-0.6B", 256, timing=False)
    assert point["gflops_no_attention"] == pytest.approx(142.8, rel=2e-3)
    assert point["gflops"] > point["gflops_no_attention"]


def test_pt_dit_text_windows_follow_resolution():
    point = profile_point("PT-DiT/L-T2I", 512, timing=False)
    assert point["window"] == [1, 4, 4] and point["tokens"] == 1024
    assert profile_point("PT-DiT/L-T2I", 64, timing=False)["status"] == "invalid"
