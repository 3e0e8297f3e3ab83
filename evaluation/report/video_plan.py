"""The plan of the video comparison (issue 8): which rows config['video'] asks for on UCF-101 (class
models, FVD / IS / frame FID) and MSR-VTT (text models, FVD / CLIPSIM), where every stage's files live,
and the command-line options each stage gets. Torch-free, so the Snakefile parses fast.

A row is an imagenet_plan.Row (model, objective, train steps, sampler, sampling steps, cfg; variant
"base"), so the file layout is the ImageNet one with the video dataset's name in it:

    results/data/{dataset}/standin/STANDIN                    the stand-in (data.kind: standin)
    results/data/{dataset}/encoded/{train,test}/meta.json     encoded once (`ptdit encode-video`)
    results/extractor/{dataset}/small_c3d.pt (+ ucf101/small_cnn_frames.pt, msrvtt/small_clip.pt)
    results/reference/{dataset}/{split}.npz                   real clips (`ptdit make-video-reference`)
    results/runs/video/{dataset}/{model}/{objective}/base/s{steps}/final.pt
    results/samples/video/{dataset}/{model}/{objective}/base/s{steps}/{sampler}{n}_cfg{cfg}.npz
    results/eval/video/{dataset}/{model}/{objective}/base/s{steps}/{sampler}{n}_cfg{cfg}.json
    results/table_{dataset}.csv / .md
A row with several training seeds (its own `seeds`, else video.train.seeds, else [0]) runs seed N > 0 in
s{steps}_seedN/; the table reports the mean over seeds and <metric>_std (evaluation/report/video.py).
The 'video/' level keeps runs, samples and evaluations out of the ImageNet rules' patterns
(results/runs/{dataset}/{model}/...: one level fewer), whatever the datasets are called.
"""

from evaluation.report import imagenet_plan
from evaluation.report.imagenet_plan import make_row
from evaluation.report.paper_video import attention_of

DATASETS = ("ucf101", "msrvtt")
METRICS = {"ucf101": "fvd,is,fid", "msrvtt": "fvd,clipsim"}
# Model names of each dataset's rows: class models on UCF-101, text models on MSR-VTT (ptdit/registry.py).
MODEL_SUFFIX = {"ucf101": "-Video", "msrvtt": "-T2V"}
# Which metric each network serves, and the config key of its local weights when it is not the stand-in's.
REAL_NETWORKS = {"fvd": ("i3d", "i3d_weights"), "is": ("c3d", "c3d_weights"),
                 "fid": ("inception", "inception_weights"), "clip": ("clip", "clip_weights")}
DATASET_NETWORKS = {"ucf101": ("fvd", "is", "fid"), "msrvtt": ("fvd", "clip")}


def check_dataset(dataset):
    if dataset not in DATASETS:
        raise ValueError(f"unknown video dataset {dataset!r}; choose one of {DATASETS}")
    return dataset


def is_standin(video):
    return video["data"]["kind"] == "standin"


# --- rows -----------------------------------------------------------------------------------------------
def dataset_section(video, dataset):
    """The shape imagenet_plan.make_row reads: shared train/sample settings, the dataset's model defaults."""
    return {"train": video["train"], "sample": video["sample"],
            "model_defaults": video[check_dataset(dataset)].get("model_defaults", {})}


def table_rows(video, dataset):
    """Rows of results/table_<dataset>.csv, in config order; a model of the wrong kind stops here."""
    rows = []
    for spec in video[check_dataset(dataset)]["rows"]:
        attention_of(spec["model"])   # one of the comparison's three attentions, or a ValueError naming them
        if not spec["model"].endswith(MODEL_SUFFIX[dataset]):
            raise ValueError(f"video.{dataset}.rows: {spec['model']} is not a {dataset} model; {dataset} rows use "
                             f"names ending in {MODEL_SUFFIX[dataset]} (e.g. PT-DiT/S{MODEL_SUFFIX[dataset]})")
        rows.append(make_row(spec, dataset_section(video, dataset)))
    return rows


def run_index(video):
    """(dataset, model slug, objective, variant, steps) -> Row; two rows sharing a run must agree on its
    overrides (one run folder, one model)."""
    index = {}
    for dataset in DATASETS:
        for row in table_rows(video, dataset):
            key = (dataset, *row.run_key)
            known = index.setdefault(key, row)
            if known.overrides != row.overrides:
                raise ValueError(f"two video.{dataset} rows train {'/'.join(map(str, row.run_key))} with different "
                                 f"overrides ({known.overrides} vs {row.overrides}); give one another train_steps")
    return index


def stem(dataset):
    """The dataset part of a row's paths: Row.run_dir(stem(d)) = results/runs/video/<d>/..."""
    return f"video/{check_dataset(dataset)}"


def table_name(video, dataset):
    """The dataset column of the table: '-standin' says the numbers are not UCF-101 / MSR-VTT numbers."""
    return f"{dataset}-standin" if is_standin(video) else dataset


def report_rows(video, dataset):
    """The rows.yaml entries `ptdit report-video` reads (evaluation/report/video.py)."""
    return [imagenet_plan.row_entry(r, stem(dataset), table_name(video, dataset), video["scale"],
                                    r.run_dir(stem(dataset))) for r in table_rows(video, dataset)]


# --- files ----------------------------------------------------------------------------------------------
def standin_marker(dataset):
    return f"results/data/{dataset}/standin/STANDIN"


def data_root(video, dataset):
    """Where the dataset's on-disk layout is: the stand-in built here, or the user's copy."""
    return f"results/data/{dataset}/standin" if is_standin(video) else video[dataset]["root"]


