"""Training seeds of the ImageNet comparison (issue 15): seed 0 keeps the seedless paths, other seeds get
their own, and the table reports the mean and ddof-1 standard deviation over seeds."""

import copy
import csv
import os

import numpy as np
import pytest
import yaml

from evaluation.report.imagenet import build_imagenet_table
from evaluation.report.imagenet_plan import ablation_rows, compression_rows, eval_paths, report_rows, table_rows
from tests.test_imagenet_report import fake_eval, row

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def default():
    with open(os.path.join(ROOT, "workflows/config/default.yaml")) as f:
        return yaml.safe_load(f)


def test_seed_zero_keeps_paths_other_seeds_get_their_own(default):
    plain = default["imagenet"]
    seeded = copy.deepcopy(plain)
    seeded["rows"][0]["seeds"] = [0, 1]
    before, after = table_rows(plain), table_rows(seeded)
    assert [r.eval_json("d") for r in before] == [r.eval_json("d") for r in after]   # seed 0: unchanged
    zero, one = after[0].per_seed()
    assert zero.run_dir("d") == before[0].run_dir("d")
    assert one.run_dir("d") == before[0].run_dir("d") + "_seed1"
    assert one.eval_json("d") not in eval_paths(before, "d")
    old, new = eval_paths(before, "d"), eval_paths(after, "d")
    assert set(old) < set(new) and one.eval_json("d") in new
    assert all("_seed1/" in p for p in set(new) - set(old))   # the row and the ToMe rows that sample its runs
    entry, ds = report_rows(after, seeded)[0], seeded["dataset"]
    assert entry["seeds"] == [0, 1] and entry["eval_jsons"] == [zero.eval_json(ds), one.eval_json(ds)]
    assert entry["eval_json"] == before[0].eval_json(ds)
    assert "seeds" not in report_rows(before, plain)[0]


def test_config_seeds_apply_to_every_row_and_a_rows_own_list_wins(default):
    section = copy.deepcopy(default["imagenet"])
    section["train"]["seeds"] = [0, 1, 2]
    section["rows"][0]["seeds"] = [3]
    rows = table_rows(section)
    assert rows[0].seeds == (3,) and rows[0].run_dir("d").endswith("_seed3")
    assert all(r.seeds == ((3,) if r.tome_ratio else (0, 1, 2)) for r in rows[1:])   # ToMe: the DiT row's
    # ablation and compression rows stay single-seed: the first seed of the row they are based on
    assert all(len(r.seeds) == 1 for r in ablation_rows(section) + compression_rows(section))
    section["rows"][0]["seeds"] = [1, 1]
    with pytest.raises(ValueError, match="distinct"):
        table_rows(section)


def test_tome_rows_follow_the_seeds_of_the_row_they_sample(default):
    section = copy.deepcopy(default["imagenet"])
    section["tome"] = {"model": "DiT-S/2", "objective": "ddpm", "ratios": [0.25]}
    for spec in section["rows"]:
        if (spec["model"], spec["objective"]) == ("DiT-S/2", "ddpm"):
            spec["seeds"] = [0, 2]
    tome = [r for r in table_rows(section) if r.tome_ratio]
    if not tome:
        pytest.skip("the default config has no DiT-S/2 ddpm row")
    assert tome[0].seeds == (0, 2)
    assert tome[0].per_seed()[1].samples("d").endswith("_seed2/" + tome[0].sample_name() + ".npz")


def test_table_reports_mean_and_std_over_seeds(tmp_path):
    fids, accs = [30.0, 27.5, 33.25], [0.41, 0.47, 0.52]
    paths = [fake_eval(tmp_path / f"seed{i}.json", f, class_acc=a, fid_ci_low=f - 2, fid_ci_high=f + 3)
             for i, (f, a) in enumerate(zip(fids, accs))]
    seeded = row(tmp_path, 0, "DiT-S/2", "ddpm", 0.0, eval_json=paths[0], eval_jsons=paths, seeds=[0, 1, 2])
    single = row(tmp_path, 1, "PT-DiT/S-Class", "ddpm", 20.0)
    build_imagenet_table([seeded, single], tmp_path / "t.csv", tmp_path / "t.md", reference=False)
    with open(tmp_path / "t.csv") as f:
        table = list(csv.DictReader(f))
    got = table[0]
    assert got["seeds"] == "3" and table[1]["seeds"] == "1" and table[1]["fid_std"] == ""
    assert float(got["fid"]) == pytest.approx(np.mean(fids), rel=1e-5)
    assert float(got["fid_std"]) == pytest.approx(np.std(fids, ddof=1), rel=1e-4)
    assert float(got["class_acc"]) == pytest.approx(np.mean(accs), rel=1e-4)
    assert float(got["class_acc_std"]) == pytest.approx(np.std(accs, ddof=1), rel=1e-4)
    assert float(got["sfid_std"]) == pytest.approx(np.std(np.array(fids) / 3, ddof=1), rel=1e-4)
    assert float(got["is_std"]) == 0.0                  # the same IS in every seed
    # intervals: the mean of the per-seed bounds
    assert float(got["fid_ci_low"]) == pytest.approx(np.mean(fids) - 2, rel=1e-5)
    assert float(got["fid_ci_high"]) == pytest.approx(np.mean(fids) + 3, rel=1e-5)
    md = (tmp_path / "t.md").read_text()
    assert "| seeds | fid_std |" in md


def test_schema_accepts_seeds_and_refuses_bad_ones(default):
    from snakemake.utils import validate

    schema = os.path.join(ROOT, "workflows/config/schema.yaml")
    config = copy.deepcopy(default)
    config["imagenet"]["rows"][0]["seeds"] = [0, 1, 2]
    config["imagenet"]["train"]["seeds"] = [0, 1]
    validate(config, schema)
    for bad in ([], [0, 0], [-1], ["a"]):
        config["imagenet"]["rows"][0]["seeds"] = bad
        with pytest.raises(Exception):
            validate(copy.deepcopy(config), schema)
