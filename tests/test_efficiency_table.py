"""results/table_efficiency.csv: every paper number lands in a paper_* column, beside ours."""

import csv
import os

import pytest

from evaluation.efficiency.attention_cost import attention_cost_pct
from evaluation.efficiency.profile import profile_point, write_json_atomic
from evaluation.efficiency.table import COLUMNS, build_rows, claim_rows, measured_row, write_tables
from evaluation.report.paper_efficiency import NUMBERS, paper_values

# The list, written out again so that paper_efficiency.py cannot silently lose one.
EXPECTED = {
    ("DiT-S/2", 256): 6.06, ("DiT-B/2", 256): 23.01, ("DiT-L/2", 256): 80.71, ("DiT-XL/2", 256): 118.64,
    ("DiT-B/2", 512): 106.5, ("DiT-B/2", 1024): 650.2,
    ("DAM-B/2-n64", 256): 22.5, ("DAM-B/2-n64", 512): 90.1, ("DAM-B/2-n64", 1024): 360.6,
    ("PT-DiT/B-Class", 256): 18.3, ("PT-DiT/B-Class", 512): 68.6, ("PT-DiT/B-Class", 1024): 269.6,
    ("PT-DiT/S-Class", 256): 3.8, ("PT-DiT/L-Class", 256): 82.6,
    ("PixArt-alpha-0.6B", 256): 142.8, ("PixArt-alpha-0.6B", 512): 542.5,
    ("PixArt-alpha-0.6B", 1024): 2141.2, ("PixArt-alpha-0.6B", 2048): 8536.1,
    ("PT-DiT/L-T2I", 256): 101.7, ("PT-DiT/L-T2I", 512): 366.1,
    ("PT-DiT/L-T2I", 1024): 1423.9, ("PT-DiT/L-T2I", 2048): 5664.9,
    ("Lumina-Next-1.7B", 256): 1513.9, ("Lumina-Next-1.7B", 2048): 96069.1,
    ("PT-DiT/H-T2I", 256): 302.1, ("PT-DiT/H-T2I", 2048): 16828.3,
}
SPEED = {("DiT-S/2", "train_steps_per_s"): 3.6, ("PT-DiT/S-Class", "train_steps_per_s"): 4.3,
         ("DiT-S/2", "infer_steps_per_s"): 11.76, ("PT-DiT/S-Class", "infer_steps_per_s"): 16.12}
EQ4 = {256: 34.3, 512: 9.7, 1024: 4.7, 2048: 2.3}


def read(path):
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """A table from a few counted points (meta device, no timing) plus the paper-only rows."""
    folder = tmp_path_factory.mktemp("points")
    paths = []
    for model, px in (("DiT-B/2", 256), ("DiT-B/2", 512), ("PT-DiT/B-Class", 512), ("PT-DiT/S-Class", 256)):
        path = folder / f"{model.replace('/', '_')}_{px}.json"
        write_json_atomic(path, profile_point(model, px, timing=False))
        paths.append(path)
    out = folder / "table_efficiency.csv"
    write_tables(paths, out, folder / "claims.csv")
    return read(out), read(folder / "claims.csv")


def row(rows, model, px):
    found = [r for r in rows if r["model"] == model and int(r["resolution"]) == px]
    assert len(found) == 1, (model, px, found)
    return found[0]


def test_contract_columns_come_first(table):
    rows, _ = table
    assert list(rows[0])[:10] == ["model", "resolution", "tokens", "params_M", "gflops", "paper_gflops",
                                  "train_steps_per_s", "infer_steps_per_s", "peak_mem_mb", "device"]
    assert list(rows[0]) == COLUMNS


def test_timed_cpu_rows_say_how_memory_was_allocated(table):
    rows, _ = table
    assert all(r["cpu_allocator"] == "" for r in rows)          # counted points: nothing was timed
    timed = {"model": "DiT-S/2", "resolution": 256, "device": "cpu", "train": {"steps_per_s": 2.0, "batch": 2,
                                                                              "q1_s": 0.5, "q3_s": 0.5}}
    assert measured_row({**timed, "cpu_allocator": "retain"})["cpu_allocator"] == "retain"
    assert measured_row(timed)["cpu_allocator"] == "system"     # a point from before the setting existed


