"""Verify an AXI4-Stream wrapper (``nmsparse generate --axis``) against the golden model.

The wrapper's sidecar (``axis_<module>.json``) carries the inner unit's sidecar under
``wraps``; the stimulus and expected outputs come from the same golden-model helpers as the
stream testbench (:mod:`verif.vectors`), then move into AXI4-Stream beats and frames::

    golden groups / rows ──► inner payloads ──► tdata beats (MAC: `last` ──► tlast)
                                                 frames (tlast on each frame's last beat)
    cocotbext-axi AxiStreamSource ──► wrapper ──► AxiStreamSink ──► bit-exact compare

Top-k frames are runs of 1..7 groups (``m_axis_tlast`` must close the same runs); MAC frames
are rows, and each row's result is a one-beat frame. Each scenario runs under a pause pattern
on the source (idle cycles) and on the sink (back-pressure).

This module runs in the pytest or CLI process; it never imports ``gen`` (third-party AXIS
wrappers with such a sidecar verify the same way).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from pathlib import Path

import torch

from nmsparse.contract import toolchain
from nmsparse.contract.sidecar import Sidecar, parse_sidecar

from . import vectors
from .runner import BUILD_ARGS, SimError, _environ, _tail, default_build_root, runtime_key

__all__ = ["AXIS_SCENARIOS", "load_axis_sidecar", "axis_vectors", "run_axis"]

#: (name, source pauses, sink pauses); a pause pattern's 1 = no transfer that cycle
AXIS_SCENARIOS = (
    ("full rate", "none", "none"),
    ("back-pressure random", "none", "random:0.5"),
    ("idle and back-pressure", "random:0.3", "cycle:1,1,0"),
    ("stall every other cycle", "cycle:0,1", "cycle:0,1"),
)


def load_axis_sidecar(path: str | Path) -> tuple[dict, Sidecar]:
    """The wrapper's sidecar document and the inner unit's :class:`Sidecar`.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Not an AXI4-Stream sidecar.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"AXI4-Stream sidecar {p} does not exist")
    doc = json.loads(p.read_text())
    if doc.get("interface") != "axi4-stream" or "wraps" not in doc:
        raise ValueError(f"{p} is not an AXI4-Stream wrapper sidecar (no interface "
                         "'axi4-stream' with 'wraps')")
    return doc, parse_sidecar(doc["wraps"], str(p))


def _strip_last(payload: int, off: int) -> tuple[int, int]:
    """Inner MAC input payload -> (tdata without the ``last`` bit, tlast)."""
    low = payload & ((1 << off) - 1)
    return low | ((payload >> (off + 1)) << off), (payload >> off) & 1


