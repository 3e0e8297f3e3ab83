"""FID against compression ratio (issue 16): the plan's rows from the configs, their run folders shared with
the table and ablation rows, and the table writer and figure on fixture eval JSONs."""

import csv
import json
import os

import pytest
import yaml

import ptdit
from evaluation.report.compression import build_compression_table
from evaluation.report.compression_figure import make_compression_figure
from evaluation.report.imagenet_plan import (
    ablation_rows,
    built_window,
    compression_reference_rows,
    compression_report_rows,
    compression_rows,
    run_index,
    table_rows,
    variant_overrides,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DYNAMIC = "dynamic_ratio-1x2x2@0.6+1x4x4@1"


def config(name="default"):
    with open(os.path.join(ROOT, "workflows", "config", f"{name}.yaml")) as f:
        return yaml.safe_load(f)["imagenet"]


def merged(base, extra):
    """Snakemake's config merge: dicts merge, everything else replaces."""
    out = dict(base)
    for key, value in extra.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def test_default_plan_rows_and_shared_runs():
    section = config()
    rows = compression_rows(section)
    assert [(r.objective, r.variant) for r in rows] == [
        (o, v) for o in ("ddpm", "sit") for v in ("compression_ratio-1x1x1", "base", "compression_ratio-1x4x4",
                                                   "compression_ratio-1x8x8", DYNAMIC)]
    assert {r.model for r in rows} == {"PT-DiT/S-Class"}
    assert variant_overrides(DYNAMIC) == {"dynamic_ratio": [[0.6, [1, 2, 2]], [1.0, [1, 4, 4]]]}
    # (1,2,2) is the table row itself; (1,4,4), (1,8,8) and the dynamic ddpm run are the ablation's
    table_runs = {r.run_dir("standin") for r in table_rows(section)}
    ablation_runs = {r.run_dir("standin") for r in ablation_rows(section)}
    by_key = {(r.objective, r.variant): r.run_dir("standin") for r in rows}
    assert by_key[("ddpm", "base")] in table_runs and by_key[("sit", "base")] in table_runs
    for variant in ("compression_ratio-1x4x4", "compression_ratio-1x8x8", DYNAMIC):
        assert by_key[("ddpm", variant)] in ablation_runs
    new = set(by_key.values()) - table_runs - ablation_runs
    assert len(new) == 5                      # ddpm (1,1,1); sit (1,1,1), (1,4,4), (1,8,8), dynamic
    index = run_index(section)                # one folder per run, the overrides agreeing
    assert len(index) == len(table_runs | ablation_runs | set(by_key.values())) == 23
    refs = compression_reference_rows(section)
    assert [(r.model, r.objective) for r in refs] == [("DiT-S/2", "ddpm"), ("SiT-S/2", "sit")]
    assert {r.eval_json("standin") for r in refs} <= {r.eval_json("standin") for r in table_rows(section)}
    report = compression_report_rows(section)
    assert [r["role"] for r in report] == ["pt-dit"] * 10 + ["reference"] * 2


def test_the_plan_reads_the_built_window_as_the_model_does():
    for overrides in ({"input_size": 32}, {"input_size": 64}, {"input_size": 32, "compression_ratio": [1, 4, 4]},
                      {"input_size": 32, "patch_size": 4}):
        assert built_window("PT-DiT/S-Class", overrides) == ptdit.get_spec("PT-DiT/S-Class").build_config(**overrides).window


def test_paper_and_ci_plans():
    paper = config("paper")
    assert [r.variant for r in compression_rows(paper)][:4] == ["compression_ratio-1x1x1", "base", "compression_ratio-1x4x4",
                                                               "compression_ratio-1x8x8"]
    with open(os.path.join(ROOT, "tests", "imagenet_ci.yaml")) as f:
        ci = merged(config(), yaml.safe_load(f)["imagenet"])
    rows = compression_rows(ci)
    known = {r.run_key for r in table_rows(ci) + ablation_rows(ci)}
    assert len({r.run_key for r in rows} - known) == 1          # the sit dynamic run; ddpm's is the ablation's
    section = dict(config(), compression={"model": "PT-DiT/S-Class", "objectives": ["ddpm"], "ratios": [[1, 2, 2]],
                                          "reference": [{"model": "DiT-B/2", "objective": "ddpm"}]})
    with pytest.raises(ValueError, match="imagenet.compression.reference names DiT-B/2"):
        compression_reference_rows(section)


METRICS = {"fid": 30.0, "sfid": 5.0, "is": 3.0, "precision": 0.5, "recall": 0.4, "class_acc": 0.6}


def write_eval(path, fid, spread=1.0):
    result = {**METRICS, "fid": fid, "feature_extractor": "small-cnn-test", "num_samples": 64}
    for metric, value in result.copy().items():
        if metric in METRICS:
            result[f"{metric}_ci_low"], result[f"{metric}_ci_high"] = value - spread, value + spread
    path.write_text(json.dumps(result))
    return str(path)


def test_table_and_figure_from_fixture_evals(tmp_path):
    shape = {"depth": 1, "hidden_size": 32, "num_heads": 2, "num_classes": 10, "in_channels": 3, "input_size": 32}
    schedule = [[0.6, [1, 2, 2]], [1.0, [1, 4, 4]]]
    base = {"objective": "ddpm", "train_steps": 30, "sampler": "ddpm", "sample_steps": 25, "cfg": 1.0,
            "dataset": "standin", "scale": "ci"}
    rows = [{**base, "model": "PT-DiT/S-Class", "role": "pt-dit", "model_overrides": {**shape, **extra},
             "eval_json": write_eval(tmp_path / f"{name}.json", fid)}
            for name, extra, fid in (("r111", {"compression_ratio": [1, 1, 1]}, 20.0), ("r122", {}, 25.0),
                                     ("r144", {"compression_ratio": [1, 4, 4]}, 40.0),
                                     ("dyn", {"dynamic_ratio": schedule}, 30.0))]
    rows.append({**base, "model": "DiT-S/2", "role": "reference", "model_overrides": shape,
                 "eval_json": write_eval(tmp_path / "dit.json", 26.0)})
    table = build_compression_table(rows, tmp_path / "table_compression.csv", tmp_path / "table_compression.md")
    with open(tmp_path / "table_compression.csv") as f:
        written = list(csv.DictReader(f))
    assert [r["compression_ratio"] for r in written] == ["1x1x1", "1x2x2", "1x4x4", "dynamic", ""]
    assert written[3]["dynamic_ratio"] == "1x2x2@0.6+1x4x4@1"
    for column in ("model", "objective", "compression_ratio", "gflops", "params_M", "fid", "fid_ci_low", "fid_ci_high",
                   "class_acc"):
        assert column in written[0]
    gflops = [float(r["gflops"]) for r in written]
    assert gflops[0] > gflops[1] > gflops[2]                 # larger windows, fewer proxies: cheaper
    assert gflops[2] < gflops[3] < gflops[1]                 # the dynamic mean lies between its two ratios
    assert len({r["params_M"] for r in written[:4]}) == 1    # one set of weights at every ratio
    assert [r["fid_vs_reference"] for r in written] == ["better than DiT-S/2", "overlaps", "worse than DiT-S/2",
                                                        "worse than DiT-S/2", ""]
    assert float(written[0]["fid_ci_low"]) == 19.0 and float(written[0]["fid_ci_high"]) == 21.0
    assert "compression ratio" in (tmp_path / "table_compression.md").read_text()
    paths = make_compression_figure(table, str(tmp_path / "figures"))
    assert [os.path.basename(p) for p in paths] == ["fid_vs_compression.png", "fid_vs_compression.pdf"]
    assert all(os.path.getsize(p) > 1000 for p in paths)
    with pytest.raises(ValueError, match="role"):
        build_compression_table([{**rows[0], "role": "other"}], tmp_path / "x.csv", tmp_path / "x.md")
