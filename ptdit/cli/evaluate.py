"""`ptdit evaluate`: the command line of evaluation/metrics/evaluate.py (argparse only; the work is there).

    ptdit evaluate samples.npz --reference VIRTUAL_imagenet256_labeled.npz --metrics fid,sfid,is,prc \
        --extractor-weights weights-inception-2015-12-05-6726825d.pth --classifier-weights resnet50-11ad3fa6.pth \
        --out results/eval/run.json
    ptdit evaluate samples.npz --reference data/standin/reference.npz --extractor small-cnn \
        --extractor-weights results/extractor/small_cnn.pt --out eval.json
"""


def cmd_evaluate(args):
    from evaluation.metrics.evaluate import evaluate_samples

    result = evaluate_samples(args.samples, reference=args.reference, metrics=args.metrics,
                              extractor=args.extractor, extractor_weights=args.extractor_weights,
                              batch_size=args.batch_size, device=args.device, out_json=args.out,
                              cache_dir=args.cache_dir, is_splits=args.is_splits, replicates=args.bootstrap,
                              classifier_weights=args.classifier_weights)
    shown = {k: result[k] for k in ("fid", "sfid", "is", "precision", "recall", "class_acc")
             if result.get(k) is not None}
    print(f"{result['num_samples']} samples, {result['feature_extractor']}: "
          + ", ".join(f"{k} {v:.4f}" for k, v in shown.items()))


def add_parser(subparsers):
    p = subparsers.add_parser("evaluate", help="FID, sFID, IS, precision/recall of an ADM-format .npz")
    p.add_argument("samples", help="samples .npz (arr_0: uint8 N x H x W x 3)")
    p.add_argument("--reference", help="ADM reference .npz, an .npz of images, or an image folder")
    p.add_argument("--metrics", default="fid,sfid,is,prc", help="comma-separated subset of fid,sfid,is,prc")
    p.add_argument("--extractor", default="inception", choices=["inception", "small-cnn"])
    p.add_argument("--extractor-weights", help="local weights file (inception: else $PTDIT_INCEPTION_WEIGHTS)")
    p.add_argument("--classifier-weights", help="local torchvision ResNet-50 state dict: class_acc of ImageNet-1k "
                   "samples (config imagenet.extractor.classifier_weights); else the extractor's, where it can")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--device", default="cpu")
    p.add_argument("--is-splits", type=int, default=10)
    p.add_argument("--bootstrap", type=int, default=200,
                   help="bootstrap replicates of the 95 %% intervals (m_ci_low, m_ci_high); 0: none")
    p.add_argument("--cache-dir", help="where reference statistics are cached by content hash")
    p.add_argument("--out", help="result JSON (written atomically)")
    p.set_defaults(func=cmd_evaluate)
