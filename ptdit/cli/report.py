"""`ptdit report-imagenet`, `ptdit report-ablation` and `ptdit report-compression`: the command line of
evaluation/report/imagenet.py, imagenet_figures.py, compression.py and compression_figure.py (argparse
only; the work is there).

    ptdit report-imagenet --rows results/report/imagenet_rows.yaml --out-dir results
        -> results/table_imagenet.{csv,md}, results/figures/{fid_vs_gflops,training_loss}.{png,pdf}
    ptdit report-ablation --rows results/report/ablation_rows.yaml --out-dir results
        -> results/table_ablation.{csv,md}
    ptdit report-compression --rows results/report/compression_rows.yaml --out-dir results
        -> results/table_compression.{csv,md}, results/figures/fid_vs_compression.{png,pdf}

rows.yaml is a YAML list of row dicts (the Snakemake report rule writes it); see
evaluation/report/imagenet.py for the keys.
"""

import os


def read_rows(path):
    import yaml

    with open(path) as f:
        rows = yaml.safe_load(f)
    if not isinstance(rows, list):
        raise ValueError(f"{path}: expected a YAML list of rows (model, objective, eval_json, ...), "
                         f"got {type(rows).__name__}")
    return rows


def cmd_report_imagenet(args):
    from evaluation.report.imagenet import build_imagenet_table
    from evaluation.report.imagenet_figures import make_imagenet_figures

    rows = read_rows(args.rows)
    out_csv = os.path.join(args.out_dir, "table_imagenet.csv")
    table = build_imagenet_table(rows, out_csv, os.path.join(args.out_dir, "table_imagenet.md"))
    print(out_csv)
    if not args.no_figures:
        figures_dir = args.figures_dir or os.path.join(args.out_dir, "figures")
        for path in make_imagenet_figures(table, rows, figures_dir):
            print(path)


def cmd_report_ablation(args):
    from evaluation.report.imagenet import build_ablation_table

    out_csv = os.path.join(args.out_dir, "table_ablation.csv")
    build_ablation_table(read_rows(args.rows), out_csv, os.path.join(args.out_dir, "table_ablation.md"))
    print(out_csv)


def cmd_report_compression(args):
    from evaluation.report.compression import build_compression_table
    from evaluation.report.compression_figure import make_compression_figure

    out_csv = os.path.join(args.out_dir, "table_compression.csv")
    table = build_compression_table(read_rows(args.rows), out_csv, os.path.join(args.out_dir, "table_compression.md"))
    print(out_csv)
    for path in make_compression_figure(table, args.figures_dir or os.path.join(args.out_dir, "figures")):
        print(path)


def add_parser(subparsers):
    imagenet = subparsers.add_parser(
        "report-imagenet", help="table_imagenet.csv/.md and the FID-vs-GFLOPs and training-loss figures")
    imagenet.add_argument("--rows", required=True, help="YAML list of rows (model, objective, eval_json, ...)")
    imagenet.add_argument("--out-dir", default="results", help="where table_imagenet.csv/.md go")
    imagenet.add_argument("--figures-dir", default=None, help="default: OUT_DIR/figures")
    imagenet.add_argument("--no-figures", action="store_true", help="tables only")
    imagenet.set_defaults(func=cmd_report_imagenet)
    ablation = subparsers.add_parser("report-ablation", help="table_ablation.csv/.md (the paper's Table 2)")
    ablation.add_argument("--rows", required=True, help="YAML list of rows (model, model_overrides, eval_json, ...)")
    ablation.add_argument("--out-dir", default="results", help="where table_ablation.csv/.md go")
    ablation.set_defaults(func=cmd_report_ablation)
    compression = subparsers.add_parser(
        "report-compression", help="table_compression.csv/.md and the FID-vs-compression-ratio figure (issue 16)")
    compression.add_argument("--rows", required=True, help="YAML list of rows (model, objective, role, eval_json, ...)")
    compression.add_argument("--out-dir", default="results", help="where table_compression.csv/.md go")
    compression.add_argument("--figures-dir", default=None, help="default: OUT_DIR/figures")
    compression.set_defaults(func=cmd_report_compression)
    return imagenet, ablation, compression