def test_cpu_rows_name_the_instruction_set():
    point = {"model": "DiT-S/2", "resolution": 256, "device": "cpu", "device_name": "AMD EPYC"}
    assert measured_row({**point, "cpu_capability": "AVX2"})["device_name"] == "AMD EPYC (AVX2)"
    assert measured_row(point)["device_name"] == "AMD EPYC"              # a point from before it was recorded
    gpu = {**point, "device": "cuda", "device_name": "NVIDIA H200", "cpu_capability": "AVX512"}
    assert measured_row(gpu)["device_name"] == "NVIDIA H200"            # the host CPU does not name a GPU row


def test_every_listed_paper_gflops_is_in_the_table(table):
    rows, _ = table
    for (model, px), value in EXPECTED.items():
        assert float(row(rows, model, px)["paper_gflops"]) == value, (model, px)


def test_every_paper_number_is_in_the_table(table):
    rows, _ = table
    for number in NUMBERS:
        if "*" in number.model:
            continue
        r = row(rows, number.model, number.resolution or 256)
        assert r[f"paper_{number.quantity}"] != "", number


def test_speed_claims_and_eq4_ratios_are_filled(table):
    rows, _ = table
    for (model, column), value in SPEED.items():
        assert float(row(rows, model, 256)[f"paper_{column}"]) == value
    for px, value in EQ4.items():
        assert paper_values("PT-DiT/B-Class", px)["attn_cost_pct"].value == value
    measured = row(rows, "PT-DiT/B-Class", 512)
    assert float(measured["paper_attn_cost_pct"]) == 9.7
    assert float(measured["attn_cost_pct"]) == pytest.approx(9.77, abs=0.01)


def test_measured_rows_sit_beside_the_paper(table):
    rows, _ = table
    r = row(rows, "DiT-B/2", 512)
    assert r["status"] == "counted" and float(r["gflops"]) == pytest.approx(106.38, abs=0.01)
    assert float(r["paper_gflops"]) == 106.5 and int(r["tokens"]) == 1024
    assert row(rows, "DiT-XL/2", 256)["status"] == "paper_only"


def test_claims_table_has_every_claim(table):
    _, claims = table
    assert [float(c["paper"]) for c in claims] == [1.19, 1.37, 2.41, 1.44, 1.51, 1.51]


def test_eq4_formula_reproduces_the_paper_up_to_2048():
    # tokens, tokens per window: the paper truncates (34.375 -> 34.3).
    for (n, t), paper in zip(((256, 4), (1024, 16), (4096, 64)), (34.3, 9.7, 4.7)):
        assert int(attention_cost_pct(n, t) * 10) / 10 == paper
    assert int(attention_cost_pct(16384, 64) * 10) / 10 == 2.3     # 256 windows, not 64 (see module)


def test_claims_computed_from_timed_rows():
    rows = build_rows([
        {"model": "DiT-S/2", "resolution": 256, "device": "cpu", "dtype": "fp32", "status": "ok", "tokens": 256,
         "infer": {"steps_per_s": 2.0, "batch": 1, "q1_s": 0.5, "q3_s": 0.5}},
        {"model": "PT-DiT/S-Class", "resolution": 256, "device": "cpu", "dtype": "fp32", "status": "ok", "tokens": 256,
         "infer": {"steps_per_s": 3.0, "batch": 1, "q1_s": 0.3, "q3_s": 0.4}},
    ])
    claim = [c for c in claim_rows(rows) if c["quantity"] == "infer_steps_per_s"][0]
    assert claim["ours"] == 1.5 and claim["device"] == "cpu-fp32"


def timed_point(model, infer, train, compiled, gflops=6.0):
    """A timed point as profile_point returns it (the fields the table reads), eager or compiled."""
    return {"model": model, "resolution": 256, "device": "cuda", "dtype": "bf16", "compile": compiled,
            "status": "ok", "tokens": 256, "params": 33e6, "gflops": gflops,
            "infer": {"steps_per_s": infer, "batch": 1, "q1_s": 0.01, "q3_s": 0.011},
            "train": {"steps_per_s": train, "batch": 32, "q1_s": 0.03, "q3_s": 0.031}}


