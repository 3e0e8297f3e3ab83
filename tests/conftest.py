import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def randomize(model, seed=0, std=0.05):
    """Replace every trainable weight by noise: zero-initialised adaLN/outputs would hide bugs."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.copy_(torch.randn(p.shape, generator=gen) * std)
    return model


@pytest.fixture
def rand_model():
    return randomize


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: one thread is fastest and avoids oversubscribing a busy CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