def encoded_meta(dataset, split):
    return f"results/data/{dataset}/encoded/{split}/meta.json"


def reference_npz(video, dataset):
    return f"results/reference/{dataset}/{video['evaluate']['reference_split']}.npz"


def c3d_file(dataset):
    return f"results/extractor/{dataset}/small_c3d.pt"


FRAMES_CNN = "results/extractor/ucf101/small_cnn_frames.pt"
SMALL_CLIP = "results/extractor/msrvtt/small_clip.pt"


def network_files(video, dataset):
    """{metric: (network name, weights file)} of the networks that evaluate this dataset."""
    nets = video["extractors"]
    standin = {"fvd": ("small-c3d", c3d_file(dataset)), "is": ("small-c3d", c3d_file(dataset)),
               "fid": ("small-cnn", FRAMES_CNN), "clip": ("small-clip", SMALL_CLIP)}
    out = {}
    for metric in DATASET_NETWORKS[dataset]:
        real, key = REAL_NETWORKS[metric]
        out[metric] = (real, nets[key]) if nets[metric] == real else standin[metric]
    return out


def built_networks(video, dataset):
    """The stand-in weight files the evaluation of this dataset needs from this workflow."""
    built = {c3d_file(dataset), FRAMES_CNN, SMALL_CLIP}
    return sorted({path for _, path in network_files(video, dataset).values() if path in built})


def evaluate_args(video, dataset):
    """`ptdit evaluate-video` options of the dataset: metrics, networks and their weights, clip counts."""
    flags = {"fvd": ("--fvd-extractor", "--fvd-weights"), "is": ("--is-extractor", "--is-weights"),
             "fid": ("--fid-extractor", "--fid-weights"), "clip": ("--clip-model", "--clip-weights")}
    ev = video["evaluate"]
    args = [f"--metrics {METRICS[dataset]}"]
    for metric, (name, path) in network_files(video, dataset).items():
        args.append(f"{flags[metric][0]} {name} {flags[metric][1]} {path}")
    args.append(f"--num-clips {ev['num_clips']} --batch-size {ev['batch_size']}")
    if dataset == "ucf101":
        args.append(f"--is-splits {ev['is_splits']}")
        if ev.get("fid_frames"):
            args.append(f"--fid-frames {ev['fid_frames']}")
    return " ".join(args)


def clip_args(video, dataset):
    """The clip options every reader of the dataset shares (encode, reference, extractors)."""
    data = video["data"]
    args = (f"--num-frames {data['num_frames']} --frame-stride {data['frame_stride']} "
            f"--image-size {data['image_size']}")
    if dataset == "ucf101":
        args += f" --fold {video['ucf101'].get('fold', 1)}"
    return args + (" --skip-unreadable" if data.get("skip_unreadable") else "")


def encode_args(video, dataset):
    """`ptdit encode-video` options beyond the clip: the VAE, and MSR-VTT's text encoder."""
    data, args = video["data"], []
    if data.get("vae"):
        args.append(f"--vae {data['vae']} --vae-kind {data.get('vae_kind', 'image')}")
    if dataset == "msrvtt":
        text = video["text_encoder"]
        args.append(f"--text-encoder {text['kind']}")
        if text.get("path"):
            args.append(f"--text-encoder-path {text['path']}")
        if text.get("max_tokens"):
            args.append(f"--max-tokens {text['max_tokens']}")
        if text.get("max_captions"):
            args.append(f"--max-captions {text['max_captions']}")
    return " ".join(args)


def standin_args(video, dataset):
    """`ptdit prepare-video-standin` options: the stand-in's size, per dataset."""
    keys = {"ucf101": ("groups", "clips_per_group"),
            "msrvtt": ("train_per_source", "validate_per_source", "test_per_source")}[dataset]
    standin = video["data"].get("standin", {})
    args = [f"--seed {standin.get('seed', 0)}"]
    args += [f"--{key.replace('_', '-')} {standin[key]}" for key in keys if key in standin]
    return " ".join(args)


# --- start-up check -------------------------------------------------------------------------------------
def missing_paths(video):
    """Config keys this video config needs and that are unset (design.md: every path is a config key with
    no machine-specific default): the data roots and VAE of real data, the T5 folder, real networks'
    weights."""
    missing = []
    if not is_standin(video):
        missing += [f"video.{d}.root" for d in DATASETS if not video[d].get("root")]
        if not video["data"].get("vae"):
            missing.append("video.data.vae")
    if video["text_encoder"]["kind"] == "t5" and not video["text_encoder"].get("path"):
        missing.append("video.text_encoder.path")
    nets = video["extractors"]
    used = {m for d in DATASETS for m in DATASET_NETWORKS[d]}
    for metric in sorted(used):
        real, key = REAL_NETWORKS[metric]
        if nets[metric] == real and not nets.get(key):
            missing.append(f"video.extractors.{key}")
    return missing


def check_counts(video):
    """Counts that only fail late (after training) are checked at start-up: each evaluation takes
    num_clips of the samples, and the video IS splits them."""
    ev, num = video["evaluate"], video["sample"]["num_samples"]
    if ev["num_clips"] > num:
        raise ValueError(f"video.evaluate.num_clips ({ev['num_clips']}) exceeds video.sample.num_samples ({num}); "
                         f"sample at least as many videos as are evaluated")
    if ev["is_splits"] > ev["num_clips"]:
        raise ValueError(f"video.evaluate.is_splits ({ev['is_splits']}) exceeds video.evaluate.num_clips "
                         f"({ev['num_clips']}); lower the IS splits")
