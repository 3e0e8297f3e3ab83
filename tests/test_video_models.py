"""Video models (issue 8): the 2-D + 1-D factorised attention against a hand computation, which tokens
each sub-layer mixes, PT-DiT's temporal and 3-D shifted windows by behaviour, identity at init,
batch/timestep consistency, attention FLOPs in closed form, and text conditioning with its mask."""

import itertools
import math

import pytest
import torch

import ptdit
from baselines.factorized_attention import SpatialAttention, TemporalAttention
from evaluation.efficiency.flop_breakdown import count_flops_by_op, split_attention
from evaluation.efficiency.flops import example_inputs
from tests.conftest import randomize
from tests.test_pt_dit import changed_tokens, expected_neighbours

SIZES = ("S", "B", "XL")
CLASS = ("Full3D-S/2-Video", "Factorized-S/2-Video", "PT-DiT/S-Video")
TEXT = ("Full3D-S/2-T2V", "Factorized-S/2-T2V", "PT-DiT/S-T2V")
TINY = dict(input_size=16, num_frames=8, in_channels=3, depth=2, hidden_size=32, num_heads=2)


def tiny_class(name, **kw):
    extra = {"compression_ratio": (4, 2, 2)} if name.startswith("PT-DiT") else {}
    return ptdit.create_model(name, **{**TINY, "num_classes": 5, **extra, **kw})


def tiny_text(name, **kw):
    extra = {"compression_ratio": (4, 2, 2)} if name.startswith("PT-DiT") else {}
    return ptdit.create_model(name, **{**TINY, "caption_channels": 24, "text_tokens": 6, **extra, **kw})


# --- the factorised attention, by hand ----------------------------------------------------------
def plain_attention(module, tokens):
    """One sequence (T, C) through `module`'s qkv/proj with an explicit softmax, head by head."""
    heads = module.num_heads
    d = tokens.shape[-1] // heads
    q, k, v = module.qkv(tokens).view(tokens.shape[0], 3, heads, d).unbind(1)
    out = []
    for h in range(heads):
        weights = torch.softmax(q[:, h] @ k[:, h].T / math.sqrt(d), dim=-1)
        out.append(weights @ v[:, h])
    return module.proj(torch.cat(out, dim=-1))


def by_hand(spatial, temporal, x, grid):
    """x + S(LN x), then + T(LN .): loops over samples, frames and positions (test only)."""
    f, h, w = grid
    ln = torch.nn.functional.layer_norm
    x = x.clone()
    for b in range(x.shape[0]):
        normed = ln(x[b], x.shape[-1:], eps=1e-6)
        for frame in range(f):
            idx = [frame * h * w + p for p in range(h * w)]
            x[b, idx] = x[b, idx] + plain_attention(spatial, normed[idx])
        normed = ln(x[b], x.shape[-1:], eps=1e-6)
        for p in range(h * w):
            idx = [frame * h * w + p for frame in range(f)]
            x[b, idx] = x[b, idx] + plain_attention(temporal, normed[idx])
    return x


def changed_by(module, x, i):
    """Tokens whose output moves when token i does; a random direction, since LayerNorm cancels the
    constant shift that tests/test_pt_dit.py changed_tokens uses on bare attention."""
    y = x.clone()
    y[:, i] += torch.randn(x.shape[-1], generator=torch.Generator().manual_seed(i))
    with torch.no_grad():
        diff = (module(y) - module(x)).abs().amax(dim=(0, 2))
    return set(torch.nonzero(diff > 1e-6).flatten().tolist())


def set_gates(block, spatial=1.0, temporal=1.0, mlp=0.0):
    """adaLN output = constants: shift = scale = 0 and the given gates (chunk order s, mlp, t)."""
    dim = block.norm1.normalized_shape[0]
    gates = {2: spatial, 5: mlp, 8: temporal}
    bias = torch.cat([torch.full((dim,), gates.get(i, 0.0)) for i in range(9)])
    with torch.no_grad():
        block.adaLN_modulation[-1].weight.zero_()
        block.adaLN_modulation[-1].bias.copy_(bias)


def test_factorized_block_equals_spatial_then_temporal_attention_by_hand():
    torch.manual_seed(0)
    model = randomize(ptdit.create_model("Factorized-S/2-Video", input_size=4, num_frames=3, in_channels=3,
                                         depth=1, hidden_size=16, num_heads=2, num_classes=2))
    block, grid = model.blocks[0], model.grid
    assert grid == (3, 2, 2)
    set_gates(block)
    x, c = torch.randn(2, 12, 16), torch.randn(2, 16)
    with torch.no_grad():
        torch.testing.assert_close(block(x, c), by_hand(block.attn, block.temporal_attn, x, grid))


