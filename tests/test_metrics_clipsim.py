"""CLIPSIM with a randomly initialised open_clip ViT-B/32 saved to a local file (the real loading path)."""

import numpy as np
import pytest
import torch

open_clip = pytest.importorskip("open_clip")

from evaluation.metrics.clipsim import MODEL, clipsim, load_clip  # noqa: E402


def test_clipsim_is_mean_raw_cosine_over_frames(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "clip.pt"
    torch.save(open_clip.create_model(MODEL).state_dict(), path)
    model, preprocess, tokenizer, sha = load_clip(str(path))
    videos = np.random.default_rng(0).integers(0, 256, size=(2, 2, 40, 48, 3)).astype(np.uint8)
    captions = ["a dog runs on the beach", "a red car"]
    value = clipsim(videos, captions, model, preprocess, tokenizer)
    # by hand: cosine of each frame with its own caption, averaged
    from PIL import Image
    with torch.no_grad():
        text = model.encode_text(tokenizer(captions))
        expected = []
        for v, t in zip(videos, text):
            img = model.encode_image(torch.stack([preprocess(Image.fromarray(f)) for f in v]))
            expected += torch.nn.functional.cosine_similarity(img, t[None], dim=-1).tolist()
    assert value == pytest.approx(np.mean(expected), abs=1e-5)
    assert -1 <= value <= 1 and len(sha) == 64
    with pytest.raises(ValueError, match="2 videos but 1 captions"):
        clipsim(videos, captions[:1], model, preprocess, tokenizer)
    with pytest.raises(FileNotFoundError, match="ViT-B/32"):
        load_clip(str(tmp_path / "missing.pt"))
