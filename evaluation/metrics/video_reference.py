"""Video arrays in the sample format, read and written: the reference clips and the samples.

Format (the video contract; `ptdit sample` writes it for a video run): an .npz with
- arr_0    uint8 [N, F, H, W, 3] (RGB, frames in order),
- labels   int64 [N]                  class-conditional (UCF-101) models, or
- captions unicode [N] ('<U...')      text-conditional (MSR-VTT) models, loads with allow_pickle=False.
A reference .npz is the same thing made from a dataset split (make_video_reference): the real clips the
samples are compared with; a class-labelled one also carries classes, unicode [C], the class names by
label (UCF-101's classInd order), so that per-class results can name them. The data classes
(ptdit/data/ucf101.py UCF101Folder, msrvtt.py MSRVTTFolder) give (video float [3, F, H, W] in [-1, 1],
label, i) or (video, i) with .eval_caption(i) / .captions(i).
"""

import numpy as np
import torch
from tqdm.auto import tqdm

from evaluation.metrics.npz_images import npz_keys
from ptdit.atomic import atomic_write

FORMAT_HINT = ("np.savez(path, arr_0=uint8 videos [N, F, H, W, 3], labels=int64 [N]) or ..., "
               "captions=np.array(list_of_str)) (the `ptdit sample` format for video runs)")


def to_uint8_clip(video):
    """float [3, F, H, W] in [-1, 1] -> uint8 [F, H, W, 3], rounded as the samplers do ((x + 1) * 127.5)."""
    video = torch.as_tensor(video)
    if video.dim() != 4 or video.shape[0] != 3:
        raise ValueError(f"expected a video tensor [3, F, H, W] in [-1, 1], got {tuple(video.shape)}")
    return ((video.float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 3, 0).numpy()


def dataset_clips(dataset, max_clips=None, all_captions=False, order=None):
    """Every readable clip of a UCF101Folder / MSRVTTFolder (first max_clips of `order`, default the
    dataset's order) as (uint8 [N, F, H, W, 3], labels int64 [N] or None, captions or None). Captions
    are each clip's fixed evaluation caption, or with all_captions=True the list of all its captions."""
    clips, labels, captions = [], [], []
    order = range(len(dataset)) if order is None else order
    total = len(order) if max_clips is None else min(len(order), max_clips)
    for i in tqdm(order[:total], desc="clips", unit="clip"):
        item = dataset[i]
        if item is None:   # an unreadable video the dataset was told to skip (it counts them)
            continue
        clips.append(to_uint8_clip(item[0]))
        if len(item) == 3:
            labels.append(int(item[1]))
        else:
            index = int(item[-1])
            captions.append(dataset.captions(index) if all_captions else dataset.eval_caption(index))
    if not clips:
        raise ValueError(f"dataset {type(dataset).__name__} gave no readable clips")
    return np.stack(clips), (np.asarray(labels, dtype=np.int64) if labels else None), (captions or None)


def write_video_npz(path, videos, labels=None, captions=None, classes=None):
    """An .npz in the sample format, written atomically; classes: the names of the labels, optional."""
    data = {"arr_0": np.ascontiguousarray(videos)}
    if labels is not None:
        data["labels"] = np.asarray(labels, dtype=np.int64)
    if classes is not None:
        data["classes"] = np.asarray([str(c) for c in classes])
    if captions is not None:
        data["captions"] = np.asarray([str(c) for c in captions])   # '<U..', no pickling needed

    def write(tmp):
        with open(tmp, "wb") as f:   # a file object: np.savez would append .npz to a path
            np.savez(f, **data)

    atomic_write(str(path), write)


def reference_order(count, seed=0):
    """The order reference clips are written in: a fixed random permutation, so that every prefix
    (max_clips here, evaluate-video's first num_clips) is a uniform sample of the split. Split lists
    are sorted by class (UCF-101's testlist), where a prefix would hold only the first classes;
    StyleGAN-V likewise draws its real clips at random."""
    return np.random.default_rng(seed).permutation(count)


def make_video_reference(dataset, out_npz, max_clips=None, seed=0):
    """Write a dataset split as a reference .npz (arr_0 + labels or captions) in reference_order;
    returns the clip count."""
    videos, labels, captions = dataset_clips(dataset, max_clips, order=reference_order(len(dataset), seed))
    classes = getattr(dataset, "classes", None) if labels is not None else None   # UCF101Folder.classes
    write_video_npz(out_npz, videos, labels, captions, classes)
    return len(videos)


def check_videos(shape, dtype, where):
    shape = tuple(shape)
    if np.dtype(dtype) != np.uint8:
        raise ValueError(f"{where}: dtype {np.dtype(dtype)}, expected uint8 videos; convert floats in [-1, 1] "
                         f"with np.clip(np.round((x + 1) * 127.5), 0, 255).astype(np.uint8)")
    if len(shape) != 5 or shape[-1] != 3:
        hint = "; it looks like [N, 3, F, H, W]: use x.transpose(0, 2, 3, 4, 1)" if len(shape) == 5 and shape[1] == 3 else ""
        raise ValueError(f"{where}: shape {shape}, expected videos [N, F, H, W, 3]{hint}; save with {FORMAT_HINT}")
    if shape[0] == 0:
        raise ValueError(f"{where}: holds no videos")


def read_conditions(path):
    """(labels or None, captions or None) of a video .npz, read without unpickling."""
    keys = npz_keys(path)
    labels = captions = None
    with np.load(path, allow_pickle=False) as f:
        if "labels" in keys:
            labels = f["labels"]
        if "captions" in keys:
            captions = f["captions"]
            if captions.dtype.kind != "U":
                raise ValueError(f"{path}[captions]: dtype {captions.dtype}, expected a unicode array; save "
                                 f"captions=np.array(list_of_str)")
            captions = [str(c) for c in captions]
    return labels, captions


def read_class_names(path):
    """The class names of a reference .npz by label, or None where it has none (older references too)."""
    if "classes" not in npz_keys(path):
        return None
    with np.load(path, allow_pickle=False) as f:
        return [str(c) for c in f["classes"]]


def video_batches(arr, num_clips, batch_size):
    """The first num_clips rows of an open video array, in batches (streamed from the file)."""
    seen = 0
    for batch in arr.batches(batch_size):
        if seen >= num_clips:
            return
        batch = batch[: num_clips - seen]
        seen += len(batch)
        yield batch
