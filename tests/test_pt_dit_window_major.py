"""The window-major PT-DiT (tokens in window order from the patch embedding to unpatchify, masks
replaced by region groups) computes what the grid-order PT-DiT computed: the frozen copy of the old
code, tests/grid_order_pt_dit.py, loads each new model's state dict (same keys: old checkpoints
load) and gives the same outputs and gradients, for every PT-DiT variant and ablation switch."""

import pytest
import torch

import ptdit
from ptdit.pt_dit_text import PTDiTText
from ptdit.window_attention import ShiftedWindowAttention, WindowAttention, to_grid_order, to_window_major
from tests.conftest import randomize
from tests.grid_order_pt_dit import GridOrderPTDiT, GridOrderPTDiTText
from tests.grid_order_pt_dit import ShiftedWindowAttention as GridShiftedWindowAttention

TINY = dict(depth=2, hidden_size=32, num_heads=2, num_classes=10)

CLASS_CONFIGS = {
    "released": dict(input_size=16),
    "compact": dict(input_size=16, layout="compact"),
    "no_giim": dict(input_size=16, modules="no_giim"),
    "no_swa": dict(input_size=16, modules="no_swa"),
    "no_tcm": dict(input_size=16, modules="no_tcm", layout="compact"),
    "top_left": dict(input_size=16, proxy_mode="top_left"),
    "similarity": dict(input_size=16, proxy_mode="similarity", layout="compact"),
    "interpolation": dict(input_size=16, injection="interpolation"),
    "linear": dict(input_size=16, injection="linear", layout="compact"),
    "window_4x4": dict(input_size=32, compression_ratio=(1, 4, 4)),
    "window_odd": dict(input_size=12, patch_size=2, compression_ratio=(1, 3, 3)),
    "video_pf4": dict(video=True, num_frames=8, input_size=16, compression_ratio=(4, 2, 2)),
    "video_default": dict(video=True, num_frames=16, temporal_patch_size=2, input_size=16),
    "video_compact_odd": dict(video=True, num_frames=6, input_size=12, patch_size=2, layout="compact",
                              compression_ratio=(3, 2, 3)),
}


def relative_error(a, b):
    return ((a - b).norm() / b.norm()).item()


def pair(name, **overrides):
    new = randomize(ptdit.create_model(name, **overrides), std=0.1)
    old = (GridOrderPTDiTText if isinstance(new, PTDiTText) else GridOrderPTDiT)(new.config)
    old.load_state_dict(new.state_dict(), strict=True)
    assert set(old.state_dict()) == set(new.state_dict())
    return new, old


def check_same(new, old, inputs):
    torch.manual_seed(1)
    out = new(*inputs)
    torch.manual_seed(1)
    ref = old(*inputs)
    assert relative_error(out, ref) <= 1e-6
    g = torch.randn_like(out)
    names = [name for name, p in new.named_parameters() if p.requires_grad]
    params = dict(new.named_parameters()), dict(old.named_parameters())
    grads = torch.autograd.grad(out, [params[0][k] for k in names], g, allow_unused=True)
    ref_grads = torch.autograd.grad(ref, [params[1][k] for k in names], g, allow_unused=True)
    for name, grad, ref_grad in zip(names, grads, ref_grads):
        if ref_grad is None:
            assert grad is None, name
        else:
            assert relative_error(grad, ref_grad) <= 1e-5, name


@pytest.mark.parametrize("config", sorted(CLASS_CONFIGS))
def test_class_model_equals_grid_order_model(config):
    new, old = pair("PT-DiT/S-Class", **TINY, **CLASS_CONFIGS[config])
    x = torch.randn(2, *new.config.input_shape)
    check_same(new, old, (x, torch.tensor([3.0, 700.0]), torch.tensor([1, 7])))


def test_random_proxies_draw_the_same_tokens():
    new, old = pair("PT-DiT/S-Class", **TINY, input_size=16, proxy_mode="random")
    x = torch.randn(2, *new.config.input_shape)
    check_same(new, old, (x, torch.tensor([3.0, 700.0]), torch.tensor([1, 7])))


