"""`ptdit models --csv` through the installed console script: every model, params and GFLOPs."""

import csv
import io
import shutil
import subprocess
import sys
from pathlib import Path

import ptdit


def ptdit_command():
    script = Path(sys.executable).parent / "ptdit"
    if script.exists():
        return [str(script)]
    found = shutil.which("ptdit")
    return [found] if found else [sys.executable, "-m", "ptdit.cli"]


def test_models_csv_lists_every_model():
    out = subprocess.run(ptdit_command() + ["models", "--csv"], capture_output=True, text=True, check=True).stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["name"] for r in rows] == ptdit.list_models()
    by_name = {r["name"]: r for r in rows}
    assert int(by_name["DiT-XL/2"]["params"]) == 675_129_632
    assert abs(float(by_name["DiT-XL/2"]["gflops_256"]) - 118.64) < 0.2
    assert float(by_name["PT-DiT/S-Class"]["gflops_256"]) < float(by_name["DiT-S/2"]["gflops_256"])
    assert all(float(r["gflops_256"]) > 0 and int(r["params"]) > 0 for r in rows)


def test_unknown_model_is_a_clear_cli_error():
    import pytest

    from ptdit.cli import main
    with pytest.raises(SystemExit):
        main(["nonsense"])
