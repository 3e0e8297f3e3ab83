"""CLIPSIM: mean cosine similarity between generated frames and their captions.

open_clip ViT-B/32 with OpenAI's weights ('openai' tag) read from a local file (pretrained=PATH;
open_clip loads it with torch.load(weights_only=True)); its BPE vocabulary ships in the wheel, so
the tokenizer works offline. Every frame of a video is compared with that video's caption, and the
score is the mean over all frames of all videos, as a raw cosine (the paper's 0.2349), not x100.
"""

import os

import numpy as np
import torch

from evaluation.feature_extractor import file_sha256

MODEL = "ViT-B-32"
WEIGHTS_HINT = ("OpenAI CLIP ViT-B/32 in open_clip format (open_clip_pytorch_model.bin from the Hugging Face repo "
                "timm/vit_base_patch32_clip_224.openai, or OpenAI's ViT-B-32.pt)")


def load_clip(weights_path, device="cpu"):
    import open_clip

    if not weights_path or not os.path.isfile(weights_path):
        raise FileNotFoundError(f"CLIP weights not found at {weights_path!r}: expected {WEIGHTS_HINT}; pass its path "
                                f"(--clip-weights)")
    model, _, preprocess = open_clip.create_model_and_transforms(MODEL, pretrained=weights_path, device=device)
    return model.eval(), preprocess, open_clip.get_tokenizer(MODEL), file_sha256(weights_path)


@torch.no_grad()
def clipsim(videos, captions, model, preprocess, tokenizer, device="cpu"):
    """videos: uint8 [N, T, H, W, 3]; captions: N strings. Returns the mean frame-caption cosine."""
    from PIL import Image

    videos = np.asarray(videos)
    if videos.dtype != np.uint8 or videos.ndim != 5 or videos.shape[-1] != 3:
        raise ValueError(f"expected uint8 videos [N, T, H, W, 3], got {videos.dtype} {videos.shape}")
    if len(captions) != len(videos):
        raise ValueError(f"{len(videos)} videos but {len(captions)} captions")
    text = model.encode_text(tokenizer(list(captions)).to(device)).float()
    text = text / text.norm(dim=-1, keepdim=True)
    sims = []
    for video, t in zip(videos, text):
        frames = torch.stack([preprocess(Image.fromarray(f)) for f in video]).to(device)
        image = model.encode_image(frames).float()
        image = image / image.norm(dim=-1, keepdim=True)
        sims.append(image @ t)
    return float(torch.cat(sims).mean())
