"""The `ptdit` command line: `main` builds one argparse parser from the command groups in this package and
runs the chosen verb. Each module here is one command group and a thin shell (argparse only; the work is
in the library): models.py (`ptdit models`), profile.py (evaluation/efficiency/), data.py, train.py,
sample.py, video_data.py, video_encode.py (ptdit/ and ptdit/data/), evaluate.py, extractor.py,
video_evaluate.py (evaluation/metrics/ and evaluation/extractors/) and report.py (evaluation/report/).
`python -m ptdit.cli` (and torchrun's `-m ptdit.cli`) runs `main` through __main__.py; the console script
is `ptdit = "ptdit.cli:main"`."""

import argparse
import sys


def build_parser():
    parser = argparse.ArgumentParser(prog="ptdit", description="PT-DiT reproducibility suite")
    sub = parser.add_subparsers(dest="command", required=True)
    # argparse only: heavy imports happen in the verbs
    from ptdit.cli import data, evaluate, extractor, models, profile, report, sample, train, video_data, video_encode, video_evaluate
    for group in (models, profile, data, train, sample, video_data, video_encode, evaluate, extractor, report,
                  video_evaluate):
        group.add_parser(sub)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (KeyError, ValueError, TypeError, FileNotFoundError) as err:
        from ptdit.worker_errors import user_message
        print(f"ptdit {args.command}: error: {user_message(err)}", file=sys.stderr)
        return 2
    return 0
