"""The quality report: table_imagenet / table_ablation (.csv, .md) and their figures, from fake eval
JSONs and training logs; paper values beside ours, costs measured on the model as trained."""

import csv
import json
import math

import pytest

from evaluation.efficiency.flops import model_gflops
from evaluation.report.imagenet import ABLATION_COLUMNS, IMAGENET_COLUMNS, build_ablation_table, build_imagenet_table
from evaluation.report.imagenet_figures import (LABEL_HEIGHT, LABEL_TOP, label_position, make_imagenet_figures,
                                              moving_average)
from evaluation.report.paper_quality import paper_ablation, paper_row
from ptdit.cli.report import add_parser

SMALL = {"depth": 2, "hidden_size": 64, "num_heads": 2, "in_channels": 3}
RUNS = [("DiT-S/2", "ddpm", 30.0), ("PT-DiT/S-Class", "ddpm", 28.0), ("PT-DiT/S-Class", "sit", 25.0),
        ("Agent-DiT-S/2", "ddpm", 33.0)]


def fake_eval(path, fid, **changes):
    result = {"fid": fid, "sfid": fid / 3, "is": 4.2, "is_std": 0.1, "precision": 0.5, "recall": 0.4,
              "num_samples": 200, "feature_extractor": "small-cnn", "samples": "x.npz"}
    result.update(changes)
    path.write_text(json.dumps(result))
    return str(path)


def fake_run(folder, seed):
    folder.mkdir()
    lines = ["step,loss,grad_norm,lr,steps_per_s,images_per_s,data_share"]
    lines += [f"{s},{1.0 / (1 + s / 50) + 0.05 * ((s * seed) % 7) / 7:.4f},1.0,0.0001,2.0,64.0,0.1"
              for s in range(10, 410, 10)]
    (folder / "log.csv").write_text("\n".join(lines) + "\n")
    return str(folder)


def row(tmp_path, i, model, objective, fid, **extra):
    r = {"model": model, "objective": objective, "train_steps": 400, "sampler": "ddpm" if objective == "ddpm"
         else "sde", "sample_steps": 50, "cfg": 1.0, "model_overrides": dict(SMALL),
         "eval_json": fake_eval(tmp_path / f"eval{i}.json", fid), "run_dir": fake_run(tmp_path / f"run{i}", i + 1),
         "dataset": "imagenet-standin", "scale": "default"}
    r.update(extra)
    return r


