"""A broken implementation must fail: mutated copies of shipped and third-party Verilog.

The regression and ``nmsparse crosscheck`` are pointed at another directory of Verilog
(``NMSPARSE_HDL_DIR`` / ``--hdl-dir``); one tie comparison flipped must be caught, with a
first-mismatch report that names the group and decodes inputs, expected and actual outputs.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import seed

from nmsparse import cli
from nmsparse.contract import sidecar
from verif import runner, vectors

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "verif" / "data" / "example_hdl"


def _copy(src_dir: Path, name: str, dst: Path) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for ext in (".v", ".json"):
        shutil.copy(src_dir / f"{name}{ext}", dst / f"{name}{ext}")
    return dst / f"{name}.v"


def flip_first_tie_comparison(v: Path) -> str:
    """Turn the first key comparison ``a >= b`` (lower index wins a tie) into ``a > b``."""
    text = v.read_text()
    for m in re.finditer(r"^.*\s>=\s.*$", text, flags=re.M):
        line = m.group(0)
        if "1'h0" in line or "'d0" in line:  # sign tests, not key comparisons
            continue
        v.write_text(text[: m.start()] + line.replace(">=", ">", 1) + text[m.end():])
        return line.strip()
    pytest.skip(f"no key comparison found to mutate in {v.name}")


def test_mutated_shipped_selector_fails(tmp_path):
    name = "nm_topk_2_4_int8_rank"
    if not (runner.hdl_dir() / f"{name}.v").is_file():
        pytest.skip(f"{name} is not in {runner.hdl_dir()}")
    v = _copy(runner.hdl_dir(), name, tmp_path)
    line = flip_first_tie_comparison(v)
    sc = sidecar.find_module(tmp_path, name)
    scen = [s for s in vectors.regression_scenarios(sc, seed())
            if s.name == "directed edge cases"]
    res = runner.run_vectors(sc, scen, seed=seed(), tag="mutant")
    print(f"mutated: {line}\n{res.failure_text()}")
    assert not res.passed and res.mismatches > 0
    text = res.failure_text()
    assert "MISMATCH at output" in text and "group " in text
    assert "input  data:" in text and "expected mask:" in text and "<-- differs" in text


def test_hdl_dir_regression_and_crosscheck_catch_a_broken_third_party_copy(tmp_path, capsys):
    name = "nm_topk_2_4_int8_example"
    good = tmp_path / "good"
    _copy(EXAMPLE, name, good)
    assert cli.main(["crosscheck", "--pattern", "2:4", "--fmt", "int8", "--activations",
                     "default", "--limit", "600", "--hdl-dir", str(good)]) == 0
    bad = tmp_path / "bad"
    v = _copy(EXAMPLE, name, bad)
    text = v.read_text()
    assert "(i < j && key[i] == key[j])" in text
    v.write_text(text.replace("(i < j && key[i] == key[j])", "(i > j && key[i] == key[j])"))
    out_json = tmp_path / "cc.json"
    rc = cli.main(["crosscheck", "--pattern", "2:4", "--fmt", "int8", "--activations", "default",
                   "--limit", "600", "--hdl-dir", str(bad), "--json", str(out_json)])
    captured = capsys.readouterr()
    assert rc == 1
    assert "MISMATCH" in captured.err and "SmolLM2" not in captured.err
    assert "model.layers." in captured.err  # the report names the tensor, row and group
    import json

    rec = json.loads(out_json.read_text())[0]
    assert rec["module"] == name and rec["mismatches"] > 0 and rec["groups"] == 600
    # the pytest regression itself, pointed at the broken directory
    env = dict(os.environ, NMSPARSE_HDL_DIR=str(bad), PYTHONWARNINGS="ignore")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
         str(REPO / "tests" / "test_verif_regression.py"), "-k", "test_module"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    print(proc.stdout[-3000:])
    assert proc.returncode != 0
    assert "MISMATCH" in proc.stdout and "1 failed" in proc.stdout
