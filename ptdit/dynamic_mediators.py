"""DAM's step-wise dynamic mediators: switch models during one SDE sampling run.

Follows LeapLabTHU/Attention-Mediators time_step_wise_adjusting/: SwitchModelThree
(models.py) and the switching loop in transport/integrators.py (sde.sample). The rule, per
sampling run and for the whole batch at once:
- start with models[0];
- after SDE step i (i = 0, 1, ...), d_i = distance(x_i, x_{i-1}) (mean absolute difference for
  "mae" = F.l1_loss, mean squared for "mse"), a scalar over the whole batch;
- reference = mean of d_1 .. d_k, k = first_several_num (3 in DAM's scripts);
- from step k + 1 on, in order: if d_i < ratios[0] * reference and models[0] is in use, switch
  to models[1]; then if d_i < ratios[1] * reference and models[1] is in use, switch to
  models[2] (so both switches can happen at one step). Later models stay once chosen.
- the final "Mean" step uses whichever model is in use.
Generalised from three models to any number (ratios[j] moves from models[j] to models[j+1]).

Order: DAM's scripts pass mediator counts 4, 16, 64 as model1, model2, model3, so the run
STARTS with the fewest mediators and moves to more as the trajectory settles. Pass the
models in the order they are to be used.
"""

import torch
import torch.nn.functional as F

DISTANCES = {"mae": F.l1_loss, "mse": F.mse_loss}


class StepwiseDynamicModel(torch.nn.Module):
    """Dispatches forward / forward_with_cfg to the model in use; observe() applies DAM's rule."""

    def __init__(self, models, switch_ratios, first_several_num=3, distance="mae"):
        super().__init__()
        assert len(switch_ratios) == len(models) - 1
        self.models = torch.nn.ModuleList(models)
        self.switch_ratios = list(switch_ratios)
        self.first_several_num = first_several_num
        self.distance = DISTANCES[distance]
        self.reset()

    def reset(self):
        """Back to the first model; DAM resets at the start of every sde.sample."""
        self.current = 0
        self.reference = 0.0
        self.last_x = None
        self.switch_steps = []  # (step index, model index) of each switch, for logging

    def observe(self, step, x):
        """Called after SDE step `step` with the new state x (integrators.SDE step_callback)."""
        k = self.first_several_num
        if 1 <= step < k + 1:
            self.reference += self.distance(x, self.last_x).item() / k
        if step >= k + 1:
            change = self.distance(x, self.last_x).item()
            for j, ratio in enumerate(self.switch_ratios):
                if self.current == j and change < ratio * self.reference:
                    self.current = j + 1
                    self.switch_steps.append((step, j + 1))
        self.last_x = x

    def forward(self, x, t, **kwargs):
        return self.models[self.current](x, t, **kwargs)

    def forward_with_cfg(self, x, t, **kwargs):
        return self.models[self.current].forward_with_cfg(x, t, **kwargs)


def sample_sde_dynamic(sample_fn, init, switcher, model_fn=None, **model_kwargs):
    """Run a Sampler.sample_sde function with DAM's switching; returns the list of states.

    model_fn: switcher (no guidance) or switcher.forward_with_cfg (guidance), as DAM's
    sample_ddp_three.py chooses.
    """
    switcher.reset()
    return sample_fn(init, model_fn or switcher, step_callback=switcher.observe, **model_kwargs)
