"""`ptdit prepare-video-standin {ucf101,msrvtt} OUT_ROOT`: argparse front of ptdit/data/video_standin.py."""

from ptdit.cli.train import setup_logging


def cmd_prepare_video_standin(args):
    from ptdit.data.video_standin import make_msrvtt_standin, make_ucf101_standin

    setup_logging()
    if args.dataset == "ucf101":
        summary = make_ucf101_standin(args.out_root, args.groups, args.clips_per_group, args.seed)
    else:
        summary = make_msrvtt_standin(args.out_root, args.train_per_source, args.validate_per_source,
                                      args.test_per_source, args.seed)
    print(" ".join(f"{key}={value}" for key, value in summary.items()) + f" -> {args.out_root}")


def add_parser(subparsers):
    p = subparsers.add_parser("prepare-video-standin",
                              help="write the deterministic UCF-101 or MSR-VTT stand-in in the real layout")
    p.add_argument("dataset", choices=["ucf101", "msrvtt"])
    p.add_argument("out_root", help="ucf101: OUT/UCF-101/<Class>/*.avi + OUT/ucfTrainTestlist/; "
                                    "msrvtt: OUT/videos/all/videoN.mp4 + OUT/*_videodatainfo.json")
    p.add_argument("--seed", type=int, default=0, help="seed of the procedural classes")
    p.add_argument("--groups", type=int, default=4, help="ucf101: groups per class (fold k tests group k)")
    p.add_argument("--clips-per-group", type=int, default=2, help="ucf101: clips per group")
    p.add_argument("--train-per-source", type=int, default=6, help="msrvtt: train clips per source")
    p.add_argument("--validate-per-source", type=int, default=1, help="msrvtt: validate clips per source")
    p.add_argument("--test-per-source", type=int, default=2, help="msrvtt: test clips per source")
    p.set_defaults(func=cmd_prepare_video_standin)
    return p
