"""Video files: decode clips (PyAV, or decord when installed), pick the clip position, resize + crop.

- Decoding uses PyAV (`av`, FFmpeg bundled in the wheel; reads UCF-101's MPEG-4 .avi and MSR-VTT's
  H.264 .mp4). decord is an optional backend, used only when asked for and importable (its one wheel is
  x86_64 Linux, FFmpeg 4.1, unmaintained since 2021; see shared/reference/ecosystem.md).
- Only the frames a clip needs are converted to RGB, and decoding stops after the last of them. We do
  not seek: frame-accurate seeking by PTS is unreliable in AVI/MPEG-4 part 2 (no per-frame timestamps,
  B-frames), and UCF-101 / MSR-VTT clips are short (7 s / 10-30 s), so decoding from the start is cheap.
- An unreadable, empty or too-short video raises VideoReadError naming the file and the reason; no
  code path pads a clip with black or repeated frames.
- resize_center_crop scales the shorter side to the target and crops the centre, for all frames of a
  clip at once (bilinear with antialias, as torchvision's Resize on tensors).
"""

import logging
import os

import numpy as np
import torch
import torch.nn.functional as F

from ptdit.atomic import atomic_write

log = logging.getLogger(__name__)

BACKENDS = ("pyav", "decord")
# The encoder each container gets by default: UCF-101 ships MPEG-4 part 2 (XviD) in .avi, MSR-VTT H.264
# in .mp4; PyAV 18's wheel has both encoders (mpeg4, libx264).
DEFAULT_CODECS = {".avi": ("avi", "mpeg4"), ".mp4": ("mp4", "libx264")}
CLIP_POSITIONS = ("center", "random", "first")


class VideoReadError(ValueError):
    """A video that cannot give the frames asked for: missing video stream, corrupt, empty, too short."""

    def __init__(self, path, reason):
        self.path, self.reason = path, reason
        super().__init__(f"cannot read video '{path}': {reason}. Replace or delete the file, or allow "
                         f"skipping (skip_unreadable=True / --skip-unreadable)")


def _check_backend(backend):
    if backend not in BACKENDS:
        raise ValueError(f"unknown video backend '{backend}'; use one of {', '.join(BACKENDS)}")
    if backend == "decord":
        try:
            import decord  # noqa: F401
        except ImportError:
            raise ModuleNotFoundError("video backend 'decord' was asked for but decord is not installed; "
                                      "pip install decord==0.6.0 (x86_64 Linux wheel only) or use "
                                      "backend='pyav'") from None


def _open_pyav(path):
    import av

    if not os.path.isfile(path):
        raise FileNotFoundError(f"video file '{path}' does not exist")
    if os.path.getsize(path) == 0:
        raise VideoReadError(path, "the file is empty (0 bytes)")
    try:
        container = av.open(path)
    except av.error.FFmpegError as err:
        raise VideoReadError(path, f"FFmpeg cannot open it ({type(err).__name__}: {err})") from err
    if not container.streams.video:
        container.close()
        raise VideoReadError(path, "it has no video stream")
    return container


def count_frames(path, backend="pyav"):
    """Number of frames: the container's count when it has one, else the video packets counted by
    demuxing (no decoding)."""
    _check_backend(backend)
    if backend == "decord":
        return len(_decord_reader(path))
    with _open_pyav(path) as container:
        stream = container.streams.video[0]
        if stream.frames > 0:
            return int(stream.frames)
        try:
            return sum(1 for packet in container.demux(stream) if packet.size > 0)
        except Exception as err:  # av.error.* on broken containers
            raise VideoReadError(path, f"demuxing failed ({type(err).__name__}: {err})") from err


def _decord_reader(path):
    import decord

    if not os.path.isfile(path):
        raise FileNotFoundError(f"video file '{path}' does not exist")
    if os.path.getsize(path) == 0:
        raise VideoReadError(path, "the file is empty (0 bytes)")
    try:
        return decord.VideoReader(path, ctx=decord.cpu(0))
    except Exception as err:  # decord raises its own DECORDError
        raise VideoReadError(path, f"decord cannot open it ({type(err).__name__}: {err})") from err


