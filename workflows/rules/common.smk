# Helpers of the rules: which points the config asks for, and each point's command-line options.
# Naming lives in the library (evaluation/efficiency/profile.py), so the rules and the CLI agree on file names.

import shlex

from snakemake.exceptions import WorkflowError

from evaluation.report.imagenet_plan import (ablation_rows, check_classifier, compression_reference_rows, compression_report_rows,
                                            compression_rows, eval_paths, missing_paths, report_rows, run_index, table_rows,
                                            tome_model)
from evaluation.report import video_plan
from evaluation.efficiency.point_files import model_from_slug, point_filename

EFFICIENCY = config["efficiency"]
FIGURE_NAMES = ["gflops_vs_resolution", "memory_vs_resolution", "throughput_vs_resolution"]


def cuda_wanted():
    """'auto' asks torch at start-up: GPU points exist only where a GPU does."""
    enabled = EFFICIENCY["cuda"]["enabled"]
    if enabled == "auto":
        import torch

        return torch.cuda.is_available()
    return bool(enabled)


def point_json(device, dtype, model, resolution, compiled=False):
    return f"results/efficiency/{device}-{dtype}/{point_filename(model, resolution, compiled)}"


def compile_modes(device):
    return EFFICIENCY[device].get("compile", [False])


def timed_points(device):
    """A device's timed points, once per torch.compile mode of its config (eager and compiled are
    separate measurements at the same batches)."""
    settings = EFFICIENCY[device]
    return [point_json(device, settings["dtype"], m, r, compiled) for compiled in compile_modes(device)
            for m in settings["timed"]["models"] for r in settings["timed"]["resolutions"]]


def efficiency_points():
    """Every point JSON the table needs: counted everywhere (eager; compiling changes no count),
    timed where the config says, in every compile mode it lists."""
    cpu = EFFICIENCY["cpu"]
    points = [point_json("cpu", cpu["dtype"], m, r) for m in EFFICIENCY["models"] for r in EFFICIENCY["resolutions"]]
    points += timed_points("cpu")
    if cuda_wanted():
        points += timed_points("cuda")
    return list(dict.fromkeys(points))


def is_timed(wildcards):
    timed = EFFICIENCY[wildcards.device]["timed"]
    return model_from_slug(wildcards.model) in timed["models"] and int(wildcards.px) in timed["resolutions"]


def profile_args(wildcards):
    """Command-line options of one point, from the config of its device; the file name's suffix
    ({compiled}: "" or "-compiled") says whether it times torch.compile(model)."""
    compiled = bool(wildcards.compiled)
    if compiled and not is_timed(wildcards):       # compiling changes no count: only timings differ
        raise WorkflowError(f"{wildcards.model}_{wildcards.px}{wildcards.compiled}.json: a compiled point must be "
                            f"a timed one (efficiency.{wildcards.device}.timed)")
    if not is_timed(wildcards):
        return "--no-timing"
    settings = EFFICIENCY[wildcards.device]
    args = (f"--batch {settings['infer_batch']} --throughput-batch {settings['throughput_batch']} "
            f"--train-batch {settings['train_batch']} --warmup {settings['warmup']} "
            f"--repeats {settings['repeats']} --max-seconds {settings['max_seconds']}")
    return args + (" --compile" if compiled else "")


def profile_threads(wildcards):
    """Timed points take every core: nothing else runs beside them and disturbs the clock."""
    return workflow.cores if is_timed(wildcards) else 1


def torch_threads(wildcards, threads):
    """Threads torch computes with: the config's torch_threads, else every core the job holds."""
    return EFFICIENCY[wildcards.device].get("torch_threads") or threads


# --- the ImageNet comparison (imagenet.smk) ---
IMAGENET = config["imagenet"]
if missing_paths(IMAGENET):
    raise WorkflowError("these config keys must name local files for this config: "
                        + ", ".join(missing_paths(IMAGENET))
                        + " (set them in your config file or with --config; README: 'Where every weight file comes from')")
check_classifier(IMAGENET)
DATASET = IMAGENET["dataset"]
DATA = IMAGENET["data"]
RUNS = run_index(IMAGENET)
DATA_DIR = f"results/data/{DATASET}"


def train_split(wildcards=None):
    return f"{DATA_DIR}/images/train" if DATA["kind"] == "standin" else DATA["train_dir"]


def val_split(wildcards=None):
    return f"{DATA_DIR}/images/val" if DATA["kind"] == "standin" else DATA["val_dir"]


def standin_marker(wildcards=None):
    """The stand-in's completion marker, or nothing for a user's own copy of ImageNet."""
    return [f"{DATA_DIR}/images/STANDIN"] if DATA["kind"] == "standin" else []


def run_row(wildcards):
    key = (wildcards.model, wildcards.objective, wildcards.variant, int(wildcards.steps))
    if key not in RUNS:
        raise ValueError(f"no row of config['imagenet'] trains {'/'.join(map(str, key))}")
    return RUNS[key]