@pytest.mark.parametrize("cls,same", [(SpatialAttention, lambda a, b: a[0] == b[0]),
                                      (TemporalAttention, lambda a, b: a[1:] == b[1:])])
def test_each_attention_mixes_only_its_axis(cls, same):
    grid = (4, 3, 2)
    module = randomize(cls(16, 2, grid))
    coords = list(itertools.product(*(range(g) for g in grid)))
    x = torch.randn(2, len(coords), 16)
    for i in (0, 7, len(coords) - 1):
        assert changed_tokens(module, x, i) == {j for j, c in enumerate(coords) if same(c, coords[i])}


@pytest.mark.parametrize("gates,same", [((1.0, 0.0), lambda a, b: a[0] == b[0]),       # spatial only
                                        ((0.0, 1.0), lambda a, b: a[1:] == b[1:])])    # temporal only
def test_block_sublayers_mix_frame_then_position(gates, same):
    model = randomize(tiny_class("Factorized-S/2-Video", depth=1))
    block = model.blocks[0]
    set_gates(block, *gates)
    f, h, w = model.grid
    coords = list(itertools.product(range(f), range(h), range(w)))
    x, c = torch.randn(1, len(coords), 32), torch.randn(1, 32)
    for i in (0, 9, len(coords) - 1):
        assert changed_by(lambda t: block(t, c), x, i) == {j for j, co in enumerate(coords) if same(co, coords[i])}


# --- PT-DiT on (f, h, w) --------------------------------------------------------------------------
def test_pt_dit_video_defaults_are_pf4_windows():
    for name in ("PT-DiT/XL-Video", "PT-DiT/XL-T2V"):
        cfg = ptdit.get_spec(name).build_config()
        assert cfg.grid == (16, 16, 16) and cfg.window == (4, 2, 2)
        assert ptdit.get_spec(name).build_config(num_frames=64, input_size=64).window == (4, 4, 4)


