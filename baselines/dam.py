"""DAM: SiT with attention mediators (Pu et al., ECCV 2024), state-dict compatible with
LeapLabTHU/Attention-Mediators attention_mediator/models.py.

The official model is willisma/SiT's models.py with every block's timm Attention replaced by
AttentionWithMediators (SiTBlock.__init__); everything else, SiT's conventions included (continuous t,
learn_sigma output halved in forward), is SiT's. So DAM here is our SiT with a different token mixer,
and an official checkpoint's keys (blocks.i.attn.{qkv,proj,dwc,an_bias,...}) load with strict=True.

The official configs are SiT_models (S/B/L/XL with patch 2/4/8) plus train.py's required
--mediator_num; the paper trains S/2 with 4, 16 and 64 mediators.
"""

from dataclasses import dataclass

from baselines.agent_attention import square_side
from baselines.mediator_attention import MediatorAttention
from baselines.sit import SiT
from ptdit.config import TransformerConfig


@dataclass(frozen=True)
class DAMConfig(TransformerConfig):
    """SiT's fields plus the mediator count (models.py SiT(..., mediator_num=64))."""

    mediator_num: int = 64

    def __post_init__(self):
        super().__post_init__()
        square_side(self.mediator_num, "mediator_num")
        if self.video:
            raise ValueError("DAM is an image model: its position biases live on one (h, w) grid; use video=False")


class DAM(SiT):
    config_class = DAMConfig

    def make_attention(self, index):
        cfg = self.config
        return MediatorAttention(cfg.hidden_size, cfg.num_heads, self.grid[1:], mediator_num=cfg.mediator_num)
