"""`ptdit models [--csv]`: every registered model with its parameters and GFLOPs at 256 px."""


def cmd_models(args):
    import ptdit
    from evaluation.efficiency.flops import model_gflops

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


def add_parser(subparsers):
    models = subparsers.add_parser("models", help="list every registered model with params and GFLOPs (256 px)")
    models.add_argument("--csv", action="store_true", help="CSV: name,params,gflops_256")
    models.set_defaults(func=cmd_models)