def read(path):
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def imagenet(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    rows = [row(tmp, i, *run) for i, run in enumerate(RUNS)]
    build_imagenet_table(rows, tmp / "table_imagenet.csv", tmp / "table_imagenet.md")
    return tmp, rows, read(tmp / "table_imagenet.csv")


def test_columns_and_order(imagenet):
    _, rows, table = imagenet
    assert list(table[0]) == IMAGENET_COLUMNS
    assert IMAGENET_COLUMNS[:11] == ["dataset", "scale", "feature_extractor", "model", "objective", "train_steps",
                                     "sampler", "sample_steps", "cfg", "params_M", "gflops"]
    ours = [r for r in table if r["kind"] == "measured"]
    assert [(r["model"], r["objective"]) for r in ours] == [(m, o) for m, o, _ in RUNS]
    assert table[:len(ours)] == ours                            # ours first, the reference rows after
    assert all(r["feature_extractor"] == "small-cnn" and r["scale"] == "default" for r in ours)


def test_reference_rows_are_paper_only_with_their_source(imagenet):
    _, _, table = imagenet
    refs = {r["model"]: r for r in table if r["kind"] == "paper_only"}
    assert {"DiT-XL/2", "DiT-XL/2-G", "SiT-XL/2", "SiT-XL/2-G", "MDT-XL/2-G", "MDTv2-XL/2-G", "VAR-d16",
            "VAR-d30"} <= set(refs)
    for r in refs.values():
        assert r["fid"] == "" and r["gflops"] == "" and r["eval_json"] == ""   # nothing measured by us
        assert r["source"] and r["source"] == r["paper_source"]
        assert math.isfinite(float(r["paper_fid"]))
    # DiT paper Table 2: 9.62 without guidance, 2.27 at cfg 1.5; 118.6 GFLOPs
    assert [float(refs[m]["paper_fid"]) for m in ("DiT-XL/2", "DiT-XL/2-G")] == [9.62, 2.27]
    assert float(refs["DiT-XL/2-G"]["cfg"]) == 1.5 and float(refs["DiT-XL/2"]["paper_gflops"]) == 118.6
    assert "Table 2" in refs["DiT-XL/2"]["source"]
    # VAR publishes no GFLOPs comparable with one DiT forward: the cell stays empty
    assert all(refs[m]["paper_gflops"] == "" for m in refs if m.startswith(("VAR", "MDT")))
    assert float(refs["VAR-d16"]["paper_params_M"]) == 310.0


def test_markdown_header_names_our_scale_only(imagenet):
    tmp, _, _ = imagenet
    text = (tmp / "table_imagenet.md").read_text()
    assert "Scale: default;" in text and "paper_only" in text and "| VAR-d30 |" in text


def test_paper_values_beside_ours(imagenet):
    _, _, table = imagenet
    by = {(r["model"], r["objective"]): r for r in table}
    assert float(by["DiT-S/2", "ddpm"]["paper_fid"]) == 68.40
    assert by["DiT-S/2", "ddpm"]["paper_sfid"] == ""          # the rebuttal prints only the FID
    pt_sit = by["PT-DiT/S-Class", "sit"]
    assert [float(pt_sit[f"paper_{k}"]) for k in ("fid", "sfid", "is", "precision", "recall", "params_M", "gflops")] \
        == [55.05, 9.37, 26.86, 0.42, 0.59, 32.5, 3.8]
    assert float(by["PT-DiT/S-Class", "ddpm"]["paper_fid"]) == 65.86
    assert all(by["Agent-DiT-S/2", "ddpm"][c] == "" for c in table[0] if c.startswith("paper_"))


def test_costs_are_the_model_as_trained(imagenet):
    _, _, table = imagenet
    for r in (r for r in table if r["kind"] == "measured"):
        params, gflops = model_gflops(r["model"], **SMALL)
        assert float(r["params_M"]) == pytest.approx(params / 1e6, rel=1e-3)
        assert float(r["gflops"]) == pytest.approx(gflops, rel=1e-3)
        assert float(r["params_M"]) < 1.0           # not the paper-size model
        assert all(math.isfinite(float(r[m])) for m in ("fid", "sfid", "is", "precision", "recall"))


def test_markdown_names_scale_and_extractor(imagenet):
    tmp, _, _ = imagenet
    text = (tmp / "table_imagenet.md").read_text()
    assert "Scale: default" in text and "feature extractor: small-cnn" in text
    assert "not ImageNet-256" in text and "| PT-DiT/S-Class | sit |" in text


def test_html_page_holds_the_markdown_table(imagenet):
    """results/table_imagenet.html (what `snakemake --report` shows): every Markdown cell, escaped, in its row."""
    import html.parser

    tmp, _, _ = imagenet
    md = (tmp / "table_imagenet.md").read_text()
    md_rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in md.splitlines()
               if line.startswith("|") and not set(line) <= set("|-: ")]

    class Cells(html.parser.HTMLParser):
        def __init__(self):
            super().__init__()
            self.rows, self.cell = [], None

        def handle_starttag(self, tag, attrs):
            if tag == "tr":
                self.rows.append([])
            elif tag in ("td", "th"):
                self.cell = ""

        def handle_endtag(self, tag):
            if tag in ("td", "th"):
                self.rows[-1].append(self.cell)
                self.cell = None

        def handle_data(self, data):
            if self.cell is not None:
                self.cell += data

    page = Cells()
    page.feed((tmp / "table_imagenet.html").read_text())
    assert page.rows == md_rows and len(md_rows) > 10
    assert "<strong>Scale: default;" in (tmp / "table_imagenet.html").read_text()


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), None])
def test_non_finite_metric_names_the_file(tmp_path, bad):
    rows = [row(tmp_path, 0, "DiT-S/2", "ddpm", 30.0)]
    rows[0]["eval_json"] = fake_eval(tmp_path / "broken_eval.json", 30.0, sfid=bad)
    with pytest.raises(ValueError, match=r"broken_eval\.json.*sfid"):
        build_imagenet_table(rows, tmp_path / "t.csv", tmp_path / "t.md")
    assert not (tmp_path / "t.csv").exists()


