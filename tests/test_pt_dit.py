"""PT-DiT mechanics verified by behaviour: proxies, window locality, the shifted-window mask,
identity at initialisation, batch/timestep consistency, ablation switches, configs, errors."""

import itertools

import pytest
import torch

import ptdit
from evaluation.efficiency.flops import model_gflops
from ptdit.proxy_tokens import extract_proxies
from ptdit.window_attention import ShiftedWindowAttention, WindowAttention
from tests.conftest import randomize


def tiny(**kw):
    base = dict(depth=2, hidden_size=32, num_heads=2, input_size=16, num_classes=10)
    base.update(kw)
    return ptdit.create_model("PT-DiT/S-Class", **base)


def window_index(coord, grid, window, shifts=(0, 0, 0)):
    return tuple(((c - s) % g) // w for c, g, w, s in zip(coord, grid, window, shifts))


def expected_neighbours(i, grid, window, shifted):
    """Tokens whose output may depend on token i, by brute force over coordinates."""
    coords = list(itertools.product(*(range(g) for g in grid)))
    shifts = tuple(w // 2 for w in window) if shifted else (0, 0, 0)
    wrapped = lambda c: tuple(x < s for x, s in zip(c, shifts))  # noqa: E731  Swin regions
    me = coords[i]
    return {j for j, c in enumerate(coords)
            if window_index(c, grid, window, shifts) == window_index(me, grid, window, shifts)
            and (not shifted or wrapped(c) == wrapped(me))}


def changed_tokens(module, x, i):
    y = x.clone()
    y[:, i] += 1.0
    with torch.no_grad():
        diff = (module(y) - module(x)).abs().amax(dim=(0, 2))
    return set(torch.nonzero(diff > 1e-6).flatten().tolist())


@pytest.mark.parametrize("grid,window", [((1, 8, 8), (1, 2, 2)), ((1, 8, 8), (1, 4, 4)), ((4, 4, 6), (2, 2, 3))])
@pytest.mark.parametrize("shifted", [False, True])
def test_attention_stays_inside_its_window_or_shifted_region(grid, window, shifted):
    torch.manual_seed(0)
    cls = ShiftedWindowAttention if shifted else WindowAttention
    module = randomize(cls(16, 2, grid, window))
    x = torch.randn(2, grid[0] * grid[1] * grid[2], 16)
    n = x.shape[1]
    for i in {0, n - 1, n // 2 + 1, grid[2] - 1}:
        assert changed_tokens(module, x, i) == expected_neighbours(i, grid, window, shifted)


def test_shift_mask_actually_blocks_wrapped_tokens():
    grid, window = (1, 4, 4), (1, 2, 2)
    module = randomize(ShiftedWindowAttention(16, 2, grid, window))
    x = torch.randn(1, 16, 16)
    # token (0, 0) is rolled into the bottom-right window next to (3, 3) but must not see it
    assert 15 not in changed_tokens(module, x, 0)
    assert changed_tokens(module, x, 0) == {0}


def test_proxies_are_window_means():
    grid, window = (2, 4, 6), (1, 2, 3)
    x = torch.randn(3, 48, 5)
    proxies = extract_proxies(x, grid, window, "mean")
    xs = x.view(3, 2, 4, 6, 5)
    k = 0
    for f, h, w in itertools.product(range(2), range(2), range(2)):
        mean = xs[:, f, 2 * h:2 * h + 2, 3 * w:3 * w + 3].reshape(3, -1, 5).mean(1)
        torch.testing.assert_close(proxies[:, k], mean)
        k += 1
    top_left = extract_proxies(x, grid, window, "top_left")
    torch.testing.assert_close(top_left[:, 1], xs[:, 0, 0, 3])


def test_similarity_proxy_is_most_central_token():
    grid, window = (1, 1, 3), (1, 1, 3)
    x = torch.tensor([[[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]])   # the middle token is closest to both
    torch.testing.assert_close(extract_proxies(x, grid, window, "similarity")[0, 0], x[0, 1])


@pytest.mark.parametrize("layout", ["released", "compact"])
@pytest.mark.parametrize("modules", ["full", "no_giim", "no_swa", "no_tcm"])
def test_every_block_is_identity_at_init(layout, modules):
    model = tiny(layout=layout, modules=modules)
    x, c = torch.randn(2, 64, 32), torch.randn(2, 32)
    for block in model.blocks:
        torch.testing.assert_close(block(x, c), x)


@pytest.mark.parametrize("kw", [dict(layout="released"), dict(layout="compact"),
                                dict(injection="interpolation"), dict(injection="linear"),
                                dict(proxy_mode="similarity"),
                                dict(video=True, num_frames=4, input_size=8, compression_ratio=(2, 2, 2))])
def test_batch_with_different_timesteps_equals_each_sample_alone(kw):
    model = randomize(tiny(**kw), std=0.1).eval()
    x = torch.randn(3, *model.config.input_shape)
    t, y = torch.tensor([1, 500, 999]), torch.tensor([0, 4, 9])
    with torch.no_grad():
        batched = model(x, t, y)
        alone = torch.cat([model(x[i:i + 1], t[i:i + 1], y[i:i + 1]) for i in range(3)])
    torch.testing.assert_close(batched, alone, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(batched[0], batched[1])


def test_default_compression_keeps_64_windows():
    for size, ratio in [(32, (1, 2, 2)), (64, (1, 4, 4)), (128, (1, 8, 8)), (256, (1, 16, 16))]:
        cfg = ptdit.get_spec("PT-DiT/B-Class").build_config(input_size=size)
        assert cfg.window == ratio
    video = ptdit.get_spec("PT-DiT/S-Class").build_config(video=True, num_frames=16, input_size=32)
    assert video.window == (4, 2, 2)


def test_ablation_switches_change_the_network():
    full = sum(p.numel() for p in tiny().parameters())
    assert tiny(modules="no_giim").blocks[0].giim is None
    assert sum(p.numel() for p in tiny(modules="no_tcm").parameters()) < sum(
        p.numel() for p in tiny(modules="no_swa").parameters()) < full
    with pytest.raises(ValueError, match="proxy_mode"):
        tiny(proxy_mode="median")
    with pytest.raises(ValueError, match="injection"):
        tiny(injection="concat")


# The rebuttal's class models (pt-dit.md): params, GFLOPs at 256 (and 512 / 1024 for B).
def test_class_configs_match_rebuttal():
    b_params, b_gflops = model_gflops("PT-DiT/B-Class")
    assert abs(b_params / 152e6 - 1) < 0.02 and abs(b_gflops / 18.3 - 1) < 0.03
    assert abs(model_gflops("PT-DiT/B-Class", input_size=64)[1] / 68.6 - 1) < 0.03
    assert abs(model_gflops("PT-DiT/B-Class", input_size=128)[1] / 269.6 - 1) < 0.03
    l_params, l_gflops = model_gflops("PT-DiT/L-Class")
    assert abs(l_params / 693e6 - 1) < 0.02 and abs(l_gflops / 82.6 - 1) < 0.03
    # S: no shape reaches both tolerances (README); the v2 shape 10 x 288 gives 3.86 GFLOPs, one of
    # the two values the rebuttal prints, and is 3.1 % short of 32.5M params.
    s_params, s_gflops = model_gflops("PT-DiT/S-Class")
    assert abs(s_gflops / 3.8 - 1) < 0.03 and abs(s_params / 32.5e6 - 1) < 0.035


def test_pt_dit_is_cheaper_than_dit_at_equal_size():
    assert model_gflops("PT-DiT/S-Class")[1] < 0.7 * model_gflops("DiT-S/2")[1]


def test_bad_compression_ratio_names_valid_sizes():
    with pytest.raises(ValueError, match=r"\(1, 3, 3\).*valid sizes"):
        tiny(compression_ratio=(1, 3, 3))
    with pytest.raises(ValueError, match="not divisible into 8x8 windows"):
        tiny(input_size=12, patch_size=2)


def test_state_dict_round_trip(tmp_path):
    from ptdit.checkpoint import load_weights
    model = randomize(tiny())
    torch.save(model.state_dict(), tmp_path / "m.pt")
    again = load_weights(tiny(), str(tmp_path / "m.pt"))
    x, t, y = torch.randn(1, 4, 16, 16), torch.tensor([3]), torch.tensor([1])
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x, t, y), again.eval()(x, t, y))


def test_shifted_window_gradients_match_roll_and_partition():
    """The precomputed-permutation path (with its own backward) equals the plain roll/partition
    formulation in values and gradients."""
    from ptdit.window_attention import partition, roll_grid, shifted_window_mask, unpartition
    grid, window = (2, 4, 4), (2, 2, 2)
    module = randomize(ShiftedWindowAttention(16, 2, grid, window))
    x = torch.randn(2, 32, 16, requires_grad=True)
    out = module(x)
    shifts = (1, 1, 1)
    rolled = partition(roll_grid(x, grid, tuple(-s for s in shifts)), grid, window)
    mask = shifted_window_mask(grid, window).unsqueeze(1).repeat(2, 1, 1, 1)
    ref = roll_grid(unpartition(module.attend(rolled, mask), grid, window), grid, shifts)
    torch.testing.assert_close(out, ref)
    g = torch.randn_like(out)
    (grad,) = torch.autograd.grad(out, x, g)
    (grad_ref,) = torch.autograd.grad(ref, x, g)
    torch.testing.assert_close(grad, grad_ref)