def axis_vectors(doc: dict, sc: Sidecar, seed: int, *, groups: int = 200) -> dict:
    """The vector file of :mod:`verif.cocotb_axis`: scenarios of frames and expected frames."""
    rng = random.Random(seed)
    scen = []
    for k, (name, idle, bp) in enumerate(AXIS_SCENARIOS):
        s = seed + 17 * k
        if sc.unit == "topk":
            bits = torch.cat([vectors.edge_groups(sc, s), vectors.random_groups(sc, groups, s)])
            ph = vectors.topk_phase(sc, bits)
            frames, expected, t = [], [], 0
            while t < len(ph.inputs):
                n = min(rng.randint(1, 7), len(ph.inputs) - t)
                frames.append(ph.inputs[t:t + n])
                expected.append(ph.expected[t:t + n])
                t += n
        else:
            rows = vectors._mac_rows(sc, max(12, groups // 4), s, max_groups=5,
                                     extreme=k == 0)
            ph = vectors.mac_phase(sc, rows)
            off = sc.i.fields["last"].offset
            frames, cur = [], []
            for h in ph.inputs:
                tdata, tlast = _strip_last(int(h, 16), off)
                cur.append(f"{tdata:x}")
                if tlast:
                    frames.append(cur)
                    cur = []
            if cur:
                raise AssertionError("a MAC row without `last`")
            expected = [[h] for h in ph.expected]
        scen.append({"name": name, "idle": idle, "backpressure": bp, "frames": frames,
                     "expected": expected})
    return {"module": doc["module"], "seed": seed,
            "s_bytes": doc["ports"]["s_axis_tdata"]["width"] // 8,
            "m_bytes": doc["ports"]["m_axis_tdata"]["width"] // 8, "scenarios": scen}


def _build(doc: dict, verilog: Path, build_root: Path) -> Path:
    from cocotb_tools.runner import VerilatorControlFile, get_runner
    from filelock import FileLock

    toolchain.setup(verilator=True)
    h = hashlib.sha256(verilog.read_bytes())
    h.update(" ".join(BUILD_ARGS).encode())
    h.update(runtime_key().encode())
    bdir = build_root / f"{doc['module']}-{h.hexdigest()[:12]}"
    bdir.parent.mkdir(parents=True, exist_ok=True)
    stamp = bdir / "nmsparse-build.ok"
    with FileLock(str(bdir) + ".lock"):
        if stamp.is_file():
            return bdir
        bdir.mkdir(parents=True, exist_ok=True)
        vlt = bdir / "ports.vlt"
        vlt.write_text("`verilator_config\n" + "".join(
            f'public_flat_rw -module "{doc["module"]}" -var "{p}"\n' for p in doc["ports"]))
        log = bdir / "build.log"
        objcache = Path(__file__).with_name("objcache.py")
        makeflags = (os.environ.get("MAKEFLAGS", "") + f" OBJCACHE={objcache}").strip()
        try:
            with _environ(MAKEFLAGS=makeflags, NMSPARSE_OBJCACHE=str(build_root / ".objcache")):
                get_runner("verilator").build(
                    sources=[verilog, VerilatorControlFile(vlt)], hdl_toplevel=doc["module"],
                    build_dir=bdir, build_args=BUILD_ARGS, log_file=log)
        except (RuntimeError, SystemExit) as exc:
            raise SimError(f"building {doc['module']} failed ({exc}); log {log}:\n"
                           f"{_tail(log)}") from None
        stamp.write_text("ok")
    return bdir


def run_axis(sidecar_path: str | Path, *, seed: int, groups: int = 200,
             build_root: str | Path | None = None) -> dict:
    """Build the wrapper with Verilator and run every scenario; return the summary
    (``scenarios``: name, frames, beats (output), in_beats, mismatches, reports, ok;
    ``passed``; ``log``).

    Raises
    ------
    SimError
        The build failed, or the simulation ended without a result.
    """
    from cocotb_tools.runner import get_runner

    doc, sc = load_axis_sidecar(sidecar_path)
    verilog = Path(sidecar_path).with_suffix(".v")
    if not verilog.is_file():
        raise FileNotFoundError(f"{verilog} (the wrapper's Verilog) does not exist")
    root = Path(build_root) if build_root else default_build_root()
    bdir = _build(doc, verilog, root)
    tdir = bdir / f"axis-{os.getpid()}-{seed}"
    tdir.mkdir(parents=True, exist_ok=True)
    vec, out, log = tdir / "vectors.json", tdir / "result.json", tdir / "sim.log"
    out.unlink(missing_ok=True)
    vec.write_text(json.dumps(axis_vectors(doc, sc, seed, groups=groups)))
    t0 = time.perf_counter()
    ok = True
    try:
        get_runner("verilator").test(
            test_module="verif.cocotb_axis", hdl_toplevel=doc["module"],
            hdl_toplevel_lang="verilog", build_dir=bdir, test_dir=tdir, seed=seed,
            log_file=log, results_xml=str(tdir / "results.xml"),
            extra_env={"NMSPARSE_AXIS_VECTORS": str(vec), "NMSPARSE_AXIS_RESULT": str(out)})
    except (SystemExit, RuntimeError):
        ok = False
    if not out.is_file():
        raise SimError(f"the simulation of {doc['module']} ended without a result; log {log}:"
                       f"\n{_tail(log)}")
    res = json.loads(out.read_text())
    res["passed"] = ok and all(s["ok"] for s in res["scenarios"])
    res["log"] = str(log)
    res["seconds"] = round(time.perf_counter() - t0, 1)
    return res