def frame_indices(start, num_frames, stride):
    return start + stride * np.arange(num_frames)


def read_video_frames(path, backend="pyav", start=0, num_frames=None, stride=1):
    """uint8 frames (T, H, W, 3) RGB: frames start, start + stride, ... (num_frames of them, or all
    to the end when None). Raises VideoReadError (names the file) if the video cannot be decoded,
    decodes to no frames, or ends before the last frame asked for."""
    _check_backend(backend)
    if start < 0 or stride < 1 or (num_frames is not None and num_frames < 1):
        raise ValueError(f"bad clip request start={start} num_frames={num_frames} stride={stride} for '{path}'")
    if backend == "decord":
        return _read_decord(path, start, num_frames, stride)
    return _read_pyav(path, start, num_frames, stride)


def _read_pyav(path, start, num_frames, stride):
    last = None if num_frames is None else start + stride * (num_frames - 1)
    frames, decoded = [], 0
    with _open_pyav(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            # The loop runs over the decoder's output; only the frames taken are converted to RGB.
            for frame in container.decode(stream):
                index = decoded
                decoded += 1
                if index >= start and (index - start) % stride == 0:
                    frames.append(frame.to_ndarray(format="rgb24"))
                if last is not None and index >= last:
                    break  # stop early: nothing after the clip is decoded
        except Exception as err:  # av.error.InvalidDataError and friends on corrupt streams
            raise VideoReadError(path, f"decoding failed after {decoded} frames "
                                       f"({type(err).__name__}: {err})") from err
    if decoded == 0:
        raise VideoReadError(path, "it decodes to no frames")
    if last is not None and decoded <= last:
        raise VideoReadError(path, f"it has {decoded} frames, too short for {num_frames} frames at stride "
                                   f"{stride} from frame {start} (needs {last + 1})")
    if not frames:
        raise VideoReadError(path, f"it has {decoded} frames, none at or after frame {start}")
    return np.stack(frames)


def _read_decord(path, start, num_frames, stride):
    reader = _decord_reader(path)
    total = len(reader)
    if total == 0:
        raise VideoReadError(path, "it decodes to no frames")
    count = len(range(start, total, stride)) if num_frames is None else num_frames
    indices = frame_indices(start, count, stride)
    if count == 0 or indices[-1] >= total:
        raise VideoReadError(path, f"it has {total} frames, too short for {num_frames} frames at stride "
                                   f"{stride} from frame {start}")
    try:
        return reader.get_batch(indices.tolist()).asnumpy()
    except Exception as err:
        raise VideoReadError(path, f"decord failed to decode ({type(err).__name__}: {err})") from err


def clip_start(total_frames, num_frames, stride, position="center", rng=None):
    """First frame of a clip of num_frames at stride inside a video of total_frames.

    center: the middle clip (evaluation; deterministic); first: frame 0; random: uniform over the valid
    starts from the given numpy Generator (training; the caller seeds it). A video shorter than the
    clip's span returns -1 (the reader then raises VideoReadError naming the file).
    """
    span = stride * (num_frames - 1) + 1
    free = total_frames - span
    if free < 0:
        return -1
    if position == "center":
        return free // 2
    if position == "first":
        return 0
    if position == "random":
        if rng is None:
            raise ValueError("clip position 'random' needs a seeded numpy Generator (rng)")
        return int(rng.integers(0, free + 1))
    raise ValueError(f"unknown clip position '{position}'; use one of {', '.join(CLIP_POSITIONS)}")


def read_clip(path, num_frames, stride=1, position="center", rng=None, backend="pyav"):
    """uint8 (num_frames, H, W, 3): one clip, positioned by clip_start; VideoReadError if too short."""
    total = count_frames(path, backend)
    start = clip_start(total, num_frames, stride, position, rng)
    if start < 0:
        raise VideoReadError(path, f"it has {total} frames, fewer than the {stride * (num_frames - 1) + 1} "
                                   f"that {num_frames} frames at stride {stride} span")
    return read_video_frames(path, backend, start, num_frames, stride)


def resize_center_crop(frames, image_size):
    """uint8 (T, H, W, 3) -> float32 tensor (3, T, S, S) in [-1, 1]: shorter side to S, centre crop.

    All frames go through one interpolate call (frames are the batch dimension)."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()  # (T, 3, H, W)
    height, width = x.shape[-2:]
    scale = image_size / min(height, width)
    new_h, new_w = max(image_size, round(height * scale)), max(image_size, round(width * scale))
    if (new_h, new_w) != (height, width):
        x = F.interpolate(x, size=(new_h, new_w), mode="bilinear", antialias=True, align_corners=False)
    top, left = (new_h - image_size) // 2, (new_w - image_size) // 2
    x = x[:, :, top: top + image_size, left: left + image_size]
    # ToTensor + Normalize(0.5, 0.5) as for images (DiT train.py); clamp: interpolation rounding.
    return x.div(127.5).sub(1.0).clamp(-1.0, 1.0).permute(1, 0, 2, 3).contiguous()


class ClipFolder:
    """What UCF101Folder and MSRVTTFolder share: reading item `index`'s clip from `path` with the
    folder's settings (num_frames, frame_stride, clip_position, seed, image_size, backend,
    skip_unreadable). A random clip start is drawn from (seed, index), so an item is the same every
    time it is read; an unreadable video is re-raised, or logged, recorded in .skipped and None."""

    def read_item_clip(self, path, index):
        rng = np.random.default_rng((self.seed, index)) if self.clip_position == "random" else None
        try:
            frames = read_clip(path, self.num_frames, self.frame_stride, self.clip_position, rng, self.backend)
        except VideoReadError as err:
            if not self.skip_unreadable:
                raise
            log.warning("skipping %s", err)
            self.skipped.append(path)
            return None
        return resize_center_crop(frames, self.image_size)


def write_video(path, frames, fps=25, codec=None, quality=None):
    """Write uint8 RGB frames (T, H, W, 3) (H, W even) as a video, atomically.

    codec defaults by extension: .avi -> mpeg4 (UCF-101's MPEG-4 part 2), .mp4 -> libx264 (MSR-VTT's
    H.264). quality: mpeg4 bit rate in bit/s (default 2 Mbit/s, near lossless at stand-in sizes) or
    x264 CRF (default 12; 0 is lossless). One encoder thread. mpeg4 then gives the same bytes for the same
    frames; lossy x264 does not (PyAV 18's libx264, measured: 10 of 20 CRF-12 encodes of one stand-in clip
    beside a second encoding process came out different, decoding up to 16 grey levels apart), while CRF 0
    decodes to the same frames every time, whatever the encoder decides.
    """
    import av

    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"write_video('{path}') needs uint8 frames (T, H, W, 3), got {frames.dtype} {frames.shape}")
    if frames.shape[1] % 2 or frames.shape[2] % 2:
        raise ValueError(f"write_video('{path}'): height and width must be even for yuv420p, got {frames.shape[1:3]}")
    ext = os.path.splitext(path)[1].lower()
    if ext not in DEFAULT_CODECS:
        raise ValueError(f"write_video('{path}'): extension must be one of {', '.join(DEFAULT_CODECS)}")
    container_format, default_codec = DEFAULT_CODECS[ext]
    codec = codec or default_codec

    def write(tmp):
        with av.open(tmp, "w", format=container_format) as container:
            stream = container.add_stream(codec, rate=fps)
            stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
            stream.codec_context.thread_count = 1
            if codec == "libx264":
                stream.options = {"crf": str(12 if quality is None else quality), "preset": "medium"}
            else:
                stream.bit_rate = int(2_000_000 if quality is None else quality)
            for frame in frames:  # the encoder takes one frame at a time
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():  # flush delayed frames
                container.mux(packet)

    atomic_write(path, write)