def overrides_args(wildcards):
    """-m KEY=VALUE for every model override of the row (JSON values, which the CLI reads as YAML)."""
    import json
    import shlex

    return " ".join(f"-m {shlex.quote(f'{k}={json.dumps(v)}')}" for k, v in run_row(wildcards).overrides.items())


def tome_args(wildcards):
    """A `_tome0.25` sample: ToMe-DiT with the run's weights (same keys; ptdit sample keeps the run's
    overrides for a model of the same shape)."""
    if not wildcards.tome:
        return ""
    return f"--model '{tome_model(model_from_slug(wildcards.model), wildcards.tome[len('_tome'):])}'"


def row_label(row):
    """The samples figure's label of a table row: model, objective, training steps."""
    return f"{row.model} ({row.objective}, {row.train_steps} steps)"


def rows_yaml(rows):
    """The rows file of `ptdit report-imagenet` / `report-ablation`, as text."""
    return yaml_text(report_rows(rows, IMAGENET))


def yaml_text(entries):
    import yaml

    return yaml.safe_dump(entries, sort_keys=False)


def launcher(stage):
    """The command that starts `ptdit <verb>` for a train/sample job: one process, or torchrun with one
    process per GPU the job holds, or with the config's `processes` on a CPU job (gloo). It reads the
    job's own gpu resource, so a profile that changes `gpu` for a rule changes the process count with
    it: allocation and launch can never disagree. stage: the stage's config dict (e.g. VIDEO["train"]),
    or the name of an imagenet stage ("train", "sample")."""
    settings = IMAGENET[stage] if isinstance(stage, str) else stage

    def launch(wildcards, resources):
        gpus = int(resources.get("gpu", 0) or 0)
        procs = gpus if gpus else int(settings.get("processes", 1) or 1)
        return f"torchrun --standalone --nproc_per_node {procs} -m ptdit.cli" if procs > 1 else "ptdit"

    return launch


def extractor_args(wildcards=None):
    ext = IMAGENET["extractor"]
    classifier = f" --classifier-weights {shlex.quote(ext['classifier_weights'])}" if ext.get("classifier_weights") else ""
    if ext["kind"] == "small-cnn":
        return f"--extractor small-cnn --extractor-weights results/extractor/{DATASET}/small_cnn.pt{classifier}"
    return f"--extractor inception --extractor-weights {ext['weights']}{classifier}"


def extractor_input(wildcards=None):
    return [f"results/extractor/{DATASET}/small_cnn.pt"] if IMAGENET["extractor"]["kind"] == "small-cnn" else []


def reference_path(wildcards=None):
    return IMAGENET["reference"] or f"results/reference/{DATASET}/val.npz"


# --- the video comparison (video.smk): rows, files and options in evaluation/report/video_plan.py ---
VIDEO = config["video"]
VIDEO_RUNS = video_plan.run_index(VIDEO)
video_plan.check_counts(VIDEO)
VIDEO_GPU = 1 if VIDEO["train"].get("gpus", 0) else 0          # encode with the GPU training will have
VIDEO_EVAL_GPU = 1 if VIDEO["sample"].get("gpus", 0) else 0     # evaluate where sampling ran


def require_video_paths(wildcards=None):
    """Unset paths stop the DAG with the keys' names. Checked when a video file is asked for, not at
    parse time, so that a config for the other comparisons need not set the video paths."""
    missing = video_plan.missing_paths(VIDEO)
    if missing:
        raise WorkflowError("these config keys must name local files for the video comparison: "
                            + ", ".join(missing) + " (set them in your config file or with --config; README: "
                            "'Where every weight file comes from')")
    return []


def video_source_files(dataset):
    """The stand-in's completion marker, or nothing for the user's own copy of the dataset."""
    require_video_paths()
    return [video_plan.standin_marker(dataset)] if video_plan.is_standin(VIDEO) else []


def video_source(wildcards):
    return video_source_files(wildcards.dataset)


def video_run(wildcards):
    key = (wildcards.dataset, wildcards.model, wildcards.objective, wildcards.variant, int(wildcards.steps))
    if key not in VIDEO_RUNS:
        raise ValueError(f"no row of config['video'] trains {'/'.join(map(str, key))}")
    return VIDEO_RUNS[key]


def video_overrides(wildcards):
    """-m KEY=VALUE for every model override of the row (JSON values, which the CLI reads as YAML)."""
    import json
    import shlex

    return " ".join(f"-m {shlex.quote(f'{k}={json.dumps(v)}')}" for k, v in video_run(wildcards).overrides.items())


def caption_input(wildcards):
    """Text models sample from the encoded test captions (clip i's evaluation caption for sample i)."""
    return [video_plan.encoded_meta("msrvtt", "test")] if wildcards.dataset == "msrvtt" else []


def video_tables_input(wildcards):
    require_video_paths()
    return eval_paths(video_plan.table_rows(VIDEO, wildcards.dataset), video_plan.stem(wildcards.dataset))


def video_rows_yaml(wildcards):
    """The rows file of `ptdit report-video`, as text."""
    import yaml

    return yaml.safe_dump(video_plan.report_rows(VIDEO, wildcards.dataset), sort_keys=False)
