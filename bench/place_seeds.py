"""Place the modules of one directory with several placer seeds, otherwise exactly as
``nmsparse report`` does (ECP5 LFE5U-85F, port-registering wrapper, nextpnr
``--out-of-context``): how much of an Fmax difference between two designs is placement noise.

    .venv/bin/python bench/place_seeds.py HDL_DIR OUT_DIR 1 2 3

Each seed gets its own cache under ``OUT_DIR/seed<k>``. Prints one line per module and seed:
Fmax and the critical path (source -> sink, ns).
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from nmsparse.contract.sidecar import load_sidecar  # noqa: E402
from nmsparse.report import records, synth  # noqa: E402
from nmsparse.report.cli import build  # noqa: E402


def place(hdl: Path, out: Path, seeds: list[int], jobs: int = 1) -> int:
    """Place every module of ``hdl`` once per seed and print its Fmax and critical path
    (returns 2 when ``hdl`` holds no Verilog)."""
    points = [records.Point(p.stem, p, load_sidecar(p.with_suffix(".json")))
              for p in sorted(hdl.glob("*.v"))]
    if not points:
        print(f"place_seeds: no Verilog in {hdl}")
        return 2
    for seed in seeds:
        synth.SEED = seed  # the flow reads it when it calls nextpnr
        for r in build(points, out / f"seed{seed}", jobs=jobs, progress=False):
            pp = r.get("post_place") or {}
            cp = pp.get("critical_path") or {}
            print(f"{hdl.name} {r['module']} seed {seed}: {pp.get('fmax_mhz')} MHz, "
                  f"{cp.get('source')} -> {cp.get('sink')} {cp.get('ns')} ns", flush=True)
    return 0


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__)
        return 2
    return place(Path(argv[0]), Path(argv[1]), [int(s) for s in argv[2:]])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
