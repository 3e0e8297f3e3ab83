"""The video DAG (workflows/rules/video.smk): its plan (evaluation/report/video_plan.py), lint, the dry runs of
the default and the paper config (unset paths named, then the full DAG), and the CI config end to end
for both tables (UCF-101 and MSR-VTT stand-ins, 16 frames, pf = 4 temporal windows, one-block models)."""

import base64
import copy
import csv
import dataclasses
import json
import math
import os

import numpy as np
import pytest
import yaml

from evaluation.report import video_plan
from ptdit.data.video_standin import OBJECTS
from tests.test_compression_report import merged
from tests.test_snakemake_efficiency import ROOT, SNAKEMAKE, lints_about, snakemake
from tests.test_video_data import CLASSES

CI_CONFIG = os.path.join(ROOT, "tests", "video_ci.yaml")
PAPER_CONFIG = os.path.join(ROOT, "workflows", "config", "paper.yaml")
TARGETS = ("results/table_ucf101.csv", "results/table_msrvtt.csv")
ATTENTIONS = ["3D full", "2D + 1D", "PT-DiT"]
# The ImageNet paths of paper.yaml (checked at parse time by common.smk); the video tests set them too.
IMAGENET_PATHS = {"data": {"train_dir": "/data/imagenet/train", "vae": "/weights/sd-vae-ft-ema"},
                  "extractor": {"weights": "/weights/inception.pth"}, "reference": "ref.npz"}
VIDEO_PATHS = {"ucf101": {"root": "/data/ucf101"}, "msrvtt": {"root": "/data/msrvtt"},
               "data": {"vae": "/weights/sd-vae-ft-ema"}, "text_encoder": {"path": "/weights/t5-v1_1-xxl"},
               "extractors": {"i3d_weights": "/weights/i3d_torchscript.pt", "c3d_weights": "/weights/c3d_ucf101.pt",
                              "inception_weights": "/weights/inception.pth", "clip_weights": "/weights/clip.bin"}}
PAPER_VIDEO_KEYS = ("video.ucf101.root", "video.msrvtt.root", "video.data.vae", "video.text_encoder.path",
                    "video.extractors.i3d_weights", "video.extractors.c3d_weights",
                    "video.extractors.inception_weights", "video.extractors.clip_weights")


def config_arg(section, value):
    return f"{section}={json.dumps(value)}"