def test_missing_metric_names_the_file(tmp_path):
    rows = [row(tmp_path, 0, "DiT-S/2", "ddpm", 30.0)]
    rows[0]["eval_json"] = fake_eval(tmp_path / "fid_only.json", 30.0)
    data = json.loads((tmp_path / "fid_only.json").read_text())
    del data["recall"]
    (tmp_path / "fid_only.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"fid_only\.json has no recall"):
        build_imagenet_table(rows, tmp_path / "t.csv", tmp_path / "t.md")


def test_figures_written(imagenet):
    tmp, rows, table = imagenet
    paths = make_imagenet_figures(table, rows, tmp / "figures")
    names = sorted(p.rsplit("/", 1)[-1] for p in paths)
    assert names == ["fid_vs_gflops.pdf", "fid_vs_gflops.png", "training_loss.pdf", "training_loss.png"]
    for name in names:
        assert (tmp / "figures" / name).stat().st_size > 1000


def test_stacked_labels_stay_apart_and_inside_the_panel():
    """Five points at one place near the top of a panel (the paper's S models): each label gets its own
    line and none rises into the title."""
    placed = []
    for _ in range(5):
        placed.append((0.1, label_position(0.1, 0.9, placed)))
    ys = sorted(y for _, y in placed)
    assert max(ys) <= LABEL_TOP and min(ys) >= 0
    assert all(b - a >= LABEL_HEIGHT - 1e-9 for a, b in zip(ys, ys[1:])), ys
    assert label_position(0.8, 0.9, placed) == 0.9      # a label far to the right keeps its height


def test_moving_average():
    assert moving_average([1.0, 3.0, 5.0, 7.0], 2) == [1.0, 2.0, 4.0, 6.0]


def test_paper_lookups():
    assert paper_row("DAM-S/2-n64", "sit")["paper_fid"] == 53.57
    assert paper_row("DAM-S/2-n16", "sit")["paper_fid"] == 54.55
    assert paper_row("SiT-XL/2", "sit", train_steps=400_000)["paper_fid"] == 17.2
    assert paper_row("DiT-XL/2", "ddpm")["paper_fid"] == 9.62          # the rebuttal's 7M-step row first
    assert paper_row("DiT-B/2", "ddpm")["paper_gflops"] == 23.01        # borrowed from paper_efficiency.py
    assert paper_row("DiT-S/2", "sit") == {}
    assert paper_ablation("modules", "no_tcm")["paper_fid"] == 69.07
    assert paper_ablation("compression_ratio", "1,8,8")["paper_fid"] == 20.43
    sim = paper_ablation("proxy_mode", "similarity")
    assert (sim["paper_fid"], sim["paper_gflops"], sim["paper_params_M"]) == (19.25, 4.01, 32.6)


def test_ablation_table(tmp_path):
    pt = "PT-DiT/S-Class"
    settings = [{}, {"proxy_mode": "top_left"}, {"compression_ratio": [1, 4, 4]}, {"proxy_mode": "similarity"},
                {"modules": "no_giim"}]
    rows = [row(tmp_path, i, pt, "ddpm", 20.0 + i, model_overrides={**SMALL, **s}) for i, s in enumerate(settings)]
    build_ablation_table(rows, tmp_path / "table_ablation.csv", tmp_path / "table_ablation.md")
    table = read(tmp_path / "table_ablation.csv")
    assert list(table[0]) == ABLATION_COLUMNS
    got = [(r["group"], r["paper_fid"]) for r in table]
    assert got == [("(a)", "23.71"), ("(b)", "20.84"), ("similarity", "19.25"), ("(d)", "21.24"), ("full", "19.3")]
    assert "Table 2" in (tmp_path / "table_ablation.md").read_text()


def test_ablation_full_model_is_the_plans_base_row_on_a_small_grid(tmp_path):
    """Patch 4 on 32 px: an 8 x 8 grid, where the 64-window default would be (1,1,1). The base row sets
    (1,2,2); it is the full model, and (1,4,4) is the (d) row, not a second full model."""
    base = {**SMALL, "patch_size": 4, "input_size": 32, "compression_ratio": [1, 2, 2]}
    rows = [row(tmp_path, 0, "PT-DiT/S-Class", "ddpm", 20.0, model_overrides=base, variant="base"),
            row(tmp_path, 1, "PT-DiT/S-Class", "ddpm", 21.0, model_overrides={**base, "compression_ratio": [1, 4, 4]},
                variant="compression_ratio-1x4x4")]
    table = build_ablation_table(rows, tmp_path / "a.csv", tmp_path / "a.md")
    assert [(r["group"], r["setting"]) for r in table] == [
        ("(d)", "compression ratio (1,4,4)"), ("full", "full model (mean proxy, cross-attention, (1,2,2))")]


def test_ablation_row_changing_two_switches_is_refused(tmp_path):
    rows = [row(tmp_path, 0, "PT-DiT/S-Class", "ddpm", 20.0,
                model_overrides={**SMALL, "proxy_mode": "random", "injection": "linear"})]
    with pytest.raises(ValueError, match="changes 2 switches"):
        build_ablation_table(rows, tmp_path / "a.csv", tmp_path / "a.md")


def test_cli_verbs(tmp_path):
    import argparse

    import yaml

    rows = [row(tmp_path, 0, "DiT-S/2", "ddpm", 30.0)]
    (tmp_path / "rows.yaml").write_text(yaml.safe_dump(rows))
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["report-imagenet", "--rows", str(tmp_path / "rows.yaml"), "--out-dir",
                              str(tmp_path / "out"), "--no-figures"])
    args.func(args)
    assert read(tmp_path / "out" / "table_imagenet.csv")[0]["paper_fid"] == "68.4"
    args = parser.parse_args(["report-ablation", "--rows", str(tmp_path / "rows.yaml"), "--out-dir",
                              str(tmp_path / "out")])
    with pytest.raises(ValueError, match="PT-DiT models"):
        args.func(args)
