"""Every model compiles into one graph: torch._dynamo.explain of a training step's forward + loss
and, for the PT-DiT models, of a sampling step (classifier-free-guided forward) finds zero graph
breaks (the baselines' sampling forward is their training forward plus a cat and a split; tracing
it too would double this test's time for no new code path).

The backward is not traced by Dynamo (Tensor.backward inside a traced function is always a break;
torch.compile hands the backward to AOTAutograd, which derives ONE backward graph from each forward
graph), so "no break in forward + loss" is what makes a compiled training step one forward and one
backward graph. explain only captures graphs (no Inductor), so this runs in seconds on a CPU.
"""

import pytest
import torch

import ptdit

TINY = dict(depth=1, hidden_size=32, num_heads=2, input_size=16, num_classes=10)
MODELS = {
    "DiT-S/2": TINY,
    "SiT-S/2": TINY,
    "DAM-S/2-n4": TINY,
    "Agent-DiT-S/2": dict(TINY, agent_num=16),
    "PT-DiT/S-Class": TINY,
    "PT-DiT/S-Class-released": TINY,
    "PT-DiT/S-Video": dict(TINY, num_frames=8, input_size=16),
}


def explain(fn, *args):
    torch._dynamo.reset()
    return torch._dynamo.explain(fn)(*args)


def assert_no_breaks(report, what):
    assert report.graph_break_count == 0, (
        f"{what}: {report.graph_break_count} graph break(s): "
        + "; ".join(str(b.reason) for b in report.break_reasons[:3]))
    assert report.graph_count == 1


@pytest.mark.parametrize("name", sorted(MODELS))
def test_training_and_sampling_steps_have_no_graph_breaks(name):
    torch.manual_seed(0)
    model = ptdit.create_model(name, **MODELS[name])
    x = torch.randn(2, *model.config.input_shape)
    t, y = torch.tensor([10.0, 900.0]), torch.tensor([3, 7])

    def train_forward(x, t, y):
        return model(x, t, y).square().mean()

    model.train()
    assert_no_breaks(explain(train_forward, x, t, y), f"{name} training forward + loss")
    if name.startswith("PT-DiT"):        # the baselines' sampling forward is their training forward + cat/split
        model.eval()
        with torch.no_grad():
            assert_no_breaks(explain(model.forward_with_cfg, x, t, torch.tensor([3, 10]), 4.0), f"{name} sampling step")


def test_text_model_has_no_graph_breaks():
    torch.manual_seed(0)
    model = ptdit.create_model("PT-DiT/L-T2I", depth=1, hidden_size=32, num_heads=2, input_size=16,
                               caption_channels=8, text_tokens=5)
    x, t = torch.randn(2, *model.config.input_shape), torch.tensor([10.0, 900.0])
    text, mask = torch.randn(2, 5, 8), torch.tensor([[True] * 5, [True, True, False, False, False]])

    def train_forward(x, t, text, mask):
        return model(x, t, text, mask).square().mean()

    assert_no_breaks(explain(train_forward, x, t, text, mask), "PT-DiT/L-T2I training forward + loss")
