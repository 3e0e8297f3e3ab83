"""The video metrics' command line (argparse only; the work is in evaluation/metrics/video_*.py and evaluation/extractors/).

    ptdit make-video-reference data/ucf101 results/reference/ucf101_test.npz --kind ucf101 --split test
    ptdit train-video-extractor data/ucf101 results/extractor/ucf101_c3d.pt --kind ucf101 \
        --frames-out results/extractor/ucf101_frames_cnn.pt
    ptdit train-video-clip data/msrvtt results/extractor/msrvtt_clip.pt
    ptdit evaluate-video samples.npz --reference ref.npz --metrics fvd,is,fid --fvd-extractor small-c3d \
        --fvd-weights c3d.pt --is-extractor small-c3d --is-weights c3d.pt --fid-extractor small-cnn \
        --fid-weights frames_cnn.pt --num-clips 64 --out eval.json
    ptdit report-video --dataset ucf101 --rows results/report/ucf101_rows.yaml --out-dir results
"""

import os
import sys


def open_video_dataset(args, split):
    """UCF101Folder / MSRVTTFolder (ptdit/data) from the common options."""
    common = dict(split=split, num_frames=args.num_frames, frame_stride=args.frame_stride,
                  image_size=args.image_size, skip_unreadable=args.skip_unreadable)
    if args.kind == "ucf101":
        from ptdit.data.ucf101 import UCF101Folder

        return UCF101Folder(args.root, fold=args.fold, **common)
    from ptdit.data.msrvtt import MSRVTTFolder

    return MSRVTTFolder(args.root, **common)


def add_dataset_options(p, split, kind=True):
    p.add_argument("root", help="dataset root: UCF-101/ + ucfTrainTestlist/, or MSR-VTT videos/ + annotation JSON")
    p.add_argument("out")
    if kind:
        p.add_argument("--kind", required=True, choices=["ucf101", "msrvtt"])
    p.add_argument("--split", default=split, choices=["train", "test"])
    p.add_argument("--fold", type=int, default=1, help="UCF-101 split fold (1-3)")
    p.add_argument("--num-frames", type=int, default=16)
    p.add_argument("--frame-stride", type=int, default=1)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--max-clips", type=int, default=None, help="use the first N clips of the split")
    p.add_argument("--skip-unreadable", action="store_true", help="skip (and count) unreadable videos")
    p.add_argument("--seed", type=int, default=0)


# --- make-video-reference ---------------------------------------------------------------------------
def cmd_make_video_reference(args):
    from evaluation.metrics.video_reference import make_video_reference

    dataset = open_video_dataset(args, args.split)
    count = make_video_reference(dataset, args.out, args.max_clips)
    print(f"reference of {count} {args.kind} {args.split} clips ({args.num_frames}x{args.image_size}x"
          f"{args.image_size}, {len(dataset.skipped)} skipped) -> {args.out}")


# --- train-video-extractor --------------------------------------------------------------------------
def caption_sets(captions):
    return [frozenset([c] if isinstance(c, str) else c) for c in captions]


def clip_labels(labels, captions):
    """UCF-101: the class labels. MSR-VTT has no classes: clips with the same SET of captions form one
    class (the stand-in gives every clip of a source the source's paraphrases, rotated, so a class is a
    source; real MSR-VTT clips each have their own captions, and use I3D, not this network)."""
    if labels is not None:
        return labels
    import numpy as np

    sets = caption_sets(captions)
    index = {s: i for i, s in enumerate(sorted(set(sets), key=sorted))}
    return np.array([index[s] for s in sets], dtype=np.int64)


def held_out_accuracy(model, args, train_labels, train_captions):
    """(accuracy, clips) of the trained 3-D CNN on the test split, the judge's own ceiling on clips it never
    saw (issue 17); MSR-VTT test clips count where their caption set is a training class. None without a
    test split or such clips (real MSR-VTT: every clip its own captions)."""
    import numpy as np

    from evaluation.extractors.video_classifier import accuracy
    from evaluation.metrics.video_reference import dataset_clips

    try:
        videos, labels, captions = dataset_clips(open_video_dataset(args, "test"), args.max_clips, all_captions=True)
    except (FileNotFoundError, ValueError) as err:
        # No test split (or one the loader rejects): the extractor is still usable, say why there is no number.
        print(f"held-out accuracy not computed: {err}", file=sys.stderr)
        return None
    if labels is None:
        index = {s: int(i) for s, i in zip(caption_sets(train_captions), train_labels)}
        labels = np.array([index.get(s, -1) for s in caption_sets(captions)])
        videos, labels = videos[labels >= 0], labels[labels >= 0]
    return (accuracy(model, videos, labels), len(labels)) if len(labels) else None


