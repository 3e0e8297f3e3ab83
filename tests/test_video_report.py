"""The video tables: rebuttal values beside measured ones, attention order, scale/extractor lines, and errors
that name a missing or bad eval JSON."""

import csv
import json
import math

import pytest

from evaluation.report.paper_video import attention_of, paper_video_row
from evaluation.report.video import build_video_table

TINY = {"depth": 1, "hidden_size": 48, "num_heads": 2, "input_size": 16, "in_channels": 3, "num_frames": 8}
CLASS = dict(TINY, num_classes=7)
TEXT = dict(TINY, caption_channels=32, text_tokens=4)


def eval_json(path, **metrics):
    result = {"num_samples": 64, "num_frames": 16, "image_size": 32, "fvd_extractor": "small-c3d-w16-c7",
              "is_extractor": "small-c3d-w16-c7", "fid_extractor": "small-cnn-w32-c7",
              "clip_model": "small-clip-w32+all-MiniLM-L6-v2", **metrics}
    path.write_text(json.dumps(result))
    return str(path)


def rows(tmp_path, suffix, overrides, metrics_by_kind):
    out = []
    for kind, name in (("pt", f"PT-DiT/S-{suffix}"), ("full", f"Full3D-S/2-{suffix}"),
                       ("fact", f"Factorized-S/2-{suffix}")):
        out.append({"model": name, "objective": "ddpm", "train_steps": 100, "sampler": "ddpm", "sample_steps": 10,
                    "cfg": 1.0, "scale": "default", "dataset": f"{suffix}-standin", "model_overrides": overrides,
                    "eval_json": eval_json(tmp_path / f"{kind}.json", **metrics_by_kind[kind])})
    return out


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_attention_names_and_paper_rows():
    assert attention_of("Full3D-XL/2-Video") == "3d-full" and attention_of("Factorized-B/2-T2V") == "2d+1d"
    assert attention_of("PT-DiT/S-T2V") == "pt-dit"
    assert paper_video_row("PT-DiT/B-Video", "ucf101") == {"paper_fvd": 598.21, "paper_is": 29.85, "paper_fid": 64.96,
                                                          "paper_source": paper_video_row("Full3D-S/2-Video",
                                                                                          "ucf101")["paper_source"]}
    assert paper_video_row("Factorized-S/2-T2V", "msrvtt")["paper_clipsim"] == 0.2242
    with pytest.raises(ValueError, match="not a video model"):
        attention_of("PT-DiT/S-Class")


def test_ucf101_table_has_paper_values_beside_measured(tmp_path):
    metrics = {"pt": dict(fvd=50.0, **{"is": 3.0}, fid=20.0), "full": dict(fvd=60.0, **{"is": 2.5}, fid=25.0),
               "fact": dict(fvd=70.0, **{"is": 2.0}, fid=30.0)}
    out_csv, out_md = tmp_path / "table_ucf101.csv", tmp_path / "table_ucf101.md"
    build_video_table(rows(tmp_path, "Video", CLASS, metrics), "ucf101", out_csv, out_md)
    table = read_csv(out_csv)
    assert [r["attention"] for r in table] == ["3D full", "2D + 1D", "PT-DiT"]   # the rebuttal's order
    full, fact, pt = table
    assert (float(full["fvd"]), float(full["paper_fvd"]), float(full["paper_is"]), float(full["paper_fid"])) == (
        60.0, 631.02, 28.36, 66.37)
    assert (float(pt["fid"]), float(pt["paper_fid"])) == (20.0, 64.96) and float(fact["paper_fvd"]) == 679.30
    assert pt["fvd_extractor"] == "small-c3d-w16-c7" and pt["fid_extractor"] == "small-cnn-w32-c7"
    assert pt["dataset"] == "Video-standin" and pt["scale"] == "default"
    # params / GFLOPs of the model as trained: finite, and full 3-D attention costs more than 2-D + 1-D
    assert all(math.isfinite(float(r["gflops"])) and float(r["params_M"]) > 0 for r in table)
    assert float(full["gflops"]) > float(fact["gflops"])
    md = out_md.read_text()
    assert "Scale: default" in md and "small-c3d-w16-c7" in md and "compare rankings" in md
    assert "Qihoo-T2V" in md and "384.03" in md


def test_msrvtt_table_columns(tmp_path):
    metrics = {k: dict(fvd=v, clipsim=0.2 + v / 1000) for k, v in (("pt", 40.0), ("full", 45.0), ("fact", 50.0))}
    out_csv = tmp_path / "table_msrvtt.csv"
    build_video_table(rows(tmp_path, "T2V", TEXT, metrics), "msrvtt", out_csv, tmp_path / "t.md")
    table = read_csv(out_csv)
    assert "is" not in table[0] and "fid" not in table[0]
    pt = table[2]
    assert (float(pt["clipsim"]), float(pt["paper_clipsim"]), float(pt["paper_fvd"])) == (0.24, 0.2331, 409.34)
    assert pt["clip_model"] == "small-clip-w32+all-MiniLM-L6-v2"


