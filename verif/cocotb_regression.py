"""The cocotb test that replays a vector file against one module (runs inside the simulator).

:mod:`verif.runner` writes the vector file (stimulus and expected outputs, both computed by the
golden model in the pytest or CLI process) and passes its path in ``NMSPARSE_VECTORS``; this
test streams every scenario through the design, checks every output bit, the exact latency and
full throughput where the scenario asks for it, and writes a JSON summary to
``NMSPARSE_RESULT``. It fails when any scenario found a mismatch or a protocol error.

Vector file::

    {"sidecar": "/path/module.json", "seed": 1,
     "scenarios": [{"name": "random idle=none bp=none", "idle": "none", "backpressure": "none",
                    "check_latency": true, "label": {"row_groups": 36, "name": "token"},
                    "phases": [{"inputs": ["<hex payload>", ...], "expected": ["<hex>", ...],
                                "out_src": [0, 1, ...], "groups": 2, "reset_after": false}]}]}

A phase with ``reset_after`` pulses ``rst`` right after its last input transfer; the outputs
it produced before must be a prefix of its expected outputs, and nothing in flight may appear
after the reset.
"""

from __future__ import annotations

import json
import os
import zlib

import cocotb

from .sidecar import load_sidecar
from .tb import Scoreboard, Testbench, pattern


def _bin(hexstr: str, width: int) -> str:
    return format(int(hexstr, 16), f"0{width}b")


@cocotb.test()
async def run_vectors(dut) -> None:
    """Replay every scenario of ``$NMSPARSE_VECTORS`` and check the outputs."""
    spec = json.loads(open(os.environ["NMSPARSE_VECTORS"]).read())
    sc = load_sidecar(spec["sidecar"])
    seed = int(spec.get("seed", 0))
    tb = Testbench(dut, sc)
    await tb.start()
    results = []
    failed = []
    for scen in spec["scenarios"]:
        name = scen["name"]
        board = Scoreboard(sc)
        sseed = seed ^ zlib.crc32(name.encode())
        idle = pattern(scen.get("idle", "none"), sseed)
        bp = pattern(scen.get("backpressure", "none"), sseed + 1)
        rec = {"name": name, "groups": 0, "cycles": 0, "seconds": 0.0, "transfers": 0}
        latencies: set[int] = set()
        stalls = 0
        for pi, ph in enumerate(scen["phases"]):
            inputs = [int(h, 16) for h in ph["inputs"]]
            items = [format(v, f"0{sc.i.width}b") for v in inputs]
            expected = [int(h, 16) for h in ph["expected"]]
            reset_after = bool(ph.get("reset_after", False))
            res = await tb.run_phase(items, len(expected), idle=idle, bp=bp,
                                     reset_after=reset_after,
                                     timeout=int(scen.get("timeout", 2000)))
            pname = name if len(scen["phases"]) == 1 else f"{name} [phase {pi + 1}]"
            if not res.input_done:
                board.errors.append(
                    f"{pname}: the design accepted only {len(res.in_cycles)} of {len(items)} "
                    f"input transfers (i__ready stuck low?)")
            out_src = ph.get("out_src")
            board.compare(pname, inputs, expected, res.outputs, out_src, prefix=reset_after,
                          label=scen.get("label"))
            if out_src is not None:
                for k, c in enumerate(res.out_cycles):
                    if k < len(out_src) and out_src[k] < len(res.in_cycles):
                        latencies.add(c - res.in_cycles[out_src[k]])
            stalls += res.stall_cycles
            rec["groups"] += int(ph.get("groups", len(inputs)))
            rec["cycles"] += res.cycles
            rec["seconds"] += res.seconds
            rec["transfers"] += len(inputs)
        if scen.get("check_latency"):
            if latencies and latencies != {sc.latency}:
                board.errors.append(
                    f"{name}: measured latency {sorted(latencies)} cycles, the sidecar says "
                    f"{sc.latency}")
            if stalls:
                board.errors.append(
                    f"{name}: i__ready was low on {stalls} cycle(s) although o__ready was always "
                    "high (not full throughput)")
        rec.update(
            mismatches=board.mismatches, checked=board.checked, errors=board.errors,
            reports=board.reports, latencies=sorted(latencies),
            groups_per_second=rec["groups"] / rec["seconds"] if rec["seconds"] else 0.0,
        )
        results.append(rec)
        status = "ok" if not board.mismatches and not board.errors else "FAIL"
        dut._log.info(
            f"{name}: {rec['groups']} groups, {board.checked} outputs checked, "
            f"{board.mismatches} mismatches, {rec['cycles']} cycles, "
            f"{rec['groups_per_second']:.0f} groups/s [{status}]")
        for text in board.errors + board.reports:
            dut._log.error(text)
        if status != "ok":
            failed.append(name)
    out = os.environ.get("NMSPARSE_RESULT")
    if out:
        tmp = out + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"module": sc.module, "seed": seed, "scenarios": results}, f, indent=1)
        os.replace(tmp, out)
    assert not failed, f"{sc.module}: failing scenarios (seed {seed}): {', '.join(failed)}"
