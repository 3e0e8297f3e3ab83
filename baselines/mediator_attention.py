"""DAM's attention with mediators (Pu et al., ECCV 2024), after LeapLabTHU/Attention-Mediators
attention_mediator/models.py, class AttentionWithMediators.

Mediators are not learned tokens: they are the queries average-pooled on the token grid to
sqrt(n) x sqrt(n). Per head (d = head dim):
    stage 1  V_m = softmax(T K^T / sqrt(d) + B1) V      mediators gather from the keys
    stage 2  O   = softmax(Q T^T / sqrt(d) + B2) V_m    queries read the mediators
    O += depthwise Conv3x3(V); out = proj(O)
with B1 from an_bias (7x7, bilinear to HxW) + ah_bias + aw_bias, and B2 from na_bias + ha_bias + wa_bias.

AttentionWithMediators is, line by line, agent_deit.py's AgentAttention without the class-token
biases (same authors' lab, same parameter names and shapes, same two-stage computation and scales),
so it is that module here under DAM's name; `mediator_num` is the official argument name. The
state-dict keys are the official ones: qkv, proj, dwc, an_bias, na_bias, ah_bias, aw_bias, ha_bias,
wa_bias. The official pool / softmax / dropout submodules hold no parameters and are not needed
(attn_drop and proj_drop are 0 in every official config).

Extra parameters per layer over full attention: dwc 10 C + 2 * heads * n * 49 + 2 * heads * n * (H + W).
"""

from baselines.agent_attention import AgentAttention


class MediatorAttention(AgentAttention):
    """models.py AttentionWithMediators(dim, latent_size, num_heads, qkv_bias, mediator_num) on an
    (h, w) grid. The official forward assumes a square grid (h = w = sqrt(N)); any h x w works here
    and gives the same result when square."""

    def __init__(self, dim, num_heads, grid, mediator_num=64, qkv_bias=True):
        super().__init__(dim, num_heads, grid, agent_num=mediator_num, qkv_bias=qkv_bias)

    @property
    def mediator_num(self):
        return self.agent_num