# DiT is faster eager, PT-DiT gains more from compiling: eager and compiled ratios differ, and a
# mixed pair (compiled PT-DiT over eager DiT, or the reverse) gives neither.
EAGER_COMPILED = [timed_point("DiT-S/2", 100.0, 30.0, False), timed_point("PT-DiT/S-Class", 50.0, 15.0, False),
                  timed_point("DiT-S/2", 120.0, 40.0, True), timed_point("PT-DiT/S-Class", 96.0, 36.0, True)]


def test_eager_and_compiled_points_are_two_rows_with_their_own_timings():
    rows = build_rows(EAGER_COMPILED)
    dit = [r for r in rows if r["model"] == "DiT-S/2" and r["resolution"] == 256]
    assert [r["compiled"] for r in dit] == ["false", "true"]          # keyed and sorted by it
    assert [r["train_steps_per_s"] for r in dit] == [30.0, 40.0]
    assert [r["infer_steps_per_s"] for r in dit] == [100.0, 120.0]
    for r in dit:                                                       # the paper's numbers on both
        assert r["paper_train_steps_per_s"] == 3.6 and r["paper_gflops"] == 6.06
    assert not any(r["model"] == "DiT-S/2" and r["resolution"] == 256 and r["status"] == "paper_only" for r in rows)


def test_compiled_column_in_the_csv(tmp_path):
    paths = []
    for i, point in enumerate(EAGER_COMPILED):
        paths.append(tmp_path / f"{i}.json")
        write_json_atomic(paths[-1], point)
    write_tables(paths, tmp_path / "table.csv", tmp_path / "claims.csv")
    table = [r for r in read(tmp_path / "table.csv") if r["model"] == "PT-DiT/S-Class" and r["resolution"] == "256"]
    assert [(r["compiled"], r["train_steps_per_s"]) for r in table] == [("false", "15.0"), ("true", "36.0")]
    assert "compiled" in read(tmp_path / "claims.csv")[0]
    # The figures draw eager and compiled as separate panels, never one line through both.
    from evaluation.efficiency.figures import devices_in, make_figures, read_rows, series
    figure_rows = read_rows(tmp_path / "table.csv")
    assert devices_in(figure_rows, "train_steps_per_s") == [("cuda", "bf16", "false"), ("cuda", "bf16", "true")]
    assert series(figure_rows, "PT-DiT/S-Class", "train_steps_per_s", "cuda", "true") == [(256, 36.0)]
    assert all(os.path.getsize(path) > 1000 for path in make_figures(tmp_path / "table.csv", tmp_path / "figures"))


def test_claims_are_eager_over_eager_and_compiled_over_compiled():
    claims = claim_rows(build_rows(EAGER_COMPILED))
    train = {c["compiled"]: c["ours"] for c in claims if c["quantity"] == "train_steps_per_s"}
    infer = {c["compiled"]: c["ours"] for c in claims if c["quantity"] == "infer_steps_per_s"}
    # PT-DiT / DiT within one setting; mixed pairs would give 36/30 = 1.2, 15/40 = 0.375, 96/100, 50/120.
    assert train == {"false": 0.5, "true": 0.9} and infer == {"false": 0.5, "true": 0.8}
    assert {c["device"] for c in claims if c["quantity"] == "train_steps_per_s"} == {"cuda-bf16"}


def test_gflops_claims_stay_one_row_with_compiled_points():
    points = [timed_point(model, 10.0, 1.0, compiled, gflops) for compiled in (False, True)
              for model, gflops in (("DiT-XL/2", 118.64), ("PT-DiT/L-Class", 82.4))]
    gflops = [c for c in claim_rows(build_rows(points)) if c["quantity"] == "gflops" and c["resolution"] == 256]
    assert [(c["ours"], c["device"], c["compiled"]) for c in gflops] == [(1.44, "counter", None)]


def test_claims_skip_a_setting_that_has_one_side_only():
    # Compiled DiT without compiled PT-DiT: no compiled ratio (and never one against eager PT-DiT).
    claims = claim_rows(build_rows(EAGER_COMPILED[:3]))
    train = [c for c in claims if c["quantity"] == "train_steps_per_s"]
    assert [(c["compiled"], c["ours"]) for c in train] == [("false", 0.5)]
