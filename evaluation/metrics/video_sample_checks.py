"""What a reader checks first in video samples (issue 17), computed beside FVD / IS / FID / CLIPSIM:

- class_acc: how often the stand-in's 3-D CNN (or the real C3D, whichever scores IS; else the small-c3d
  that computes FVD) names the class the sample was generated for (evaluation/metrics/class_accuracy.py).
  UCF-101: the conditioning label. MSR-VTT: the caption's source, i.e. the class the same network gives
  the real clips carrying that caption. real_class_acc: the network on the real clips (UCF-101), its
  ceiling. Not computed when no class network is loaded (I3D FVD alone has no class head).
- frame_corr, pixel_corr (samples) and real_frame_corr, real_pixel_corr (reference): the correlations
  of evaluation/metrics/video_correlation.py on the first CORRELATION_CLIPS clips of each side.
- frame_corr_gap = frame_corr - real_frame_corr, how much stiller (> 0) or more flickering (< 0) the
  samples are than the real clips.
- per_class: for each target class (UCF-101 label, with its name where the reference carries the class
  names; MSR-VTT caption source as the network names it, with the caption of one real clip of it), the
  samples' class_acc and frame_corr and the real clips' frame_corr, so that a reader sees which source a
  row draws, and a class named from its background alone (a plain clip called "square") shows up as a
  high class_acc beside a frame_corr far above the real clips'.
Each of class_acc, frame_corr, real_frame_corr and frame_corr_gap has a 95 % bootstrap interval
(<key>_ci_low, <key>_ci_high; evaluation/metrics/bootstrap.py) over the clips: the stand-in's reference
holds 14 clips, so the real clips' own number moves by several hundredths with the clips drawn.
"""

import numpy as np
import torch

from evaluation.metrics.bootstrap import mean_difference_interval, mean_interval
from evaluation.metrics.class_accuracy import caption_targets, class_accuracy, correct
from evaluation.metrics.npz_images import open_npz_array
from evaluation.metrics.video_correlation import clip_frame_correlations, neighbour_correlation
from evaluation.metrics.video_reference import read_class_names, read_conditions, video_batches

CORRELATION_CLIPS = 256   # enough for a stable mean; bounded so the paper's 2048 x 256 px clips stay cheap


def first_clips(path, count, batch_size=64):
    with open_npz_array(path, "arr_0") as arr:
        return np.concatenate(list(video_batches(arr, min(count, len(arr)), batch_size)))


def class_network(nets):
    """logits(uint8 clips) of the IS network, else of a small-c3d FVD network; None without one."""
    if "is" in nets:
        return nets["is"].log_probs
    fvd = nets.get("fvd")
    if fvd is not None and fvd.kind == "small-c3d":
        return lambda clips: fvd.net.features(torch.from_numpy(clips[:, :16].copy()))[1].double().cpu().numpy()
    return None


def logits_of(fn, clips, batch_size):
    with torch.no_grad():
        return np.concatenate([fn(clips[i:i + batch_size]) for i in range(0, len(clips), batch_size)])


def correlations(out, prefix, clips):
    """<prefix>frame_corr with its interval and <prefix>pixel_corr of the first CORRELATION_CLIPS clips into
    out; returns the per-clip frame correlations (the gap's interval resamples them)."""
    clips = clips[:CORRELATION_CLIPS]
    per_clip = clip_frame_correlations(clips)
    out[f"{prefix}frame_corr"], out[f"{prefix}pixel_corr"] = float(per_clip.mean()), neighbour_correlation(clips)
    with_interval(out, f"{prefix}frame_corr", mean_interval(per_clip))
    return per_clip


def sample_checks(samples_npz, reference_npz, nets, num_clips, batch_size=16):
    """{class_acc, real_class_acc, frame_corr, pixel_corr, real_frame_corr, real_pixel_corr} (the keys that apply)."""
    out = {}
    samples = first_clips(samples_npz, num_clips)
    real = first_clips(reference_npz, num_clips) if reference_npz else None
    per_clip = correlations(out, "", samples)
    if real is not None:
        real_per_clip = correlations(out, "real_", real)
        out["frame_corr_gap"] = out["frame_corr"] - out["real_frame_corr"]
        with_interval(out, "frame_corr_gap", mean_difference_interval(per_clip, real_per_clip))
    logits = class_network(nets)
    if logits is None:
        return out
    labels, captions = read_conditions(samples_npz)
    fake_logits = logits_of(logits, samples, batch_size)
    if labels is not None:
        hits = correct(fake_logits, labels[:len(samples)])
        out["class_acc"], out["class_acc_samples"] = float(hits.mean()), len(samples)
        with_interval(out, "class_acc", mean_interval(hits))
        real_labels = read_conditions(reference_npz)[0] if real is not None else None
        if real_labels is not None:
            out["real_class_acc"] = class_accuracy(logits_of(logits, real, batch_size), real_labels[:len(real)])
            out["per_class"] = per_class(labels[:len(samples)], hits, per_clip, real_labels[:len(real)], real_per_clip)
            names = read_class_names(reference_npz) or []   # none in references written before names were
            for c, entry in out["per_class"].items():
                if int(c) < len(names):
                    entry["class"] = names[int(c)]
    elif captions is not None and real is not None:
        # every reference clip, not only the first num_clips: each sample's caption must find its source
        real_captions = read_conditions(reference_npz)[1]
        with open_npz_array(reference_npz, "arr_0") as arr:
            real_pred = np.concatenate([logits_of(logits, b, batch_size).argmax(1)
                                        for b in video_batches(arr, len(arr), 64)])
        targets = caption_targets(captions[:len(samples)], real_captions, real_pred)
        known = targets >= 0   # samples whose caption some reference clip carries
        if known.any():
            hits = correct(fake_logits[known], targets[known])
            out["class_acc"], out["class_acc_samples"] = float(hits.mean()), int(known.sum())
            with_interval(out, "class_acc", mean_interval(hits))
            out["per_class"] = per_class(targets[known], hits, per_clip[known[:len(per_clip)]],
                                         real_pred[:len(real)], real_per_clip)
            for c, entry in out["per_class"].items():   # a caption names the class: the first real clip's of it
                entry["caption"] = next(cap for cap, p in zip(real_captions, real_pred) if p == int(c))
    return out


def per_class(targets, hits, frame_corr, real_classes, real_frame_corr):
    """{class: {samples, class_acc, frame_corr, real_frame_corr}} over the clips that have a per-clip frame
    correlation (the first CORRELATION_CLIPS); real_frame_corr is None where no real clip has the class."""
    out = {}
    n, m = min(len(targets), len(frame_corr)), min(len(real_classes), len(real_frame_corr))
    for c in sorted(set(int(t) for t in targets)):
        of_c, real = targets == c, real_classes[:m] == c
        mine = of_c[:n]
        out[str(c)] = {"samples": int(of_c.sum()), "class_acc": float(hits[of_c].mean()),
                       "frame_corr": float(frame_corr[:n][mine].mean()) if mine.any() else None,
                       "real_frame_corr": float(real_frame_corr[:m][real].mean()) if real.any() else None}
    return out


def with_interval(out, key, interval):
    out[f"{key}_ci_low"], out[f"{key}_ci_high"] = interval
