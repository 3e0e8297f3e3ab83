"""UCF-101 in its on-disk layout, as clips of num_frames frames with a class label from classInd.txt.

    <root>/UCF-101/<Class>/v_<Class>_gXX_cYY.avi        (the UCF101.rar archive, 13,320 clips)
    <root>/ucfTrainTestlist/classInd.txt                "1 ApplyEyeMakeup" (ids 1..101)
    <root>/ucfTrainTestlist/trainlist0N.txt             "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1"
    <root>/ucfTrainTestlist/testlist0N.txt              "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi"
(the UCF101TrainTestSplits-RecognitionTask.zip; N = fold 1..3). The label is classInd id - 1, looked up
from the class folder of each list entry; a trainlist label that disagrees with classInd, or a folder
not in classInd, stops with an error naming the list file and line. The file-name class is compared
case-insensitively: the official lists write HandstandPushups/v_HandStandPushups_g01_c01.avi.

Clip position (ptdit/data/video_io.py clip_start): num_frames frames, frame_stride apart. By default the
test split takes the centre clip (deterministic, for evaluation) and the train split a start drawn
uniformly from numpy's default_rng((seed, index)): a different position per video, the same one every
time the item is read (latents are encoded once, so a training run sees one clip per video). Pass
clip_position="center" | "random" | "first" to override (an evaluation protocol may fix its own).
"""

import logging
import os

import numpy as np

from ptdit.data.video_io import CLIP_POSITIONS, ClipFolder

log = logging.getLogger(__name__)

LAYOUT = ("<root>/UCF-101/<Class>/v_<Class>_gXX_cYY.avi and <root>/ucfTrainTestlist/{classInd.txt, "
          "trainlist0N.txt, testlist0N.txt} (make a stand-in with `ptdit prepare-video-standin ucf101 OUT`)")
SPLITS = ("train", "test")


def _require(path, what):
    if not os.path.exists(path):
        raise FileNotFoundError(f"UCF-101 {what} '{path}' does not exist; expected the layout {LAYOUT}")


def read_class_index(path):
    """Class names in id order from classInd.txt ("1 ApplyEyeMakeup"); ids must be 1..K in order."""
    _require(path, "class index")
    names = []
    with open(path) as f:
        for line_no, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2 or not parts[0].isdigit():
                raise ValueError(f"{path}:{line_no}: expected '<id> <ClassName>', got {line.strip()!r}")
            if int(parts[0]) != len(names) + 1:
                raise ValueError(f"{path}:{line_no}: class id {parts[0]} out of order; ids run 1, 2, ... in "
                                 f"the file (expected {len(names) + 1})")
            names.append(parts[1])
    if not names:
        raise ValueError(f"class index '{path}' lists no classes")
    return names


def read_split_list(path, classes):
    """(relative path, label 0-based) of every line of a train/test list, labels from classInd."""
    _require(path, "split list")
    index = {name: i for i, name in enumerate(classes)}
    items = []
    with open(path) as f:
        for line_no, line in enumerate(f, 1):
            parts = line.split()  # also strips the lists' Windows line endings
            if not parts:
                continue
            rel = parts[0]
            folder, _, name = rel.replace("\\", "/").partition("/")
            where = f"{path}:{line_no} ({rel})"
            if folder not in index:
                raise ValueError(f"{where}: class folder '{folder}' is not in classInd.txt")
            if not name.lower().startswith(f"v_{folder.lower()}_"):
                raise ValueError(f"{where}: file name does not start with v_{folder}_ as UCF-101 names do")
            label = index[folder]
            if len(parts) > 1 and not parts[1].isdigit():
                raise ValueError(f"{where}: expected '<Class>/<file>.avi <id>', got {line.strip()!r}")
            if len(parts) > 1 and int(parts[1]) != label + 1:
                raise ValueError(f"{where}: list label {parts[1]} disagrees with classInd.txt, which gives "
                                 f"'{folder}' id {label + 1}")
            items.append((rel, label))
    if not items:
        raise ValueError(f"split list '{path}' lists no videos")
    return items


class UCF101Folder(ClipFolder):
    """One split of one fold as (video float32 (3, F, S, S) in [-1, 1], label, index), or None for an
    unreadable video when skip_unreadable (the path is appended to .skipped; the caller counts Nones,
    as a DataLoader worker's .skipped does not reach the main process)."""

    def __init__(self, root, split="train", fold=1, num_frames=16, frame_stride=1, image_size=32,
                 skip_unreadable=False, clip_position=None, seed=0, backend="pyav"):
        if split not in SPLITS:
            raise ValueError(f"UCF-101 split must be one of {', '.join(SPLITS)}, got '{split}'")
        if fold not in (1, 2, 3):
            raise ValueError(f"UCF-101 fold must be 1, 2 or 3, got {fold}")
        clip_position = clip_position or ("random" if split == "train" else "center")
        if clip_position not in CLIP_POSITIONS:
            raise ValueError(f"unknown clip_position '{clip_position}'; use one of {', '.join(CLIP_POSITIONS)}")
        self.root, self.split, self.fold = root, split, fold
        self.num_frames, self.frame_stride, self.image_size = num_frames, frame_stride, image_size
        self.skip_unreadable, self.clip_position, self.seed, self.backend = skip_unreadable, clip_position, seed, backend
        lists = os.path.join(root, "ucfTrainTestlist")
        self.video_dir = os.path.join(root, "UCF-101")
        _require(lists, "split folder")
        _require(self.video_dir, "video folder")
        self.classes = read_class_index(os.path.join(lists, "classInd.txt"))
        self.list_file = os.path.join(lists, f"{split}list0{fold}.txt")
        self.items = [(os.path.join(self.video_dir, rel), label)
                      for rel, label in read_split_list(self.list_file, self.classes)]
        missing = [path for path, _ in self.items if not os.path.isfile(path)]
        if missing:  # a layout problem, never skipped: the lists and the videos do not belong together
            raise FileNotFoundError(f"{len(missing)} videos listed in {self.list_file} are missing, first "
                                    f"'{missing[0]}'; expected the layout {LAYOUT}")
        self.skipped = []

    @property
    def num_classes(self):
        return len(self.classes)

    @property
    def labels(self):
        return np.array([label for _, label in self.items], dtype=np.int64)

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        path, label = self.items[index]
        video = self.read_item_clip(path, index)
        return None if video is None else (video, label, index)
