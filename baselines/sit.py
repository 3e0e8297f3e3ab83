"""SiT (Ma et al., 2024), state-dict compatible with willisma/SiT models.py.

The network is DiT's; two conventions differ and are kept here:
- t is continuous in [0, 1] (t = 1 is data) and goes raw into the same timestep embedder;
- with learn_sigma=True the network still has 2C output channels (so checkpoints load), but
  forward returns only the first C: SiT's transport never uses a variance. forward_with_cfg then
  guides channels 0-2 of those C, exactly as SiT's models.py does.
"""

from baselines.dit import DiT


class SiT(DiT):
    def forward(self, x, t, y):
        out = super().forward(x, t, y)
        return out.chunk(2, dim=1)[0] if self.learn_sigma else out
