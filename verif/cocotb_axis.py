"""The cocotb test of an AXI4-Stream wrapper, driven by cocotbext-axi (runs in the simulator).

:mod:`verif.axis` writes a vector file (frames of input beats and the expected output beats,
computed by the golden model) and passes it in ``NMSPARSE_AXIS_VECTORS``. Each scenario sends
its frames with an ``AxiStreamSource`` (``tlast`` on each frame's last beat), receives with an
``AxiStreamSink`` under a pause pattern on each side (idle input cycles, back-pressure on
``m_axis_tready``), and compares every output beat bit for bit, and the output framing
(``tlast``), with the expected ones. A JSON summary goes to ``NMSPARSE_AXIS_RESULT``.
"""

from __future__ import annotations

import itertools
import json
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, with_timeout
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource


def _pauses(spec: str, seed: int):
    """``none``, ``cycle:0,1,1`` (1 = pause this cycle), ``random:P``."""
    if spec in ("", "none"):
        return None
    kind, _, arg = spec.partition(":")
    if kind == "cycle":
        return itertools.cycle([int(b) for b in arg.split(",")])
    if kind == "random":
        rng = random.Random(seed)
        p = float(arg)
        return (int(rng.random() < p) for _ in itertools.count())
    raise ValueError(f"unknown pause pattern {spec!r}")


@cocotb.test()
async def run_axis(dut) -> None:
    """Every scenario of ``$NMSPARSE_AXIS_VECTORS`` through the wrapper; bit-exact."""
    spec = json.loads(open(os.environ["NMSPARSE_AXIS_VECTORS"]).read())
    sb = spec["s_bytes"]
    mb = spec["m_bytes"]
    cocotb.start_soon(Clock(dut.aclk, 10, unit="ns").start())
    source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.aclk, dut.aresetn,
                             reset_active_level=False)
    sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.aclk, dut.aresetn,
                         reset_active_level=False)
    dut.aresetn.value = 0
    await ClockCycles(dut.aclk, 4)
    dut.aresetn.value = 1
    await ClockCycles(dut.aclk, 2)
    results = []
    for si, scen in enumerate(spec["scenarios"]):
        source.set_pause_generator(_pauses(scen["idle"], spec["seed"] + 2 * si))
        sink.set_pause_generator(_pauses(scen["backpressure"], spec["seed"] + 2 * si + 1))
        for frame in scen["frames"]:
            data = b"".join(int(h, 16).to_bytes(sb, "little") for h in frame)
            await source.send(AxiStreamFrame(data))
        want = scen["expected"]  # list of output frames, each a list of beats (hex)
        got = []
        for _ in want:
            f = await with_timeout(sink.recv(), 200 * (len(scen["frames"]) + 10) + 2000, "us")
            raw = bytes(f.tdata)
            got.append([raw[k:k + mb] for k in range(0, len(raw), mb)])
        mismatches, reports = 0, []
        beats = 0
        for fi, (w, g) in enumerate(zip(want, got, strict=True)):
            if len(w) != len(g):
                mismatches += 1
                reports.append(f"frame {fi}: {len(g)} beats received, {len(w)} expected "
                               "(tlast in the wrong place)")
                continue
            for bi, (hw, bg) in enumerate(zip(w, g, strict=True)):
                beats += 1
                vg = int.from_bytes(bg, "little")
                if vg != int(hw, 16):
                    mismatches += 1
                    if len(reports) < 5:
                        reports.append(f"frame {fi} beat {bi}: got {vg:#x}, expected {hw}")
        extra = not sink.empty()
        if extra:
            reports.append("output frames beyond the expected ones")
        results.append({"name": scen["name"], "frames": len(want), "beats": beats,
                        "in_beats": sum(len(f) for f in scen["frames"]),
                        "mismatches": mismatches, "reports": reports,
                        "ok": mismatches == 0 and not extra})
        dut._log.info(f"{scen['name']}: {len(want)} frames, {beats} beats, {mismatches} "
                      f"mismatches")
    out = os.environ.get("NMSPARSE_AXIS_RESULT")
    if out:
        with open(out, "w") as fh:
            json.dump({"scenarios": results}, fh, indent=1)
    assert all(r["ok"] for r in results), [r for r in results if not r["ok"]]