def cmd_train_video_extractor(args):
    from evaluation.extractors.small_classifier import save_small_classifier, train_small_classifier
    from evaluation.extractors.video_classifier import accuracy, save_video_classifier, train_video_classifier
    from evaluation.metrics.video_reference import dataset_clips

    dataset = open_video_dataset(args, args.split)
    videos, labels, captions = dataset_clips(dataset, args.max_clips, all_captions=True)
    labels = clip_labels(labels, captions)
    num_classes = getattr(dataset, "num_classes", int(labels.max()) + 1)
    model = train_video_classifier(videos, labels, num_classes, steps=args.steps, seed=args.seed)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    save_video_classifier(model, args.out)
    held_out = held_out_accuracy(model, args, labels, captions)
    print(f"{model.name} on {len(videos)} clips, {num_classes} classes, train accuracy "
          f"{accuracy(model, videos, labels):.3f}"
          + (f", held-out accuracy {held_out[0]:.3f} on {held_out[1]} test clips" if held_out else "")
          + f" -> {args.out}")
    if args.frames_out:
        # The frame FID's network: the image stand-in's small CNN on every frame_step-th frame.
        frames = videos[:, ::args.frame_step].reshape(-1, *videos.shape[2:])
        frame_labels = labels.repeat(len(range(0, videos.shape[1], args.frame_step)))
        cnn = train_small_classifier(frames, frame_labels, num_classes, epochs=args.frame_epochs, batch_size=32,
                                     seed=args.seed)
        save_small_classifier(cnn, args.frames_out)
        print(f"{cnn.name} on {len(frames)} frames -> {args.frames_out}")


# --- train-video-clip -------------------------------------------------------------------------------
def cmd_train_video_clip(args):
    from evaluation.extractors.video_clip import MiniLMText, retrieval_accuracy, save_video_clip, train_video_clip
    from evaluation.metrics.video_reference import dataset_clips

    args.kind = "msrvtt"
    dataset = open_video_dataset(args, args.split)
    videos, _, captions = dataset_clips(dataset, args.max_clips, all_captions=True)
    text = MiniLMText()
    model = train_video_clip(videos, captions, text, steps=args.steps, seed=args.seed)
    save_video_clip(model, args.out)
    print(f"{model.name} on {len(videos)} clips, frame->caption retrieval accuracy "
          f"{retrieval_accuracy(model, videos, captions, text):.3f} -> {args.out}")


# --- evaluate-video ---------------------------------------------------------------------------------
def cmd_evaluate_video(args):
    from evaluation.metrics.video_evaluate import VideoExtractors, evaluate_videos

    extractors = VideoExtractors(fvd=args.fvd_extractor, fvd_weights=args.fvd_weights, is_=args.is_extractor,
                                 is_weights=args.is_weights, fid=args.fid_extractor, fid_weights=args.fid_weights,
                                 clip=args.clip_model, clip_weights=args.clip_weights)
    result = evaluate_videos(args.samples, args.reference, args.metrics, extractors, num_clips=args.num_clips,
                             batch_size=args.batch_size, device=args.device, is_splits=args.is_splits,
                             fid_frames=args.fid_frames, out_json=args.out)
    shown = {k: result[k] for k in ("fvd", "is", "fid", "clipsim") if k in result}
    print(f"{result['num_samples']} videos: " + ", ".join(f"{k} {v:.4f}" for k, v in shown.items()))


# --- report-video -----------------------------------------------------------------------------------
def cmd_report_video(args):
    from evaluation.report.video import build_video_table
    from ptdit.cli.report import read_rows

    out_csv = os.path.join(args.out_dir, f"table_{args.dataset}.csv")
    build_video_table(read_rows(args.rows), args.dataset, out_csv, os.path.join(args.out_dir, f"table_{args.dataset}.md"))
    print(out_csv)


# --- video-strips -----------------------------------------------------------------------------------
def cmd_video_strips(args):
    from evaluation.report.video_strips import make_video_strips

    samples = dict(item.split("=", 1) for item in args.samples)
    print(make_video_strips(args.out, args.reference, samples, args.meta))


