"""DAM's step-wise dynamic mediators (ptdit/dynamic_mediators.py): the switching rule, exactly.

Rule (Attention-Mediators time_step_wise_adjusting/transport/integrators.py): reference = mean of
the L1 changes after steps 1..k; from step k + 1 on, switch from model j to j + 1 when the
change is below ratio_j * reference (both switches may fire in one step).
"""

import pytest
import torch

from ptdit.dynamic_mediators import StepwiseDynamicModel, sample_sde_dynamic
from ptdit.transport import Sampler, create_transport

F64 = torch.float64
MEAN = torch.tensor([0.5, -0.3], dtype=F64)
COV = torch.tensor([[0.6, 0.3], [0.3, 0.4]], dtype=F64)
EVALS, EVECS = torch.linalg.eigh(COV)


pytestmark = pytest.mark.usefixtures("one_thread")   # tiny tensors: one thread is fastest (conftest.py)


class Tagged(torch.nn.Module):
    """The exact Linear-path velocity for N(MEAN, COV); logs which model ran at which t."""

    def __init__(self, tag, log):
        super().__init__()
        self.tag, self.log = tag, log

    def forward(self, x, t, y=None):
        self.log.append((self.tag, float(t[0])))
        tt = t.to(x).view(-1, 1)
        r = (x - tt * MEAN) @ EVECS
        prec_r = (r / (tt ** 2 * EVALS + (1 - tt) ** 2)) @ EVECS.T  # Sigma_t^-1 (x - t m)
        x1_hat = MEAN + tt * prec_r @ COV
        return x1_hat - (1 - tt) * prec_r  # d alpha E[x1|x] + d sigma E[x0|x], alpha = t

    def forward_with_cfg(self, x, t, y, cfg_scale):
        self.log.append((f"{self.tag}-cfg", float(t[0])))
        return self.forward(x, t, y)


def states_with_changes(changes):
    """States x_0, x_1, ... whose consecutive mean absolute changes are `changes`."""
    xs = [torch.zeros(2, 3)]
    for c in changes:
        xs.append(xs[-1] + c)
    return xs


@pytest.mark.parametrize("changes, expected", [
    # reference = mean(1, 2, 3) = 2; ratios (1.0, 0.5): thresholds 2.0 and 1.0
    ([1, 2, 3, 2.5, 1.9, 1.5, 0.9, 0.1], [(5, 1), (7, 2)]),
    ([1, 2, 3, 0.5], [(4, 1), (4, 2)]),       # both switches in one step
    ([1, 2, 3, 2.0, 1.0], [(5, 1)]),           # strict "<": equal to the threshold does not switch
    ([0.1, 0.1, 0.1, 0.1, 0.01], [(5, 1), (5, 2)]),  # steps 1..3 only build the reference
])
def test_switch_rule(changes, expected):
    sw = StepwiseDynamicModel([torch.nn.Identity()] * 3, switch_ratios=(1.0, 0.5), first_several_num=3)
    for step, x in enumerate(states_with_changes([5.0] + changes)):  # step 0's change is ignored
        if step > 0:
            sw.observe(step - 1, x)
    # observe(i) gets the state after step i: change i is (x_{i} - x_{i-1}), i.e. changes[i - 1]
    assert sw.switch_steps == expected
    assert sw.current == expected[-1][1]


def test_reference_is_mean_of_first_three_l1_changes():
    sw = StepwiseDynamicModel([torch.nn.Identity()] * 2, switch_ratios=(0.5,), first_several_num=3)
    xs = [torch.zeros(4, 2), torch.ones(4, 2), torch.ones(4, 2) * 3, torch.full((4, 2), 6.0), torch.full((4, 2), 10.0)]
    for i, x in enumerate(xs):
        sw.observe(i, x)
    assert sw.reference == pytest.approx((1 + 2 + 3) / 3)  # changes after steps 1, 2, 3


def test_dynamic_sde_run_switches_in_order_and_stays_exact():
    """A full SiT SDE run: starts with models[0], moves forward only, samples still N(MEAN, COV)."""
    log = []
    models = [Tagged(name, log) for name in ("n4", "n16", "n64")]
    sw = StepwiseDynamicModel(models, switch_ratios=(1.0, 0.6), first_several_num=3, distance="mae")
    sample = Sampler(create_transport("Linear")).sample_sde(
        diffusion_form="sigma", last_step="Mean", last_step_size=0.04, num_steps=250)
    torch.manual_seed(0)
    z = torch.randn(3000, 2, dtype=F64)
    x = sample_sde_dynamic(sample, z, sw)[-1]

    tags = [tag for tag, _ in log]
    assert tags[:5] == ["n4"] * 5  # no switch before step k + 1 = 4
    order = [tags[0]] + [b for a, b in zip(tags, tags[1:]) if a != b]
    assert order == ["n4", "n16", "n64"], order  # each model used once, fewest mediators first
    # SiT's SDE drift calls the model twice per step (velocity, then score), 250 steps in all.
    assert len(tags) == 2 * 250 and [s for s, _ in sw.switch_steps] == sorted(s for s, _ in sw.switch_steps)
    n = x.shape[0]
    assert ((x.mean(0) - MEAN).abs() < 4.5 * torch.sqrt(torch.diagonal(COV) / n)).all()
    assert ((torch.cov(x.T) - COV).abs() < 0.06).all()

    # A second run starts again from the first model.
    log.clear()
    sample_sde_dynamic(sample, z[:10], sw)
    assert log[0][0] == "n4"


def test_cfg_dispatches_to_current_model():
    log = []
    sw = StepwiseDynamicModel([Tagged("a", log), Tagged("b", log)], switch_ratios=(0.5,))
    x, t = torch.zeros(2, 2, dtype=F64), torch.full((2,), 0.5)
    sw.forward_with_cfg(x, t, y=None, cfg_scale=1.5)
    sw.current = 1
    sw(x, t)
    assert [tag for tag, _ in log] == ["a-cfg", "a", "b"]
