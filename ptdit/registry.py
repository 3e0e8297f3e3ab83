"""The one registry that names every model of the suite.

Entries point to their family class by import path ("module:Class") and are imported on first use,
so this module stays at the bottom of the import graph while baselines/ builds on ptdit/.
"""

import dataclasses
import difflib
import importlib

from ptdit.config import replace


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str                  # "package.module:Class"
    config: dict                 # fields of the family's config dataclass
    note: str = ""               # where the numbers come from

    def family_class(self):
        module, cls = self.family.split(":")
        return getattr(importlib.import_module(module), cls)

    def build_config(self, **overrides):
        config_class = self.family_class().config_class
        return replace(config_class(**self.config), **overrides)


_REGISTRY: dict[str, ModelSpec] = {}


class UnknownModelError(KeyError):
    """A KeyError whose message prints without KeyError's quoting."""

    def __str__(self):
        return str(self.args[0])


def register(name, family, note="", **config):
    if name in _REGISTRY:
        raise ValueError(f"model '{name}' is registered twice")
    _REGISTRY[name] = ModelSpec(name, family, dict(config), note)


def list_models():
    return list(_REGISTRY)


def get_spec(name):
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, _REGISTRY, n=5, cutoff=0.4)
        hint = f" Close names: {', '.join(close)}." if close else ""
        raise UnknownModelError(f"unknown model '{name}'.{hint} All models: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def create_model(name, **overrides):
    """Build a registered model; overrides replace config fields (input_size, num_classes,
    compression_ratio, ablation switches, ...). An unknown name or key names the valid ones."""
    spec = get_spec(name)
    return spec.family_class()(spec.build_config(**overrides))



# --- DiT and SiT: the official 12 configs each (DiT models.py, SiT models.py) ---------------------
_DIT_SIZES = {"S": (12, 384, 6), "B": (12, 768, 12), "L": (24, 1024, 16), "XL": (28, 1152, 16)}
for _size, (_depth, _width, _heads) in _DIT_SIZES.items():
    for _patch in (2, 4, 8):
        register(f"DiT-{_size}/{_patch}", "baselines.dit:DiT", "DiT models.py",
                 depth=_depth, hidden_size=_width, num_heads=_heads, patch_size=_patch)
for _size, (_depth, _width, _heads) in _DIT_SIZES.items():
    for _patch in (2, 4, 8):
        register(f"SiT-{_size}/{_patch}", "baselines.sit:SiT", "SiT models.py",
                 depth=_depth, hidden_size=_width, num_heads=_heads, patch_size=_patch)


# --- ToMe-DiT: DiT with token merging at inference (ToMe for SD; baselines/tome.py) ----------------
# Same weights as the DiT of the same size (sampled from a DiT run's checkpoint); the ratio is in the
# name so that the efficiency sweep can list it like any model.
for _size in ("S", "B", "L", "XL"):
    _depth, _width, _heads = _DIT_SIZES[_size]
    for _ratio in (0.25, 0.5):
        register(f"DiT-{_size}/2-ToMe{_ratio:g}", "baselines.tome:ToMeDiT",
                 f"DiT-{_size}/2 weights, ToMe for SD's bipartite merging of {_ratio:g} of the tokens before attention and MLP",
                 depth=_depth, hidden_size=_width, num_heads=_heads, patch_size=2, tome_ratio=_ratio)


# --- DAM: SiT with attention mediators (Attention-Mediators attention_mediator/models.py) ---------
# Paper figures (params incl. pos_embed as train.py logs them / GFLOPs): S/2 n=4 33.06M / 5.49,
# n=16 33.20M / 5.55, n=64 33.76M / 5.78; B/2 n=64 132.1M / 22.4. XL/2: models.py default n=64.
for _name, _size, _n in (("DAM-S/2-n4", "S", 4), ("DAM-S/2-n16", "S", 16), ("DAM-S/2-n64", "S", 64),
                         ("DAM-B/2-n64", "B", 64), ("DAM-XL/2-n64", "XL", 64)):
    _depth, _width, _heads = _DIT_SIZES[_size]
    register(_name, "baselines.dam:DAM",
             f"Attention-Mediators models.py SiT-{_size}/2, mediator_num={_n}"
             + ("" if _size != "XL" else " (the mediator count of the paper's XL run is not in the code; 64 is models.py's default)"),
             depth=_depth, hidden_size=_width, num_heads=_heads, patch_size=2, mediator_num=_n)

# --- Agent-DiT: DiT with agent attention (Agent-Attention agent_transformer/models/agent_deit.py) --
for _size in ("S", "B"):
    _depth, _width, _heads = _DIT_SIZES[_size]
    register(f"Agent-DiT-{_size}/2", "baselines.agent_dit:AgentDiT",
             "no official DiT variant; built from agent_deit.py (agent_num 64 = 8x8 on the 16x16 grid)",
             depth=_depth, hidden_size=_width, num_heads=_heads, patch_size=2, agent_num=64)

# --- PT-DiT ------------------------------------------------------------------------------------
# Class-conditional models of the rebuttal. Depth/width were never published; these are the closest
# configs found by bench/search_class_configs.py with the compact block (README, "PT-DiT class
# configs"): B and L are within 2 % params / 3 % GFLOPs of the published numbers; S uses the v2
# paper's S shape (10 x 288) and is 3.1 % short in params (no shape reaches both tolerances).
_PT_CLASS = {"S": (10, 288, 6), "B": (12, 576, 9), "L": (20, 960, 15)}
for _size, (_depth, _width, _heads) in _PT_CLASS.items():
    register(f"PT-DiT/{_size}-Class", "ptdit.pt_dit:PTDiT", "rebuttal class model, compact block (searched)",
             depth=_depth, hidden_size=_width, num_heads=_heads, layout="compact")
    register(f"PT-DiT/{_size}-Class-released", "ptdit.pt_dit:PTDiT", "same shape, released block layers",
             depth=_depth, hidden_size=_width, num_heads=_heads, layout="released")
# Paper v2 Table 4 sizes (layers / hidden / heads), released block, class-conditional.
_PT_V2 = {"S": (10, 288, 6), "B": (12, 640, 10), "L": (28, 864, 12), "XL": (28, 1152, 16), "H": (30, 1440, 20)}
for _size, (_depth, _width, _heads) in _PT_V2.items():
    register(f"PT-DiT/{_size}", "ptdit.pt_dit:PTDiT", "paper v2 Table 4 size, released block",
             depth=_depth, hidden_size=_width, num_heads=_heads, layout="released")

# --- Text-to-image models of the paper's Fig. 2 (GFLOPs against resolution) -------------------------
# PixArt-alpha-0.6B (PixArt.py PixArt_XL_2: 28 x 1152, 16 heads, T5 4096-d, 120 tokens) and PT-DiT's
# text models with the released block and adaLN-single, at the v2 paper's Table 4 L and H sizes.
register("PixArt-alpha-0.6B", "baselines.pixart:PixArt", "PixArt-alpha XL/2, full attention, adaLN-single",
         depth=28, hidden_size=1152, num_heads=16)
register("PT-DiT/L-T2I", "ptdit.pt_dit_text:PTDiTText", "paper's PT-DiT/L-0.6B: released block, adaLN-single",
         depth=28, hidden_size=864, num_heads=12)
register("PT-DiT/H-T2I", "ptdit.pt_dit_text:PTDiTText", "paper's PT-DiT/H: released block, adaLN-single",
         depth=30, hidden_size=1440, num_heads=20)

# --- Video (issue 8): the three attentions of the rebuttal's video table, same skeleton and size ---
# 3-D full attention over all f*h*w tokens (DiT / PixArt blocks with video=True), 2-D + 1-D factorised
# attention (baselines/factorized_dit.py, baselines/video_text.py) and PT-DiT with (4, h/8, w/8)
# windows, 3-D shifted windows and one proxy per 3-D window. Sizes: the paper's v2 Table 4 (S, B; XL =
# Qihoo-T2V, 28 x 1152, 16 heads), the same for all three attentions. Defaults: 16 frames at 256 px
# through an 8x image VAE frame by frame (latents 4 x 16 x 32 x 32), UCF-101's 101 classes; T2V: T5-XXL
# features (4096-d, 120 tokens). PT-DiT's class video model uses the released block (the T2V block
# with DiT's per-block adaLN instead of the text cross-attention).
_VIDEO_SIZES = {"S": (10, 288, 6), "B": (12, 640, 10), "XL": (28, 1152, 16)}
_VIDEO = dict(video=True, num_frames=16, input_size=32, in_channels=4, patch_size=2, temporal_patch_size=1)
_T2V = dict(_VIDEO, caption_channels=4096, text_tokens=120)
for _size, (_depth, _width, _heads) in _VIDEO_SIZES.items():
    _shape = dict(depth=_depth, hidden_size=_width, num_heads=_heads)
    register(f"Full3D-{_size}/2-Video", "baselines.dit:DiT", "3-D full attention, DiT block, UCF-101 classes",
             num_classes=101, **_VIDEO, **_shape)
    register(f"Factorized-{_size}/2-Video", "baselines.factorized_dit:FactorizedDiT",
             "2-D + 1-D factorised attention in every block, UCF-101 classes", num_classes=101, **_VIDEO, **_shape)
    register(f"PT-DiT/{_size}-Video", "ptdit.pt_dit:PTDiT", "PT-DiT, pf = 4 temporal windows, UCF-101 classes",
             num_classes=101, layout="released", **_VIDEO, **_shape)
    register(f"Full3D-{_size}/2-T2V", "baselines.video_text:Full3DText",
             "3-D full attention, PixArt block, T5 captions", **_T2V, **_shape)
    register(f"Factorized-{_size}/2-T2V", "baselines.video_text:FactorizedText",
             "2-D + 1-D factorised attention, PixArt cross-attention, T5 captions", **_T2V, **_shape)
    register(f"PT-DiT/{_size}-T2V", "ptdit.pt_dit_text:PTDiTText", "PT-DiT text block (released), pf = 4",
             **_T2V, **_shape)

# --- Lumina-Next's Next-DiT (baselines/lumina_next.py), PT-DiT Fig. 2's "Lumina-Next-1.7B" -----------
# Lumina-T2X NextDiT_2B_patch2: 2304 wide, 24 layers, 32 heads (8 KV heads: see baselines/lumina_next.py).
register("Lumina-Next-1.7B", "baselines.lumina_next:LuminaNext", "Lumina-T2X NextDiT_2B_patch2, 8 KV heads, Gemma-2B captions",
         depth=24, hidden_size=2304, num_heads=32, n_kv_heads=8, patch_size=2)
