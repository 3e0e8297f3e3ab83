"""CLIPSIM: mean cosine similarity between generated frames and their captions.

open_clip ViT-B/32 with OpenAI's weights ('openai' tag) read from a local file (pretrained=PATH;
open_clip loads it with torch.load(weights_only=True)); its BPE vocabulary ships in the wheel, so
the tokenizer works offline. Every frame of a video is compared with that video's caption, and the
score is the mean over all frames of all videos, as a raw cosine (the paper's 0.2349), not x100.
"""

import os

import numpy as np
import torch

from evaluation.metrics.feature_extractor import file_sha256

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
    videos = np.asarray(videos)
    if videos.dtype != np.uint8 or videos.ndim != 5 or videos.shape[-1] != 3:
        raise ValueError(f"expected uint8 videos [N, T, H, W, 3], got {videos.dtype} {videos.shape}")
    if len(captions) != len(videos):
        raise ValueError(f"{len(videos)} videos but {len(captions)} captions")
    return frame_caption_cosine(clip_frame_embeddings(videos, model, preprocess, device),
                                clip_text_embeddings(captions, model, tokenizer, device))


@torch.no_grad()
def clip_text_embeddings(captions, model, tokenizer, device="cpu"):
    """N captions -> CLIP text embeddings [N, D] (unnormalised)."""
    return model.encode_text(tokenizer(list(captions)).to(device)).float().cpu()


@torch.no_grad()
def clip_frame_embeddings(videos, model, preprocess, device="cpu"):
    """uint8 [N, T, H, W, 3] -> CLIP image embeddings [N, T, D] (unnormalised), every frame through the
    model's own preprocessing (resize + center crop to 224, CLIP's mean/std)."""
    from PIL import Image

    frames = []
    for video in np.asarray(videos):   # one video's frames per batch: 16 frames at 224 px
        pixels = torch.stack([preprocess(Image.fromarray(f)) for f in video]).to(device)
        frames.append(model.encode_image(pixels).float().cpu())
    return torch.stack(frames)


def frame_caption_cosine(frame_embeddings, text_embeddings):
    """CLIPSIM's arithmetic, shared by the CLIP and the stand-in CLIP (evaluation/extractors/video_clip.py):
    frame_embeddings [N, T, D], text_embeddings [N, D] (unnormalised) -> the mean over all N*T frames
    of cos(frame, its video's caption), a raw cosine in [-1, 1] (not x100)."""
    frame = torch.nn.functional.normalize(torch.as_tensor(frame_embeddings).double(), dim=-1)
    text = torch.nn.functional.normalize(torch.as_tensor(text_embeddings).double(), dim=-1)
    if frame.dim() != 3 or text.shape != (frame.shape[0], frame.shape[2]):
        raise ValueError(f"expected frame embeddings [N, T, D] and text embeddings [N, D], got "
                         f"{tuple(frame.shape)} and {tuple(text.shape)}")
    return float(torch.einsum("ntd,nd->nt", frame, text).mean())