@pytest.mark.parametrize("name", ["PT-DiT/S-Video", "PT-DiT/S-T2V"])
@pytest.mark.parametrize("shifted", [False, True])
def test_pt_dit_video_windows_and_shift_mask_by_behaviour(name, shifted):
    # grid (8, 8, 8), windows (4, 2, 2): a token reaches its temporal window only, and after the
    # 3-D roll only its own Swin region (brute-force sets of tests/test_pt_dit.py, in 3-D).
    model = randomize(tiny_class(name) if name.endswith("Video") else tiny_text(name))
    block = model.blocks[0]
    module = block.sw_attn if shifted else block.attn
    assert module.grid == (8, 8, 8) and module.window == (4, 2, 2)
    x = torch.randn(2, 512, 32)
    for i in (0, 3 * 64 + 1, 4 * 64 + 9, 511, 7 * 64):
        expected = expected_neighbours(i, module.grid, module.window, shifted)
        assert changed_tokens(module, x, i) == expected
        if not shifted:                       # pf = 4: the whole temporal window, nothing beyond
            group = 4 * (i // 64 // 4)
            assert {j // 64 for j in expected} == set(range(group, group + 4))
    assert block.giim.proxy_grid == (2, 4, 4)


def test_temporal_shift_never_joins_last_and_first_frames():
    model = randomize(tiny_class("PT-DiT/S-Video"))
    module = model.blocks[0].sw_attn
    x = torch.randn(1, 512, 32)
    first, last = changed_tokens(module, x, 0), changed_tokens(module, x, 7 * 64)
    assert {j // 64 for j in first} == {0, 1} and {j // 64 for j in last} == {6, 7}


# --- whole models -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", CLASS)
def test_every_block_is_identity_at_init(name):
    model = tiny_class(name)
    x, c = torch.randn(2, 8 * 8 * 8, 32), torch.randn(2, 32)
    for block in model.blocks:
        torch.testing.assert_close(block(x, c), x)


@pytest.mark.parametrize("name", CLASS + TEXT)
def test_batch_with_different_timesteps_equals_each_sample_alone(name):
    torch.manual_seed(0)
    model = randomize(tiny_class(name) if name in CLASS else tiny_text(name), std=0.1).eval()
    x, t = torch.randn(3, 3, 8, 16, 16), torch.tensor([1.0, 500.0, 999.0])
    cond = torch.tensor([0, 2, 4]) if name in CLASS else torch.randn(3, 6, 24)
    extra = [] if name in CLASS else [torch.tensor([[1] * 6, [1] * 3 + [0] * 3, [1] * 1 + [0] * 5]).bool()]
    with torch.no_grad():
        batched = model(x, t, cond, *extra)
        alone = torch.cat([model(x[i:i + 1], t[i:i + 1], cond[i:i + 1], *[e[i:i + 1] for e in extra])
                           for i in range(3)])
    assert batched.shape == (3, 6, 8, 16, 16)
    torch.testing.assert_close(batched, alone, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(batched[0], batched[1])


@pytest.mark.parametrize("name", TEXT)
def test_text_models_react_to_the_text_and_ignore_padding(name):
    torch.manual_seed(0)
    model = randomize(tiny_text(name), std=0.1).eval()
    x, t = torch.randn(1, 3, 8, 16, 16), torch.tensor([10.0])
    text = torch.randn(1, 6, 24)
    mask = torch.tensor([[True, True, True, False, False, False]])
    padded = text.clone()
    padded[:, 4] += 3.0                       # a padding token: masked out
    spoken = text.clone()
    spoken[:, 1] += 3.0                       # a real token
    with torch.no_grad():
        out = model(x, t, text, mask)
        torch.testing.assert_close(model(x, t, padded, mask), out)
        assert (model(x, t, spoken, mask) - out).abs().max() > 1e-4
        assert (model(x, t, padded) - model(x, t, text)).abs().max() > 1e-4     # no mask: all attended
        assert (model(x, t, None) - out).abs().max() > 1e-4                    # null caption differs


def test_caption_mask_errors_name_the_problem():
    model = tiny_text("Full3D-S/2-T2V")
    x, t, text = torch.randn(1, 3, 8, 16, 16), torch.tensor([1.0]), torch.randn(1, 6, 24)
    with pytest.raises(ValueError, match="all False"):
        model(x, t, text, torch.zeros(1, 6, dtype=torch.bool))
    with pytest.raises(ValueError, match="does not match"):
        model(x, t, text, torch.ones(1, 5, dtype=torch.bool))


def test_baselines_refuse_image_configs():
    with pytest.raises(ValueError, match="video=True"):
        ptdit.create_model("Factorized-S/2-Video", video=False, num_frames=1)


# --- registry and cost --------------------------------------------------------------------------------
def test_registry_has_every_size_with_one_shape_per_size():
    for size in SIZES:
        shapes = set()
        for name in (f"Full3D-{size}/2-Video", f"Factorized-{size}/2-Video", f"PT-DiT/{size}-Video",
                     f"Full3D-{size}/2-T2V", f"Factorized-{size}/2-T2V", f"PT-DiT/{size}-T2V"):
            cfg = ptdit.get_spec(name).build_config()
            shapes.add((cfg.depth, cfg.hidden_size, cfg.num_heads, cfg.input_shape))
            assert cfg.video and cfg.num_frames == 16 and cfg.input_size == 32
            assert getattr(cfg, "caption_channels", 4096) == 4096 and getattr(cfg, "num_classes", 101) in (0, 101)
        assert len(shapes) == 1
    assert ptdit.get_spec("PT-DiT/XL-T2V").build_config().depth == 28


def attention_macs(name, **kw):
    with torch.device("meta"):
        model = tiny_class(name, depth=1, **kw)
    return split_attention(count_flops_by_op(model, example_inputs(model)))[0]


def test_attention_matmuls_match_closed_forms():
    # Multiply-adds of QK^T and AV: 2 * queries * keys * D per attention, grid (8, 8, 8), D = 32.
    f, h, w, d = 8, 8, 8, 32
    n = f * h * w
    assert attention_macs("Full3D-S/2-Video") == 2 * n * n * d
    assert attention_macs("Factorized-S/2-Video") == 2 * n * (h * w) * d + 2 * n * f * d
    window, proxies = 4 * 2 * 2, n // 16
    # window + shifted window attention, proxies among themselves, every token onto the proxies
    assert attention_macs("PT-DiT/S-Video") == 2 * (2 * n * window * d) + 2 * proxies ** 2 * d + 2 * n * proxies * d