def read_table(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def default_video():
    with open(os.path.join(ROOT, "workflows", "config", "default.yaml")) as f:
        return yaml.safe_load(f)["video"]


# --- the plan, without Snakemake ------------------------------------------------------------------------
def test_plan_of_the_default_config():
    video = default_video()
    ucf = video_plan.table_rows(video, "ucf101")
    assert [r.model for r in ucf] == ["Full3D-S/2-Video", "Factorized-S/2-Video", "PT-DiT/S-Video"]
    # model_defaults + the row's overrides; the PT-DiT row tiles the (8, 8, 8) token grid (8 frames, issue 17)
    # with (4, 2, 2) windows: 2 temporal windows of pf = 4 frames
    assert ucf[2].overrides == {"num_classes": 7, "in_channels": 3, "input_size": 32, "num_frames": 8, "depth": 2,
                                "hidden_size": 64, "num_heads": 1, "patch_size": 4, "learn_sigma": False,
                                "compression_ratio": [4, 2, 2]}
    assert 8 // ucf[2].overrides["compression_ratio"][0] == 2
    assert ucf[0].eval_json(video_plan.stem("ucf101")) == \
        "results/eval/video/ucf101/Full3D-S_2-Video/ddpm/base/s1000/ddim25_cfg3.0.json"   # UCF-101 rows: 1000 steps
    assert len(video_plan.run_index(video)) == 6
    assert video_plan.missing_paths(video) == []
    args = video_plan.evaluate_args(video, "ucf101")
    assert "--metrics fvd,is,fid" in args and "--fid-extractor small-cnn --fid-weights " + video_plan.FRAMES_CNN in args
    assert "--fvd-extractor small-c3d --fvd-weights results/extractor/ucf101/small_c3d.pt" in args
    msr = video_plan.evaluate_args(video, "msrvtt")
    assert "--metrics fvd,clipsim" in msr and "--clip-model small-clip" in msr and "--is-" not in msr
    assert video_plan.built_networks(video, "msrvtt") == ["results/extractor/msrvtt/small_c3d.pt", video_plan.SMALL_CLIP]
    assert video_plan.report_rows(video, "msrvtt")[0]["dataset"] == "msrvtt-standin"


def test_plan_of_several_training_seeds():
    video = default_video()
    video["train"]["seeds"] = [0, 2]
    row = video_plan.report_rows(video, "msrvtt")[1]
    assert row["seeds"] == [0, 2] and row["eval_jsons"] == [
        "results/eval/video/msrvtt/Factorized-S_2-T2V/ddpm/base/s1200/ddim25_cfg3.0.json",   # seed 0: the old path
        "results/eval/video/msrvtt/Factorized-S_2-T2V/ddpm/base/s1200_seed2/ddim25_cfg3.0.json"]
    assert "seeds" not in video_plan.report_rows(default_video(), "msrvtt")[1]


def test_plan_names_each_unset_path_and_wrong_rows():
    video = default_video()
    video["extractors"].update(fvd="i3d", clip="clip")
    video["text_encoder"]["kind"] = "t5"
    assert video_plan.missing_paths(video) == ["video.text_encoder.path", "video.extractors.clip_weights",
                                               "video.extractors.i3d_weights"]
    video["extractors"]["i3d_weights"] = "/w/i3d.pt"
    assert "--fvd-extractor i3d --fvd-weights /w/i3d.pt" in video_plan.evaluate_args(video, "ucf101")
    assert video_plan.built_networks(video, "ucf101") == ["results/extractor/ucf101/small_c3d.pt",
                                                          video_plan.FRAMES_CNN]   # IS still on the stand-in C3D
    real = default_video()
    real["data"]["kind"] = "real"
    assert video_plan.missing_paths(real) == ["video.ucf101.root", "video.msrvtt.root", "video.data.vae"]

    wrong = default_video()
    wrong["ucf101"]["rows"][0]["model"] = "PT-DiT/S-T2V"
    with pytest.raises(ValueError, match="ucf101 rows use names ending in -Video"):
        video_plan.table_rows(wrong, "ucf101")
    clash = default_video()
    clash["msrvtt"]["rows"].append(copy.deepcopy(clash["msrvtt"]["rows"][0]))
    clash["msrvtt"]["rows"][-1]["overrides"]["depth"] = 3
    with pytest.raises(ValueError, match="different overrides"):
        video_plan.run_index(clash)
    counts = default_video()
    counts["evaluate"]["num_clips"] = counts["sample"]["num_samples"] + 1
    with pytest.raises(ValueError, match="video.evaluate.num_clips"):
        video_plan.check_counts(counts)


# --- Snakemake ------------------------------------------------------------------------------------------
needs_snakemake = pytest.mark.skipif(not os.path.exists(SNAKEMAKE), reason="snakemake is not installed")


@needs_snakemake
def test_lint_is_clean_for_the_video_rules():
    assert not lints_about(("video.smk", "rule video_"))


@needs_snakemake
def test_default_config_dry_run(tmp_path):
    done = snakemake(*TARGETS, "-n", "-p", cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    out = done.stdout
    for rule, count in (("video_train", 6), ("video_sample", 6), ("video_evaluate", 6), ("video_encode", 4), ("video_strips", 2),
                        ("video_table", 2), ("video_prepare_standin", 2)):
        assert any(line.split() == [rule, str(count)] for line in out.splitlines()), (rule, out[-2500:])
    assert "--captions results/data/msrvtt/encoded/test" in out and "--labels balanced" in out
    assert "-m 'compression_ratio=[4, 2, 2]'" in out
    # the ImageNet rules take no video file
    assert not any(line.split()[:1] in (["train"], ["sample"], ["evaluate"]) for line in out.splitlines())
    imagenet = snakemake("results/table_imagenet.csv", "-n", cwd=tmp_path)
    assert imagenet.returncode == 0 and "video_" not in imagenet.stdout


@needs_snakemake
def test_seeds_train_sample_and_evaluate_every_row_per_seed(tmp_path):
    seeds = tmp_path / "seeds.yaml"   # merged over default.yaml (--config would pass the seeds as strings)
    seeds.write_text("video: {train: {seeds: [0, 1]}}\n")
    done = snakemake(*TARGETS, "-n", "-p", "--configfile", str(seeds), cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    out = done.stdout
    for rule, count in (("video_train", 12), ("video_sample", 12), ("video_evaluate", 12), ("video_strips", 2)):
        assert any(line.split() == [rule, str(count)] for line in out.splitlines()), (rule, out[-2500:])
    assert "--seed 1 " in out and "--seed 0 " in out
    assert "results/runs/video/msrvtt/PT-DiT_S-T2V/ddpm/base/s1200_seed1/final.pt" in out


LONG_CONFIG = os.path.join(ROOT, "workflows", "config", "video_long.yaml")


def long_video():
    """default.yaml's video section with video_long.yaml layered on it as Snakemake does (dicts merge,
    lists replace)."""
    with open(LONG_CONFIG) as f:
        return merged(default_video(), yaml.safe_load(f)["video"])


def test_video_long_changes_only_the_training_length():
    # its comment promises the default with longer training: a row added to or changed in default.yaml
    # and not in the overlay (or the reverse) fails here
    default, long = default_video(), long_video()
    for dataset in ("ucf101", "msrvtt"):
        short_rows, long_rows = video_plan.table_rows(default, dataset), video_plan.table_rows(long, dataset)
        assert [r.train_steps for r in long_rows] == [3000] * 3
        assert [dataclasses.replace(r, train_steps=0) for r in long_rows] == \
            [dataclasses.replace(r, train_steps=0) for r in short_rows]
    assert {k: v for k, v in long["train"].items() if k != "steps"} == \
        {k: v for k, v in default["train"].items() if k != "steps"}
    assert long["sample"] == default["sample"] and long["data"] == default["data"]


@needs_snakemake
def test_video_long_dry_run_in_its_own_directory(tmp_path):
    done = snakemake(*TARGETS, "-n", "--directory", str(tmp_path / "long"), "--configfile", LONG_CONFIG, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "results/runs/video/ucf101/PT-DiT_S-Video/ddpm/base/s3000/final.pt" in done.stdout
    assert "/s1000/" not in done.stdout and "/s1200/" not in done.stdout
    assert not (tmp_path / "results").exists()   # nothing planned outside the study's folder


@needs_snakemake
def test_paper_config_names_missing_video_paths_then_shows_full_dag(tmp_path):
    (tmp_path / "ref.npz").touch()                 # the ImageNet reference is an input of its evaluations
    imagenet = ("--config", config_arg("imagenet", IMAGENET_PATHS))
    # The video paths are checked when a video table is asked for: an ImageNet-only run needs none of them.
    done = snakemake("results/table_imagenet.csv", "-n", "--configfile", PAPER_CONFIG, *imagenet, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    done = snakemake(*TARGETS, "-n", "--configfile", PAPER_CONFIG, *imagenet, cwd=tmp_path)
    assert done.returncode != 0
    for key in PAPER_VIDEO_KEYS:
        assert key in done.stdout + done.stderr, key
    paths = ("--config", config_arg("imagenet", IMAGENET_PATHS), config_arg("video", VIDEO_PATHS))
    done = snakemake(*TARGETS, "-n", "-p", "--configfile", PAPER_CONFIG, *paths, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    out = done.stdout
    assert "results/runs/video/ucf101/PT-DiT_XL-Video/ddpm/base/s40000/final.pt" in out
    assert "results/eval/video/msrvtt/Full3D-XL_2-T2V/ddpm/base/s40000/ddpm250_cfg1.0.json" in out
    assert "torchrun --standalone --nproc_per_node 8 -m ptdit.cli train" in out
    assert "--vae /weights/sd-vae-ft-ema --vae-kind image" in out and "--image-size 256" in out
    assert "--text-encoder t5 --text-encoder-path /weights/t5-v1_1-xxl --max-tokens 120" in out
    assert "--fvd-extractor i3d --fvd-weights /weights/i3d_torchscript.pt" in out
    assert "--is-extractor c3d --is-weights /weights/c3d_ucf101.pt" in out
    assert "--clip-model clip --clip-weights /weights/clip.bin" in out and "--num-clips 2048" in out
    assert "video_prepare_standin" not in out and "video_extractor" not in out and "video_clip" not in out
    # 3 + 3 rows: train, sample, evaluate each; encode: UCF-101 train, MSR-VTT train + test
    for rule, count in (("video_train", 6), ("video_evaluate", 6), ("video_encode", 4), ("video_strips", 2), ("video_reference", 2)):
        assert any(line.split() == [rule, str(count)] for line in out.splitlines()), (rule, out[-2500:])


@pytest.fixture(scope="module")
def ci_run(tmp_path_factory):
    if not os.path.exists(SNAKEMAKE):
        pytest.skip("snakemake is not installed")
    work = tmp_path_factory.mktemp("video_dag")
    done = snakemake(*TARGETS, "--cores", "2", "--configfile", CI_CONFIG, cwd=work, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return work


def test_ucf101_table_on_the_ci_config(ci_run):
    rows = read_table(ci_run / "results" / "table_ucf101.csv")
    assert [r["attention"] for r in rows] == ATTENTIONS
    assert [r["model"] for r in rows] == ["Full3D-S/2-Video", "Factorized-S/2-Video", "PT-DiT/S-Video"]
    for row in rows:
        assert row["scale"] == "ci" and row["dataset"] == "ucf101-standin" and row["train_steps"] == "10"
        assert row["fvd_extractor"].startswith("small-c3d") and row["is_extractor"].startswith("small-c3d")
        assert row["fid_extractor"].startswith("small-cnn")
        for name in ("fvd", "is", "fid", "params_M", "gflops"):
            assert math.isfinite(float(row[name])), (row["model"], name, row[name])
        # video IS over 2 splits of 8 clips of a 7-class network: exp(KL) lies in [1, 7]
        assert 1.0 <= float(row["is"]) <= 7.0 + 1e-6
        assert (row["num_samples"], row["num_frames"], row["image_size"]) == ("8", "8", "32")
        # issue 17: the samples' class accuracy and correlations, beside the real clips'
        assert 0.0 <= float(row["class_acc"]) <= 1.0 and 0.0 <= float(row["real_class_acc"]) <= 1.0
        assert -1.0 <= float(row["frame_corr"]) <= 1.0 and float(row["real_pixel_corr"]) > 0.5
    by_attention = {r["attention"]: r for r in rows}
    assert float(by_attention["PT-DiT"]["paper_fvd"]) == pytest.approx(598.21)
    assert float(by_attention["3D full"]["paper_is"]) == pytest.approx(28.36)
    assert float(by_attention["2D + 1D"]["paper_fid"]) == pytest.approx(71.23)
    # measured cost of the models as trained: 3-D full attention over 8 x 8 x 8 tokens costs more than
    # PT-DiT's (4, 2, 2) windows at equal width
    assert float(by_attention["3D full"]["gflops"]) > float(by_attention["PT-DiT"]["gflops"])
    assert json.loads(by_attention["PT-DiT"]["model_overrides"])["compression_ratio"] == [4, 2, 2]
    assert "stand-in networks" in (ci_run / "results" / "table_ucf101.md").read_text()


def test_msrvtt_table_on_the_ci_config(ci_run):
    rows = read_table(ci_run / "results" / "table_msrvtt.csv")
    assert [r["attention"] for r in rows] == ATTENTIONS
    assert [r["model"] for r in rows] == ["Full3D-S/2-T2V", "Factorized-S/2-T2V", "PT-DiT/S-T2V"]
    for row in rows:
        assert row["scale"] == "ci" and row["dataset"] == "msrvtt-standin"
        assert row["fvd_extractor"].startswith("small-c3d") and row["clip_model"].startswith("small-clip")
        assert math.isfinite(float(row["fvd"])) and float(row["fvd"]) >= 0
        assert -1.0 <= float(row["clipsim"]) <= 1.0          # a raw cosine
        assert 0.0 <= float(row["class_acc"]) <= 1.0         # the caption's source, by the 3-D CNN
    by_attention = {r["attention"]: r for r in rows}
    assert float(by_attention["PT-DiT"]["paper_clipsim"]) == pytest.approx(0.2331)
    assert float(by_attention["2D + 1D"]["paper_fvd"]) == pytest.approx(509.36)


def test_ci_run_wiring(ci_run):
    """What the rules passed on: each text sample's caption is the evaluation caption (the first) of test
    clip i mod N of the encoded test split; class samples are balanced; the runs trained as configured."""
    with open(ci_run / "results" / "data" / "msrvtt" / "encoded" / "test" / "meta.json") as f:
        captions = [clip[0] for clip in json.load(f)["captions"]]
    sample = ci_run / "results" / "samples" / "video" / "msrvtt" / "PT-DiT_S-T2V" / "sit" / "base" / "s10" / "ode3_cfg1.0.npz"
    with np.load(sample, allow_pickle=False) as z:
        assert z["arr_0"].shape == (8, 8, 32, 32, 3)
        assert list(z["captions"]) == [captions[i % len(captions)] for i in range(8)]
    sample = ci_run / "results" / "samples" / "video" / "ucf101" / "Factorized-S_2-Video" / "sit" / "base" / "s10" / "ode3_cfg1.0.npz"
    with np.load(sample, allow_pickle=False) as z:
        assert list(z["labels"]) == [0, 1, 2, 3, 4, 5, 6, 0]
    run = ci_run / "results" / "runs" / "video" / "ucf101" / "PT-DiT_S-Video" / "sit" / "base" / "s10"
    with open(run / "log.csv") as f:
        assert [line.split(",")[0] for line in f.read().split()[1:]] == ["5", "10"]
    with open(ci_run / "results" / "eval" / "video" / "ucf101" / "PT-DiT_S-Video" / "sit" / "base" / "s10"
              / "ode3_cfg1.0.json") as f:
        result = json.load(f)
    assert result["num_reference"] == 8 and result["reference"] == "results/reference/ucf101/test.npz"
    # per_class names the UCF-101 classes from the reference's class list (classInd order)
    assert result["per_class"] and all(CLASSES[int(c)] == e["class"] for c, e in result["per_class"].items())
    for dataset in ("ucf101", "msrvtt"):   # a frame strip per table (evaluation/report/video_strips.py)
        assert (ci_run / "results" / "figures" / f"samples_{dataset}.png").stat().st_size > 1000


def _metadata_file(work, output):
    """Snakemake's record of how `output` was made (.snakemake/metadata/<base64 of its path>)."""
    folder = work / ".snakemake" / "metadata"
    for name in os.listdir(folder):
        try:
            if base64.urlsafe_b64decode(name).decode() == output:
                return folder / name
        except ValueError:
            continue
    raise AssertionError(f"no metadata for {output} in {folder}")


def test_a_new_standin_design_remakes_the_standin(ci_run):
    """A results/ folder whose stand-in was made with other procedural objects (its record lacks the rule's
    `objects` param, as every folder made before OBJECTS became one) is remade by the default rerun
    triggers, not left for the CLI to refuse."""
    record = _metadata_file(ci_run, "results/data/ucf101/standin/STANDIN")
    original = record.read_text()
    planned = snakemake("results/table_ucf101.csv", "-n", "--configfile", CI_CONFIG, cwd=ci_run)
    assert planned.returncode == 0 and "video_prepare_standin" not in planned.stdout, planned.stdout[-2000:]
    try:
        old = json.loads(original)
        old["params"] = [p for p in old["params"] if p != repr(OBJECTS)]
        record.write_text(json.dumps(old))
        planned = snakemake("results/table_ucf101.csv", "-n", "--configfile", CI_CONFIG, cwd=ci_run)
    finally:
        record.write_text(original)
    assert planned.returncode == 0, planned.stdout[-2000:] + planned.stderr[-2000:]
    assert "rule video_prepare_standin" in planned.stdout and "Params have changed" in planned.stdout