@pytest.mark.parametrize("video", [False, True])
def test_text_model_equals_grid_order_model(video):
    kw = dict(video=True, num_frames=4, input_size=16) if video else dict(input_size=16)
    new, old = pair("PT-DiT/L-T2I", depth=2, hidden_size=32, num_heads=2, caption_channels=8, text_tokens=5, **kw)
    x = torch.randn(2, *new.config.input_shape)
    text = torch.randn(2, 5, 8)
    mask = torch.tensor([[True] * 5, [True, True, False, False, False]])
    check_same(new, old, (x, torch.tensor([3.0, 700.0]), text, mask))


def test_grid_order_checkpoint_loads_and_positions_follow_it():
    """A checkpoint written by the grid-order model loads with strict keys; a changed pos_embed in it
    reaches the window-major positional table."""
    torch.manual_seed(0)
    new, old = pair("PT-DiT/S-Class", **TINY, input_size=16)
    state = old.state_dict()
    state["pos_embed"] = torch.randn_like(state["pos_embed"])
    old.load_state_dict(state)
    new.load_state_dict(state, strict=True)
    x = torch.randn(2, *new.config.input_shape)
    t, y = torch.tensor([1.0, 2.0]), torch.tensor([0, 1])
    with torch.no_grad():
        assert relative_error(new.eval()(x, t, y), old.eval()(x, t, y)) <= 1e-6


@pytest.mark.parametrize("grid,window", [((1, 8, 8), (1, 2, 2)), ((1, 6, 9), (1, 3, 3)), ((4, 4, 6), (2, 2, 3)),
                                         ((8, 4, 4), (4, 2, 2))])
def test_shifted_windows_equal_roll_and_mask(grid, window):
    """Region groups without a mask == roll, partition, (B*windows, 1, T, T) bias, in values and
    gradients; window-major input and output."""
    new = randomize(ShiftedWindowAttention(16, 2, grid, window), std=0.2)
    old = GridShiftedWindowAttention(16, 2, grid, window)
    old.load_state_dict(new.state_dict())
    x = torch.randn(3, grid[0] * grid[1] * grid[2], 16, requires_grad=True)
    out = to_grid_order(new(to_window_major(x, grid, window)), grid, window)
    ref = old(x)
    assert relative_error(out, ref) <= 1e-6
    g = torch.randn_like(out)
    (grad,) = torch.autograd.grad(out, x, g)
    (grad_ref,) = torch.autograd.grad(ref, x, g)
    assert relative_error(grad, grad_ref) <= 1e-6


def test_window_attention_is_a_view():
    """No copy of the tokens in or out of window attention: the only copies left are the head
    merge's, as in DiT's attention."""
    from bench.pt_dit_launches import OpCounter
    module = WindowAttention(16, 2, (1, 8, 8), (1, 2, 2))
    x = torch.randn(2, 64, 16)
    with OpCounter() as counter:
        module(x)
    assert counter.summary()["copies"] <= 1, counter.ops


@pytest.mark.parametrize("grid,window", [((1, 8, 8), (1, 2, 2)), ((1, 8, 8), (1, 4, 4)), ((8, 4, 4), (4, 2, 2))])
def test_region_groups_equal_the_released_shift_mask(grid, window):
    """Two independent constructions agree: the released get_shift_window_attention_mask (slices,
    re-implemented in bench/released_block.py) allows exactly the pairs our region groups hold."""
    from bench.released_block import ReleasedBlock
    from bench.shifted_windows import rolled_windows
    released = ReleasedBlock(16, 2, grid, window).sw_mask == 0                 # (windows, T, T), rolled windows
    _, group = rolled_windows(grid, window)
    group = group.view(released.shape[0], -1)
    assert torch.equal(released, group[:, :, None] == group[:, None, :])
    assert not released.all()                                                 # some pairs are masked
