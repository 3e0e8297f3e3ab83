"""MSR-VTT in its on-disk layout: videoN.mp4 files and the caption annotation JSON.

Videos are found in any of these folders, first match wins (the archives in circulation differ):
    <root>/videos/all/videoN.mp4     (MSRVTT.zip as redistributed with CLIP4Clip / ClipBERT)
    <root>/videos/videoN.mp4
    <root>/TrainValVideo/videoN.mp4, <root>/TestVideo/videoN.mp4   (the original 2016 release)
Annotations, in <root> or <root>/annotation: the original train_val_videodatainfo.json and
test_videodatainfo.json (both read when present), or the merged MSRVTT_data.json. Each has
    {"videos": [{"video_id": "video0", "split": "train" | "validate" | "test", ...}, ...],
     "sentences": [{"video_id": "video0", "caption": "...", "sen_id": 0}, ...]}
Splits (the standard 6,513 / 497 / 2,990 of the 10,000 clips): split="train" is "train", plus
"validate" with include_validate=True; split="test" is "test". Every clip has 20 captions in the real
data; captions(i) gives all of them in file order, eval_caption(i) the first (fixed, for evaluation).
Training draws one caption per clip per step from captions(i) (ptdit's encoded video dataset).

The clip position inside a video follows ptdit/data/ucf101.py: centre clip for test, a start seeded
by (seed, index) for train, clip_position to override.
"""

import json
import logging
import os

from ptdit.data.video_io import CLIP_POSITIONS, ClipFolder

log = logging.getLogger(__name__)

VIDEO_FOLDERS = (os.path.join("videos", "all"), "videos", "TrainValVideo", "TestVideo")
ANNOTATION_FILES = ("train_val_videodatainfo.json", "test_videodatainfo.json")
MERGED_ANNOTATION = "MSRVTT_data.json"
LAYOUT = ("<root>/videos/all/videoN.mp4 (or <root>/videos/videoN.mp4) and <root>/train_val_videodatainfo.json "
          "+ test_videodatainfo.json (or MSRVTT_data.json) (make a stand-in with `ptdit prepare-video-standin "
          "msrvtt OUT`)")
SPLITS = ("train", "test")


def find_annotations(root):
    """The annotation JSON files of root: the original pair (those present) or the merged file."""
    for folder in (root, os.path.join(root, "annotation")):
        official = [os.path.join(folder, n) for n in ANNOTATION_FILES if os.path.isfile(os.path.join(folder, n))]
        if official:
            return official
        if os.path.isfile(os.path.join(folder, MERGED_ANNOTATION)):
            return [os.path.join(folder, MERGED_ANNOTATION)]
    raise FileNotFoundError(f"no MSR-VTT annotation JSON ({', '.join(ANNOTATION_FILES)} or {MERGED_ANNOTATION}) "
                            f"in '{root}' or '{os.path.join(root, 'annotation')}'; expected the layout {LAYOUT}")


def read_annotations(paths):
    """(videos: list of (video_id, split) in file order, captions: {video_id: [caption, ...]})."""
    videos, captions = [], {}
    for path in paths:
        with open(path) as f:
            try:
                data = json.load(f)
            except json.JSONDecodeError as err:
                raise ValueError(f"annotation '{path}' is not valid JSON: {err}") from err
        for key in ("videos", "sentences"):
            if key not in data:
                raise ValueError(f"annotation '{path}' has no '{key}' list; MSR-VTT's JSON has 'videos' "
                                 f"(video_id, split) and 'sentences' (video_id, caption)")
        for k, video in enumerate(data["videos"]):
            if "video_id" not in video or "split" not in video:
                raise ValueError(f"annotation '{path}': videos[{k}] lacks 'video_id' or 'split': {video}")
            videos.append((video["video_id"], video["split"]))
        for k, sentence in enumerate(data["sentences"]):
            if "video_id" not in sentence or "caption" not in sentence:
                raise ValueError(f"annotation '{path}': sentences[{k}] lacks 'video_id' or 'caption': {sentence}")
            captions.setdefault(sentence["video_id"], []).append(sentence["caption"])
    return videos, captions


def find_video(root, video_id):
    for folder in VIDEO_FOLDERS:
        path = os.path.join(root, folder, f"{video_id}.mp4")
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(f"video '{video_id}.mp4' is in the annotations but not in any of "
                            f"{', '.join(os.path.join(root, d) for d in VIDEO_FOLDERS)}; expected the layout {LAYOUT}")


class MSRVTTFolder(ClipFolder):
    """One split as (video float32 (3, F, S, S) in [-1, 1], index), or None for an unreadable video
    when skip_unreadable (its path is appended to .skipped)."""

    def __init__(self, root, split="train", num_frames=16, frame_stride=1, image_size=32, skip_unreadable=False,
                 include_validate=False, clip_position=None, seed=0, backend="pyav"):
        if split not in SPLITS:
            raise ValueError(f"MSR-VTT split must be one of {', '.join(SPLITS)}, got '{split}'")
        clip_position = clip_position or ("random" if split == "train" else "center")
        if clip_position not in CLIP_POSITIONS:
            raise ValueError(f"unknown clip_position '{clip_position}'; use one of {', '.join(CLIP_POSITIONS)}")
        self.root, self.split = root, split
        self.num_frames, self.frame_stride, self.image_size = num_frames, frame_stride, image_size
        self.skip_unreadable, self.clip_position, self.seed, self.backend = skip_unreadable, clip_position, seed, backend
        if not os.path.isdir(root):
            raise FileNotFoundError(f"MSR-VTT root '{root}' does not exist; expected the layout {LAYOUT}")
        self.annotation_files = find_annotations(root)
        videos, captions = read_annotations(self.annotation_files)
        wanted = {"train": ("train", "validate") if include_validate else ("train",), "test": ("test",)}[split]
        self.video_ids = [video_id for video_id, video_split in videos if video_split in wanted]
        if not self.video_ids:
            raise ValueError(f"no videos with split {' or '.join(wanted)} in {', '.join(self.annotation_files)}")
        no_caption = [v for v in self.video_ids if not captions.get(v)]
        if no_caption:
            raise ValueError(f"{len(no_caption)} {split} videos have no caption in {', '.join(self.annotation_files)}, "
                             f"first '{no_caption[0]}'")
        self._captions = [captions[v] for v in self.video_ids]
        self.paths = [find_video(root, v) for v in self.video_ids]
        self.skipped = []

    def __len__(self):
        return len(self.video_ids)

    def captions(self, index):
        """All captions of clip index, in file order (20 in MSR-VTT)."""
        return list(self._captions[index])

    def eval_caption(self, index):
        """The fixed caption used to sample clip index for evaluation: its first."""
        return self._captions[index][0]

    def __getitem__(self, index):
        video = self.read_item_clip(self.paths[index], index)
        return None if video is None else (video, index)
