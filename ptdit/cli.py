"""`ptdit` command line: a thin shell over the library; each verb calls one library function."""

import argparse
import sys


def cmd_models(args):
    import ptdit
    from evaluation.flops import model_gflops

    rows = []
    for name in ptdit.list_models():
        params, gflops = model_gflops(name)
        rows.append((name, params, gflops, ptdit.get_spec(name).note))
    if args.csv:
        print("name,params,gflops_256")
        for name, params, gflops, _ in rows:
            print(f"{name},{params},{gflops:.4f}")
        return
    print(f"{'model':28s} {'params (M)':>11s} {'GFLOPs@256':>11s}  note")
    for name, params, gflops, note in rows:
        print(f"{name:28s} {params / 1e6:11.2f} {gflops:11.2f}  {note}")


def build_parser():
    parser = argparse.ArgumentParser(prog="ptdit", description="PT-DiT reproducibility suite")
    sub = parser.add_subparsers(dest="command", required=True)
    models = sub.add_parser("models", help="list every registered model with params and GFLOPs (256 px)")
    models.add_argument("--csv", action="store_true", help="CSV: name,params,gflops_256")
    models.set_defaults(func=cmd_models)
    from evaluation.profile_cli import add_parser as add_profile_parser
    add_profile_parser(sub)
    from ptdit import data_cli, sample_cli, train_cli  # argparse only: heavy imports happen in the verbs
    data_cli.add_parser(sub)
    train_cli.add_parser(sub)
    sample_cli.add_parser(sub)
    from ptdit import video_data_cli
    video_data_cli.add_parser(sub)
    from ptdit import video_encode_cli
    video_encode_cli.add_parser(sub)
    from evaluation import evaluate_cli, extractor_cli, report_cli
    evaluate_cli.add_parser(sub)
    extractor_cli.add_parser(sub)
    report_cli.add_parser(sub)
    from evaluation import video_evaluate_cli
    video_evaluate_cli.add_parser(sub)
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


if __name__ == "__main__":
    sys.exit(main())