# The choices of evaluation/metrics/video_evaluate.py, repeated here so building the parser imports no torch.
FVD_EXTRACTORS, IS_EXTRACTORS = ("i3d", "small-c3d"), ("c3d", "small-c3d")
FID_EXTRACTORS, CLIP_MODELS, NUM_CLIPS = ("inception", "small-cnn"), ("clip", "small-clip"), 2048


def add_parser(subparsers):
    r = subparsers.add_parser("make-video-reference", help="write a video split as a reference .npz")
    add_dataset_options(r, "test")
    r.set_defaults(func=cmd_make_video_reference)

    t = subparsers.add_parser("train-video-extractor",
                              help="train the stand-in's 3-D CNN (FVD, IS) and optionally its frame CNN (FID)")
    add_dataset_options(t, "train")
    t.add_argument("--steps", type=int, default=400, help="3-D CNN optimizer steps (batch 16)")
    t.add_argument("--frames-out", help="also train the frame CNN (small-cnn, frame FID) into this file")
    t.add_argument("--frame-step", type=int, default=2, help="frame CNN: every k-th frame of each clip")
    t.add_argument("--frame-epochs", type=int, default=10, help="frame CNN epochs (batch 32)")
    t.set_defaults(func=cmd_train_video_extractor)

    c = subparsers.add_parser("train-video-clip", help="train the MSR-VTT stand-in's CLIP (frames vs MiniLM captions)")
    add_dataset_options(c, "train", kind=False)
    c.add_argument("--steps", type=int, default=200, help="optimizer steps (batch 64 frames)")
    c.set_defaults(func=cmd_train_video_clip)

    e = subparsers.add_parser("evaluate-video", help="FVD, video IS, frame FID, CLIPSIM of a video sample .npz")
    e.add_argument("samples", help="samples .npz (arr_0 uint8 N x F x H x W x 3; labels or captions)")
    e.add_argument("--reference", help="real clips in the same format (ptdit make-video-reference)")
    e.add_argument("--metrics", default="fvd,is,fid", help="subset of fvd,is,fid,clipsim "
                   "(UCF-101: fvd,is,fid; MSR-VTT: fvd,clipsim)")
    e.add_argument("--fvd-extractor", default="i3d", choices=FVD_EXTRACTORS)
    e.add_argument("--fvd-weights", help="i3d: i3d_torchscript.pt or an InceptionI3d state dict; small-c3d: its .pt")
    e.add_argument("--is-extractor", default="c3d", choices=IS_EXTRACTORS)
    e.add_argument("--is-weights", help="c3d: StyleGAN-V's c3d_ucf101.pt; small-c3d: its .pt")
    e.add_argument("--fid-extractor", default="inception", choices=FID_EXTRACTORS)
    e.add_argument("--fid-weights", help="inception: else $PTDIT_INCEPTION_WEIGHTS; small-cnn: its .pt")
    e.add_argument("--clip-model", default="clip", choices=CLIP_MODELS)
    e.add_argument("--clip-weights", help="clip: open_clip ViT-B/32 weights; small-clip: its .pt")
    e.add_argument("--num-clips", type=int, default=NUM_CLIPS, help="clips evaluated on each side (StyleGAN-V: 2048)")
    e.add_argument("--fid-frames", type=int, default=None, help="frames per clip for the frame FID (default: all)")
    e.add_argument("--is-splits", type=int, default=10)
    e.add_argument("--batch-size", type=int, default=8, help="clips per batch")
    e.add_argument("--device", default="cpu")
    e.add_argument("--out", help="result JSON (written atomically)")
    e.set_defaults(func=cmd_evaluate_video)

    p = subparsers.add_parser("report-video", help="table_ucf101 / table_msrvtt .csv and .md")
    p.add_argument("--dataset", required=True, choices=["ucf101", "msrvtt"])
    p.add_argument("--rows", required=True, help="YAML list of rows (model, objective, eval_json, ...)")
    p.add_argument("--out-dir", default="results", help="where table_<dataset>.csv/.md go")
    p.set_defaults(func=cmd_report_video)
    s = subparsers.add_parser("video-strips", help="frame strips of real clips and samples, one row per class / caption")
    s.add_argument("out", help="the .png to write")
    s.add_argument("--reference", required=True, help="real clips .npz (ptdit make-video-reference)")
    s.add_argument("--meta", required=True, help="meta.json of the encoded split the samples were conditioned on")
    s.add_argument("--samples", nargs="+", required=True, help="TITLE=samples.npz, one per column, in order")
    s.set_defaults(func=cmd_video_strips)
    return r, t, c, e, p, s
