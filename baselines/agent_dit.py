"""Agent-DiT: DiT whose self-attention is agent attention (baselines/agent_attention.py).

There is no official diffusion variant of agent attention (LeapLabTHU/Agent-Attention's agentsd/ is a
training-free Stable Diffusion patch), so this model is built from agent_deit.py's AgentAttention and
trained with DiT's DDPM objective; all other parts, keys and initialisation are DiT's.

Default agent_num = 64: agent_deit.py uses 49 = 7x7 agents for its 14x14 DeiT grid. DiT's grid at 256 px
is 16x16, where 7x7 adaptive pooling gives uneven, overlapping windows; 8x8 agents pool exact 2x2
windows, keep roughly the same agent/token ratio (1/4 here, 1/4 in DeiT) and equal DAM's largest
mediator count, so Agent-DiT and DAM-n64 are directly comparable.
"""

from dataclasses import dataclass

from baselines.agent_attention import AgentAttention, square_side
from baselines.dit import DiT
from ptdit.config import TransformerConfig


@dataclass(frozen=True)
class AgentDiTConfig(TransformerConfig):
    """DiT's fields plus the agent count (a perfect square: agents are pooled on a square grid)."""

    agent_num: int = 64

    def __post_init__(self):
        super().__post_init__()
        square_side(self.agent_num, "agent_num")
        if self.video:
            raise ValueError("Agent-DiT is an image model: its position biases live on one (h, w) grid; use video=False")


class AgentDiT(DiT):
    config_class = AgentDiTConfig

    def make_attention(self, index):
        cfg = self.config
        return AgentAttention(cfg.hidden_size, cfg.num_heads, self.grid[1:], agent_num=cfg.agent_num)
