"""The video engine: text encoders, clips encoded once (pixels, image VAE frame by frame, causal 3-D VAE,
captions), one caption drawn per clip per step, kill-free resume of video runs, guidance on the right
channels, and the video .npz of `ptdit sample`."""

import json
import os

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from ptdit.data.order import StepBatches
from ptdit.data.video_latents import EvalCaptions, VideoLatentDataset, decode_video, encode_video_dataset, load_video_vae
from ptdit.objectives import conditional_guidance
from ptdit.sample import SampleConfig, sample
from ptdit.text_encoder import load_text_encoder
from ptdit.train import TrainConfig, latest_checkpoint, train
from tests.tolerance import assert_close_scaled

TINY = dict(depth=2, hidden_size=32, num_heads=2)
TINY_PT = dict(TINY, compression_ratio=[2, 2, 2])   # 4x4x4 token grid: 2x2x2 windows


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # bit-exact comparisons, no oversubscription of a busy machine
    yield
    torch.set_num_threads(before)


class Clips:
    """UCF101Folder's contract: (video (3, F, H, W) in [-1, 1], label, i), None when unreadable."""
    classes = ["a", "b", "c"]
    num_classes = 3

    def __init__(self, n=7, frames=4, size=8, unreadable=()):
        self.x = torch.rand(n, 3, frames, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1
        self.unreadable = set(unreadable)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return None if i in self.unreadable else (self.x[i], i % 3, i)


class CaptionedClips(Clips):
    """MSRVTTFolder's contract: (video, i), captions(i) in file order, eval_caption(i) the first."""

    def captions(self, i):
        return [f"caption {k} of clip {i}" for k in range(1 + i % 3)]   # differ early: 16 tokens

    def eval_caption(self, i):
        return self.captions(i)[0]

    def __getitem__(self, i):
        return self.x[i], i


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("video")
    encode_video_dataset(Clips(), str(root / "px"), shard_size=3, batch_size=2, device="cpu")
    encode_video_dataset(CaptionedClips(), str(root / "tx"), text_encoder=load_text_encoder("tiny-t5"),
                         shard_size=3, batch_size=2, device="cpu")
    return {"px": str(root / "px"), "tx": str(root / "tx")}


# ------------------------------------------------------------------ text encoders
def test_tiny_t5_is_deterministic_and_masks_padding():
    enc = load_text_encoder("tiny-t5", max_tokens=8)
    captions = ["ab", "a dog runs", "x"]
    feats, mask = enc.encode(captions)
    assert feats.shape == (3, 8, 32) and mask.dtype == torch.bool
    # bytes + </s>, truncated to 8 tokens (7 bytes + </s>)
    assert mask.sum(1).tolist() == [3, 8, 2]
    assert (feats[0, 3:] == 0).all() and (feats[0, :3].abs().sum(-1) > 0).all()
    again, _ = load_text_encoder("tiny-t5", max_tokens=8).encode(captions[::-1])  # new build, other batch
    assert torch.equal(again.flip(0), feats)
    assert not torch.allclose(feats[1, :2], feats[2, :2])


def test_minilm_loads_offline_and_gives_token_features(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    enc = load_text_encoder("minilm", max_tokens=12)
    assert enc.dim == 384
    feats, mask = enc.encode(["a man rides a bike", "a cat sleeps"])
    assert feats.shape == (2, 12, 384)
    assert mask.sum(1).tolist() == [7, 5]            # [CLS] words [SEP]
    assert (feats[0, :7] - feats[1, :7]).abs().max() > 0.1
    alone, _ = enc.encode(["a cat sleeps"])           # padding to max_tokens: batch-independent
    assert_close_scaled(alone[0], feats[1])


def test_t5_from_a_local_folder_and_the_missing_folder_error(tmp_path):
    missing = str(tmp_path / "t5-v1_1-xxl")
    with pytest.raises(FileNotFoundError, match="t5-v1_1-xxl") as err:
        load_text_encoder("t5", missing)
    assert missing in str(err.value) and "google/t5-v1_1-xxl" in str(err.value)
    # A PixArt pipeline folder (text_encoder/ + tokenizer/): a tiny T5 and a stand-in tokenizer.
    from transformers import AutoTokenizer, T5Config, T5EncoderModel

    from ptdit.text_encoder import minilm_folder
    torch.manual_seed(0)
    model = T5EncoderModel(T5Config(vocab_size=30522, d_model=16, d_kv=4, d_ff=32, num_layers=1, num_heads=4))
    model.save_pretrained(tmp_path / "pixart" / "text_encoder")
    AutoTokenizer.from_pretrained(minilm_folder()).save_pretrained(tmp_path / "pixart" / "tokenizer")
    enc = load_text_encoder("t5", str(tmp_path / "pixart"), max_tokens=6)
    feats, mask = enc.encode(["a b c"])
    ids = torch.tensor([[101, 1037, 1038, 1039, 102, 0]])
    with torch.no_grad():
        expected = model.eval()(input_ids=ids, attention_mask=(ids > 0).long()).last_hidden_state
    assert mask[0].tolist() == [True] * 5 + [False]
    torch.testing.assert_close(feats[0, :5], expected[0, :5])


# ------------------------------------------------------------------ encoding
def test_pixel_clips_read_back_exactly_with_flips_and_resume(tmp_path):
    source = Clips(unreadable=[4])
    out = str(tmp_path / "px")
    meta = encode_video_dataset(source, out, shard_size=3, batch_size=2, device="cpu")
    assert (meta["mode"], meta["shape"], meta["num_samples"], meta["skipped_unreadable"]) == ("pixel", [3, 4, 8, 8], 6, 1)
    assert meta["source_index"] == [0, 1, 2, 3, 5, 6] and meta["skipped_source_index"] == [4]
    data = VideoLatentDataset(out)
    flips = set()
    for pos, i in enumerate(meta["source_index"]):
        for seed in range(6):
            x, label = data[(pos, seed)]
            flips.add(torch.equal(x, source.x[i].flip(-1)))
            assert torch.equal(x, source.x[i]) or torch.equal(x, source.x[i].flip(-1))
            assert label == i % 3
    assert flips == {True, False}
    shard = str(tmp_path / "px" / "shard_00001.safetensors")
    before = load_file(shard)
    os.remove(shard)
    os.remove(str(tmp_path / "px" / "meta.json"))
    assert encode_video_dataset(source, out, shard_size=3, batch_size=2, device="cpu") == meta  # resumed
    after = load_file(shard)
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    with pytest.raises(ValueError, match="shard_size: 3 -> 4"):
        encode_video_dataset(source, out, shard_size=4, device="cpu")


def tiny_image_vae(folder):
    import diffusers
    torch.manual_seed(0)
    vae = diffusers.AutoencoderKL(block_out_channels=(8, 16), layers_per_block=1, norm_num_groups=4,
                                  latent_channels=4, down_block_types=("DownEncoderBlock2D",) * 2,
                                  up_block_types=("UpDecoderBlock2D",) * 2)
    vae.save_pretrained(folder)
    return vae.eval()


def test_image_vae_encodes_frame_by_frame(tmp_path):
    vae = tiny_image_vae(str(tmp_path / "vae"))
    source = Clips(n=3)
    meta = encode_video_dataset(source, str(tmp_path / "lat"), vae_path=str(tmp_path / "vae"), shard_size=4,
                                batch_size=2, device="cpu")
    assert (meta["mode"], meta["shape"], meta["scale_factor"]) == ("image", [4, 4, 4, 4], 0.18215)
    shard = load_file(str(tmp_path / "lat" / "shard_00000.safetensors"))
    frame = source.x[2][:, 3]   # clip 2, frame 3
    with torch.no_grad():
        post, post_flip = vae.encode(frame[None]).latent_dist, vae.encode(frame[None].flip(-1)).latent_dist
    assert_close_scaled(shard["video"][2, :, 3], post.mean[0] * 0.18215)
    assert_close_scaled(shard["video_std_flip"][2, :, 3], post_flip.std[0] * 0.18215)
    # decoding goes frame by frame too: the clip's frame 3 decodes as that latent frame alone
    z = shard["video"][:1]
    with torch.no_grad():
        clip = decode_video(z, "image", vae, 0.18215)
        alone = vae.decode(z[:, :, 3] / 0.18215).sample
    assert clip.shape == (1, 4, 8, 8, 3) and clip.dtype == np.uint8
    expected = torch.clamp(127.5 * alone + 128, 0, 255).permute(0, 2, 3, 1).to(torch.uint8).numpy()
    assert np.abs(clip[:, 3].astype(int) - expected.astype(int)).max() <= 1
    # a run on these latents samples through the same VAE (the run records it)
    run = train(run_config(tmp_path / "run", str(tmp_path / "lat"), "Full3D-S/2-Video", TINY, steps=1, ckpt_every=1))
    out = sample(SampleConfig(checkpoint=run, out=str(tmp_path / "s.npz"), num_samples=2, batch_size=2, num_steps=2,
                              cfg_scale=1.5, progress=False))
    with np.load(out, allow_pickle=False) as z:
        assert z["arr_0"].shape == (2, 4, 8, 8, 3) and z["arr_0"].dtype == np.uint8


def test_causal_3d_vae_from_a_local_folder(tmp_path):
    import diffusers
    with pytest.raises(FileNotFoundError, match="CogVideoX"):
        load_video_vae(str(tmp_path / "nowhere"))
    torch.manual_seed(0)
    vae = diffusers.AutoencoderKLCogVideoX(
        down_block_types=("CogVideoXDownBlock3D",) * 2, up_block_types=("CogVideoXUpBlock3D",) * 2,
        block_out_channels=(8, 16), latent_channels=4, layers_per_block=1, norm_num_groups=4)
    vae.save_pretrained(tmp_path / "cog" / "vae")  # a pipeline folder: vae/ inside
    meta = encode_video_dataset(Clips(n=2), str(tmp_path / "lat"), vae_path=str(tmp_path / "cog"),
                                vae_kind="causal3d", device="cpu")
    scale = vae.config.scaling_factor
    assert meta["mode"] == "causal3d" and meta["scale_factor"] == pytest.approx(scale)
    with torch.no_grad():
        direct = vae.eval().encode(Clips(n=2).x).latent_dist.mean * scale
    shard = load_file(str(tmp_path / "lat" / "shard_00000.safetensors"))
    assert list(direct.shape[1:]) == meta["shape"] and direct.shape[2] < 4   # causal: fewer latent frames
    assert_close_scaled(shard["video"], direct)
    assert decode_video(shard["video"], "causal3d", vae, scale).shape == (2, 4, 8, 8, 3)


def test_captions_are_encoded_and_one_is_drawn_per_clip_per_step(folders):
    data = VideoLatentDataset(folders["tx"])
    meta = data.meta
    source = CaptionedClips()
    assert meta["captions_per_clip"] == 3 and meta["text_encoder"]["kind"] == "tiny-t5"
    assert meta["captions"][2] == source.captions(2) and meta["eval_caption_index"] == [0] * 7
    enc = load_text_encoder("tiny-t5")
    shard = load_file(os.path.join(folders["tx"], "shard_00000.safetensors"))
    assert shard["text"].dtype == torch.float16 and shard["caption_count"].tolist() == [1, 2, 3]
    feats, mask = enc.encode(source.captions(2))
    torch.testing.assert_close(shard["text"][2].float(), feats, rtol=1e-3, atol=1e-3)
    assert torch.equal(shard["text_mask"][2], mask)

    def drawn(item):
        """Which caption of the clip an item carries (clip i is stored at position i)."""
        _, (text, text_mask) = data[item]
        candidates, masks = enc.encode(source.captions(item[0]))
        c = int(np.argmin([(text - f).abs().max() for f in candidates]))
        assert torch.equal(text_mask, masks[c])
        return c
    batches = StepBatches(len(data), 4, seed=0, end_step=3)
    assert [drawn(i) for i in batches.batch(2)] == [drawn(i) for i in batches.batch(2)]   # deterministic
    picks = [drawn((2, seed)) for seed in range(30)]
    assert set(picks) == {0, 1, 2}                                 # every caption of clip 2 comes up
    assert {drawn((1, seed)) for seed in range(30)} == {0, 1}      # never clip 1's padding slot
    captions = EvalCaptions(folders["tx"])
    assert captions.strings == [source.eval_caption(i) for i in range(7)]
    text, mask = captions.features([5, 2])
    assert text.shape == (2, 16, 32) and torch.equal(text[1], enc.encode([source.eval_caption(2)])[0][0].half().float())


# ------------------------------------------------------------------ training and sampling
def weights(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def run_config(run_dir, data, model, overrides, **kw):
    return TrainConfig(**{**dict(run_dir=str(run_dir), data=data, model=model, model_overrides=overrides, steps=6,
                                 global_batch_size=4, lr=1e-3, ema_decay=0.9, ckpt_every=3, log_every=1,
                                 progress=False), **kw})


@pytest.mark.parametrize("data,model,overrides", [("px", "Full3D-S/2-Video", TINY), ("tx", "PT-DiT/S-T2V", TINY_PT)])
def test_video_resume_is_bit_exact(tmp_path, folders, data, model, overrides):
    reference = run_config(tmp_path / "ref", folders[data], model, overrides, cond_dropout=0.5)
    ref = weights(train(reference))

    def crash(step, model, ctx):
        if step == 5:
            raise KeyboardInterrupt
    cfg = run_config(tmp_path / "run", folders[data], model, overrides, cond_dropout=0.5)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, on_step=crash)
    assert latest_checkpoint(cfg.run_dir).endswith("0000003.pt")
    resumed = weights(train(cfg))
    for key in ("model", "ema"):
        assert all(torch.equal(resumed[key][k], ref[key][k]) for k in ref[key])
    assert ref["model_overrides"]["video"] is True and ref["model_overrides"]["num_frames"] == 4
    if data == "tx":  # caption dropout reached the learned null caption
        assert ref["model_overrides"]["caption_channels"] == 32 and ref["model_overrides"]["text_tokens"] == 16
        import ptdit
        torch.manual_seed(reference.seed)  # the run's initial weights
        start = ptdit.create_model(model, **ref["model_overrides"]).y_embedder.y_embedding
        assert not torch.allclose(ref["model"]["y_embedder.y_embedding"], start)


def save_grads(out_dir, step, model, ctx):
    if step < 2:
        return  # PixArt's zero-initialised final layer: at step 1 only it has a gradient
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    torch.save(grads, os.path.join(out_dir, f"grads_w{ctx.world_size}_r{ctx.rank}.pt"))


def train_text_step(run_dir, data, out_dir):
    import functools
    train(run_config(run_dir, data, "PT-DiT/S-T2V", TINY_PT, steps=2, ckpt_every=2, cond_dropout=0.5),
          on_step=functools.partial(save_grads, out_dir))


def test_ddp_two_processes_equal_one_for_a_text_model(tmp_path, folders):
    """Caption dropout swaps the null caption in inside DDP's forward: its gradient is all-reduced too."""
    from tests.multiprocess import run_processes
    run_processes(1, train_text_step, str(tmp_path / "one"), folders["tx"], str(tmp_path))
    run_processes(2, train_text_step, str(tmp_path / "two"), folders["tx"], str(tmp_path))
    one = torch.load(tmp_path / "grads_w1_r0.pt", weights_only=True)
    assert one["y_embedder.y_embedding"].abs().sum() > 0     # a dropped caption trained the null caption
    for rank in range(2):
        two = torch.load(tmp_path / f"grads_w2_r{rank}.pt", weights_only=True)
        assert one.keys() == two.keys()
        for name in one:
            assert_close_scaled(two[name], one[name], what=f"gradient of {name}")


def test_class_data_with_a_text_model_is_an_error(tmp_path, folders):
    with pytest.raises(ValueError, match="text-conditional but the data"):
        train(run_config(tmp_path / "run", folders["px"], "PT-DiT/S-T2V", TINY_PT))


def test_guidance_mixes_every_predicted_channel_against_the_null_caption(rand_model):
    import ptdit
    model = rand_model(ptdit.create_model("PT-DiT/S-T2V", **TINY_PT, input_size=8, num_frames=4, in_channels=3,
                                          caption_channels=32, text_tokens=16)).eval()
    x, t = torch.randn(2, 3, 4, 8, 8), torch.tensor([10.0, 500.0])
    text, mask = load_text_encoder("tiny-t5").encode(["a cat", "two dogs play"])
    fn, z, kwargs = conditional_guidance(model, channels=3)(x, (text, mask), 4.0)
    with torch.no_grad():
        out = fn(z, torch.cat([t, t]), **kwargs)
        cond = model(x, t, text, mask=mask)
        uncond = model(x, t, None)   # the learned null caption
    assert z.shape[0] == 4 and out.shape == (4, 6, 4, 8, 8)
    assert_close_scaled(out[:2, :3], uncond[:, :3] + 4.0 * (cond[:, :3] - uncond[:, :3]))
    torch.testing.assert_close(out[:2, 3:], cond[:, 3:])        # learned sigma: each half its own (DiT)
    torch.testing.assert_close(out[2:, :3], out[:2, :3])
    torch.testing.assert_close(out[2:, 3:], uncond[:, 3:])


def test_sample_writes_the_video_npz(tmp_path, folders):
    class_run = train(run_config(tmp_path / "c", folders["px"], "Full3D-S/2-Video", TINY, steps=2))
    text_run = train(run_config(tmp_path / "t", folders["tx"], "PT-DiT/S-T2V", TINY_PT, steps=2))
    common = dict(num_samples=9, batch_size=4, num_steps=3, cfg_scale=2.0, progress=False)
    out = sample(SampleConfig(checkpoint=class_run, out=str(tmp_path / "c.npz"), labels="balanced", **common))
    with np.load(out, allow_pickle=False) as z:
        assert sorted(z.files) == ["arr_0", "labels"]
        assert z["arr_0"].shape == (9, 4, 8, 8, 3) and z["arr_0"].dtype == np.uint8
        assert z["labels"].dtype == np.int64 and z["labels"].tolist() == [i % 3 for i in range(9)]
    with pytest.raises(ValueError, match="--captions"):
        sample(SampleConfig(checkpoint=text_run, out=str(tmp_path / "x.npz"), **common))
    out = sample(SampleConfig(checkpoint=text_run, out=str(tmp_path / "t.npz"), captions=folders["tx"], **common))
    with np.load(out, allow_pickle=False) as z:
        assert sorted(z.files) == ["arr_0", "captions"] and z["arr_0"].shape == (9, 4, 8, 8, 3)
        assert z["captions"].dtype.kind == "U"
        assert z["captions"].tolist() == [f"caption 0 of clip {i % 7}" for i in range(9)]   # cycles the clips
        first = z["arr_0"]
    # the same seed gives the same clips
    again = sample(SampleConfig(checkpoint=text_run, out=str(tmp_path / "t2.npz"), captions=folders["tx"], **common))
    assert np.array_equal(np.load(again)["arr_0"], first)
    with open(os.path.join(folders["tx"], "meta.json")) as f:
        assert json.load(f)["format"] == "ptdit-video-latents-v1"


def test_encode_video_cli_on_the_standin_layouts(tmp_path):
    from ptdit.cli import main
    from ptdit.data.msrvtt import MSRVTTFolder
    from ptdit.data.ucf101 import UCF101Folder
    from ptdit.data.video_standin import make_msrvtt_standin, make_ucf101_standin
    make_ucf101_standin(str(tmp_path / "ucf"), groups=4, clips_per_group=1)
    make_msrvtt_standin(str(tmp_path / "msr"), train_per_source=1, validate_per_source=0, test_per_source=1)
    size = ["--num-frames", "4", "--image-size", "8"]
    assert main(["encode-video", "ucf101", str(tmp_path / "ucf"), str(tmp_path / "u"), "--split", "test", *size]) == 0
    assert main(["encode-video", "msrvtt", str(tmp_path / "msr"), str(tmp_path / "m"), "--split", "test",
                 "--text-encoder", "tiny-t5", *size]) == 0
    ucf = UCF101Folder(str(tmp_path / "ucf"), "test", num_frames=4, image_size=8)
    data = VideoLatentDataset(str(tmp_path / "u"))
    assert data.meta["classes"] == ucf.classes and data.labels.tolist() == ucf.labels.tolist()
    x, _ = data[(0, 1)]
    assert torch.equal(x, ucf[0][0]) or torch.equal(x, ucf[0][0].flip(-1))
    msr = MSRVTTFolder(str(tmp_path / "msr"), "test", num_frames=4, image_size=8)
    assert EvalCaptions(str(tmp_path / "m")).strings == [msr.eval_caption(i) for i in range(len(msr))]
    with open(os.path.join(tmp_path, "m", "meta.json")) as f:
        meta = json.load(f)
    assert meta["captions"] == [msr.captions(i) for i in range(len(msr))] and meta["split"] == "test"
