"""DiT/SiT: official parameter counts, GFLOPs of the DiT paper, and the computation of the official
models.py, checked against an independent assembly of timm's layers (what models.py is built from)."""

import argparse

import numpy as np
import pytest
import torch
import torch.nn as nn

import ptdit
from evaluation.efficiency.flops import count_params, model_gflops
from ptdit.checkpoint import load_weights
from tests.conftest import randomize

SIZES = {"S": (12, 384, 6), "B": (12, 768, 12), "L": (24, 1024, 16), "XL": (28, 1152, 16)}
OFFICIAL_PARAMS_P2 = {"S": 32_963_360, "B": 130_512_416, "L": 458_102_816, "XL": 675_129_632}
# DiT paper Table 4 / baselines.md, GFLOPs at 256 px.
PAPER_GFLOPS = {("S", 2): 6.06, ("B", 2): 23.01, ("L", 2): 80.71, ("XL", 2): 118.64,
                ("S", 4): 1.41, ("B", 4): 5.57, ("L", 4): 19.70, ("XL", 4): 29.04}


def closed_form_params(depth, d, p, tokens_side=32, c_in=4, classes=1000):
    """Count DiT's parameters layer by layer from models.py's definitions."""
    t = (tokens_side // p) ** 2
    patch = c_in * p * p * d + d
    t_emb = 256 * d + d + d * d + d
    y_emb = (classes + 1) * d
    block = (3 * d * d + 3 * d) + (d * d + d) + (4 * d * d + 4 * d) + (4 * d * d + d) + (6 * d * d + 6 * d)
    final = (2 * d * d + 2 * d) + (d * p * p * 2 * c_in + p * p * 2 * c_in)
    return patch + t * d + t_emb + y_emb + depth * block + final


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("patch", [2, 4, 8])
def test_dit_params_are_official(size, patch):
    depth, width, _ = SIZES[size]
    params, _ = model_gflops(f"DiT-{size}/{patch}")
    assert params == closed_form_params(depth, width, patch)
    if patch == 2:
        assert params == OFFICIAL_PARAMS_P2[size]


@pytest.mark.parametrize("size,patch", list(PAPER_GFLOPS))
def test_dit_gflops_match_paper(size, patch):
    _, gflops = model_gflops(f"DiT-{size}/{patch}")
    assert abs(gflops / PAPER_GFLOPS[(size, patch)] - 1) < 0.002 + 0.005 / PAPER_GFLOPS[(size, patch)]


def test_dit_gflops_rebuttal_resolutions():
    # Measured with the official code (baselines.md): DiT-B/2 at 512 and 1024 px.
    assert model_gflops("DiT-B/2", input_size=64)[1] == pytest.approx(106.38, rel=1e-3)
    assert model_gflops("DiT-B/2", input_size=128)[1] == pytest.approx(657.33, rel=1e-3)


class ReferenceDiT(nn.Module):
    """DiT models.py assembled from timm's PatchEmbed/Attention/Mlp, written for this test only."""

    def __init__(self, depth, width, heads, patch, input_size, num_classes):
        super().__init__()
        from timm.layers import Mlp, PatchEmbed
        from timm.models.vision_transformer import Attention
        self.p, self.c = patch, 8
        self.x_embedder = PatchEmbed(input_size, patch, 4, width, bias=True)
        self.pos_embed = nn.Parameter(torch.zeros(1, (input_size // patch) ** 2, width), requires_grad=False)
        self.t_embedder = nn.Module()
        self.t_embedder.mlp = nn.Sequential(nn.Linear(256, width), nn.SiLU(), nn.Linear(width, width))
        self.y_embedder = nn.Module()
        self.y_embedder.embedding_table = nn.Embedding(num_classes + 1, width)
        self.blocks = nn.ModuleList()
        for _ in range(depth):
            b = nn.Module()
            b.attn = Attention(width, num_heads=heads, qkv_bias=True)
            b.mlp = Mlp(width, 4 * width, act_layer=lambda: nn.GELU(approximate="tanh"))
            b.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(width, 6 * width))
            self.blocks.append(b)
        self.final_layer = nn.Module()
        self.final_layer.linear = nn.Linear(width, patch * patch * 8)
        self.final_layer.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(width, 2 * width))

    def forward(self, x, t, y):
        ln = lambda v: nn.functional.layer_norm(v, v.shape[-1:], eps=1e-6)  # noqa: E731
        mod = lambda v, sh, sc: v * (1 + sc[:, None]) + sh[:, None]  # noqa: E731
        half = 128
        freqs = torch.exp(-np.log(10000) * torch.arange(half, dtype=torch.float32) / half)
        args = t[:, None].float() * freqs[None]
        c = self.t_embedder.mlp(torch.cat([torch.cos(args), torch.sin(args)], -1)) + self.y_embedder.embedding_table(y)
        h = self.x_embedder(x) + self.pos_embed
        for b in self.blocks:
            s1, c1, g1, s2, c2, g2 = b.adaLN_modulation(c).chunk(6, dim=1)
            h = h + g1[:, None] * b.attn(mod(ln(h), s1, c1))
            h = h + g2[:, None] * b.mlp(mod(ln(h), s2, c2))
        sh, sc = self.final_layer.adaLN_modulation(c).chunk(2, dim=1)
        h = self.final_layer.linear(mod(ln(h), sh, sc))
        n, s = h.shape[0], int(h.shape[1] ** 0.5)
        h = torch.einsum("nhwpqc->nchpwq", h.reshape(n, s, s, self.p, self.p, self.c))
        return h.reshape(n, self.c, s * self.p, s * self.p)


def tiny_dit(name="DiT-S/2"):
    return randomize(ptdit.create_model(name, depth=2, hidden_size=64, num_heads=4, input_size=8, num_classes=10))


def test_dit_equals_reference_assembly_with_same_weights():
    ours = tiny_dit().eval()
    ref = ReferenceDiT(2, 64, 4, 2, 8, 10).eval()
    ref.load_state_dict(ours.state_dict(), strict=True)
    x, t, y = torch.randn(3, 4, 8, 8), torch.tensor([0, 500, 999]), torch.tensor([1, 5, 10])
    with torch.no_grad():
        torch.testing.assert_close(ours(x, t, y), ref(x, t, y), rtol=1e-5, atol=1e-5)


def test_pos_embed_is_dit_sincos():
    model = ptdit.create_model("DiT-S/2", depth=1, input_size=8)
    pe = model.pos_embed[0].numpy()
    d, grid = 384, 4
    omega = 1.0 / 10000 ** (np.arange(d // 4) / (d / 4))
    row, col = 2, 3   # token index 2*4+3
    expect = np.concatenate([np.sin(col * omega), np.cos(col * omega), np.sin(row * omega), np.cos(row * omega)])
    np.testing.assert_allclose(pe[row * grid + col], expect, rtol=1e-6, atol=1e-6)


def test_initialisation_follows_dit():
    model = ptdit.create_model("DiT-S/2", depth=2, input_size=8)
    for block in model.blocks:
        assert block.adaLN_modulation[-1].weight.abs().sum() == 0
    assert model.final_layer.linear.weight.abs().sum() == 0
    assert not model.pos_embed.requires_grad
    x = torch.randn(2, 4, 8, 8)
    c = torch.randn(2, 384)
    tokens = model.x_embedder(x) + model.pos_embed
    for block in model.blocks:     # adaLN-Zero: every block is the identity at step 0
        torch.testing.assert_close(block(tokens, c), tokens)


def test_cfg_guides_three_channels_like_official():
    model = tiny_dit().eval()
    x = torch.randn(2, 4, 8, 8)
    x = torch.cat([x[:1], x[:1]])
    t, y = torch.tensor([10, 10]), torch.tensor([3, 10])
    with torch.no_grad():
        out = model.forward_with_cfg(x, t, y, 4.0)
        raw = model(x, t, y)
    guided = raw[1, :3] + 4.0 * (raw[0, :3] - raw[1, :3])
    torch.testing.assert_close(out[0, :3], guided)
    torch.testing.assert_close(out[1, :3], guided)
    torch.testing.assert_close(out[:, 3:], raw[:, 3:])       # channel 3 and sigma untouched
    with torch.no_grad():                                   # scale 1 = the conditional output
        torch.testing.assert_close(model.forward_with_cfg(x, t, y, 1.0)[0, :3], raw[0, :3])


def test_label_dropout_uses_null_class():
    model = tiny_dit()
    emb = model.y_embedder
    dropped = emb.token_drop(torch.tensor([1, 2, 3]), force_drop_ids=torch.tensor([1, 0, 1]))
    assert dropped.tolist() == [10, 2, 10]


def test_sit_returns_first_half_of_channels_and_takes_continuous_t():
    dit = tiny_dit("DiT-S/2").eval()
    sit = ptdit.create_model("SiT-S/2", depth=2, hidden_size=64, num_heads=4, input_size=8, num_classes=10).eval()
    sit.load_state_dict(dit.state_dict(), strict=True)     # same keys as DiT
    x, t, y = torch.randn(2, 4, 8, 8), torch.tensor([0.25, 0.9]), torch.tensor([1, 2])
    with torch.no_grad():
        torch.testing.assert_close(sit(x, t, y), dit(x, t, y)[:, :4])
        assert not torch.allclose(sit(x, t, y), sit(x, t + 0.05, y))


def test_train_checkpoint_loads_ema_strict(tmp_path):
    model = tiny_dit()
    ema = randomize(tiny_dit(), seed=1)
    path = tmp_path / "0000100.pt"
    torch.save({"model": model.state_dict(), "ema": ema.state_dict(), "opt": {},
                "args": argparse.Namespace(model="DiT-S/2")}, path)
    fresh = ptdit.create_model("DiT-S/2", depth=2, hidden_size=64, num_heads=4, input_size=8, num_classes=10)
    load_weights(fresh, str(path))
    for k, v in ema.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[k], v)
    raw = tmp_path / "raw.pt"
    torch.save(model.state_dict(), raw)
    load_weights(fresh, str(raw))
    torch.testing.assert_close(fresh.state_dict()["blocks.1.attn.qkv.weight"], model.state_dict()["blocks.1.attn.qkv.weight"])


def test_checkpoint_mismatch_names_keys(tmp_path):
    state = tiny_dit().state_dict()
    state.pop("blocks.1.mlp.fc2.bias")
    state["extra.weight"] = torch.zeros(1)
    path = tmp_path / "bad.pt"
    torch.save(state, path)
    with pytest.raises(KeyError, match=r"blocks\.1\.mlp\.fc2\.bias.*extra\.weight"):
        load_weights(tiny_dit(), str(path))
    with pytest.raises(FileNotFoundError, match="nowhere.pt"):
        load_weights(tiny_dit(), str(tmp_path / "nowhere.pt"))


def test_official_key_layout():
    keys = set(ptdit.create_model("DiT-S/2", depth=1, input_size=8).state_dict())
    expected = {"x_embedder.proj.weight", "x_embedder.proj.bias", "pos_embed", "t_embedder.mlp.0.weight",
                "t_embedder.mlp.0.bias", "t_embedder.mlp.2.weight", "t_embedder.mlp.2.bias",
                "y_embedder.embedding_table.weight", "final_layer.linear.weight", "final_layer.linear.bias",
                "final_layer.adaLN_modulation.1.weight", "final_layer.adaLN_modulation.1.bias"}
    for name in ("attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2", "adaLN_modulation.1"):
        expected |= {f"blocks.0.{name}.weight", f"blocks.0.{name}.bias"}
    assert keys == expected


def test_bad_inputs_have_clear_errors():
    with pytest.raises(KeyError, match="DiT-XL/2"):
        ptdit.create_model("DiT-XL2")
    with pytest.raises(TypeError, match="did you mean|Did you mean"):
        ptdit.create_model("DiT-S/2", hiden_size=64)
    with pytest.raises(ValueError, match="not divisible by patch_size"):
        ptdit.create_model("DiT-S/4", input_size=30)
    model = ptdit.create_model("DiT-S/2", depth=1, input_size=8)
    with pytest.raises(ValueError, match=r"\(N, 4, 8, 8\)"):
        model(torch.randn(1, 4, 16, 16), torch.zeros(1), torch.zeros(1, dtype=torch.long))


def test_count_params_counts_pos_embed():
    model = ptdit.create_model("DiT-S/2", depth=1, input_size=8)
    assert count_params(model) == sum(p.numel() for p in model.state_dict().values())