def test_sample_checks_show_their_intervals(tmp_path):
    checks = dict(frame_corr=0.871, frame_corr_ci_low=0.84, frame_corr_ci_high=0.9, real_frame_corr=0.737,
                  real_frame_corr_ci_low=0.62, real_frame_corr_ci_high=0.86, frame_corr_gap=0.134,
                  frame_corr_gap_ci_low=0.01, frame_corr_gap_ci_high=0.26, class_acc=0.7)  # no class_acc interval
    metrics = {k: dict(fvd=40.0, clipsim=0.2, **(checks if k == "fact" else {})) for k in ("pt", "full", "fact")}
    out_csv, out_md = tmp_path / "table_msrvtt.csv", tmp_path / "t.md"
    build_video_table(rows(tmp_path, "T2V", TEXT, metrics), "msrvtt", out_csv, out_md)
    fact = read_csv(out_csv)[1]
    assert (float(fact["frame_corr_gap_ci_low"]), float(fact["frame_corr_gap_ci_high"])) == (0.01, 0.26)
    line = next(l for l in out_md.read_text().splitlines() if l.startswith("| Factorized"))
    assert "| 0.871 [0.84, 0.9] | 0.737 [0.62, 0.86] | 0.134 [0.01, 0.26] |" in line and "| 0.7 |" in line
    assert "frame_corr_ci_low" not in out_md.read_text()   # the intervals sit in the cells, not as columns


def test_a_row_of_several_seeds_shows_their_mean_and_spread(tmp_path):
    metrics = {k: dict(fvd=40.0, clipsim=0.2, frame_corr=0.8, frame_corr_gap=0.06) for k in ("pt", "full", "fact")}
    table_rows = rows(tmp_path, "T2V", TEXT, metrics)
    second = eval_json(tmp_path / "fact_seed1.json", fvd=46.0, clipsim=0.3, frame_corr=0.9, frame_corr_gap=0.16)
    table_rows[2].update(seeds=[0, 1], eval_jsons=[table_rows[2]["eval_json"], second])
    out_csv, out_md = tmp_path / "table_msrvtt.csv", tmp_path / "t.md"
    build_video_table(table_rows, "msrvtt", out_csv, out_md)
    fact = read_csv(out_csv)[1]
    assert fact["seeds"] == "2" and float(fact["fvd"]) == 43.0 and float(fact["frame_corr_gap"]) == 0.11
    assert float(fact["fvd_std"]) == pytest.approx(3 * 2 ** 0.5, rel=1e-3)     # (40, 46): sd = 6 / sqrt(2)
    assert float(fact["frame_corr_std"]) == pytest.approx(0.0707, abs=1e-4)
    assert read_csv(out_csv)[0]["seeds"] == "1" and read_csv(out_csv)[0]["fvd_std"] == ""
    md = out_md.read_text()
    assert "| seeds |" in md and "fvd_std" in md and "mean over the row's training seeds" in md


def test_errors_name_the_eval_json(tmp_path):
    metrics = {k: dict(fvd=1.0, clipsim=0.2) for k in ("pt", "full", "fact")}
    good = rows(tmp_path, "T2V", TEXT, metrics)
    missing = [dict(good[0], eval_json=str(tmp_path / "nowhere.json"))]
    with pytest.raises(FileNotFoundError, match="nowhere.json.*ptdit evaluate-video"):
        build_video_table(missing, "msrvtt", tmp_path / "a.csv", tmp_path / "a.md")
    no_clipsim = [dict(good[0], eval_json=eval_json(tmp_path / "partial.json", fvd=1.0))]
    with pytest.raises(ValueError, match="partial.json has no clipsim.*--metrics fvd,clipsim"):
        build_video_table(no_clipsim, "msrvtt", tmp_path / "a.csv", tmp_path / "a.md")
    nan = [dict(good[0], eval_json=eval_json(tmp_path / "nan.json", fvd=float("nan"), clipsim=0.2))]
    with pytest.raises(ValueError, match="nan.json has non-finite metrics: fvd=nan"):
        build_video_table(nan, "msrvtt", tmp_path / "a.csv", tmp_path / "a.md")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ValueError, match="broken.json is not valid JSON"):
        build_video_table([dict(good[0], eval_json=str(tmp_path / "broken.json"))], "msrvtt", tmp_path / "a.csv",
                          tmp_path / "a.md")
    with pytest.raises(ValueError, match="unknown video dataset"):
        build_video_table(good, "kinetics", tmp_path / "a.csv", tmp_path / "a.md")
    assert not (tmp_path / "a.csv").exists()
