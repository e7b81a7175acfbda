"""The output skid buffer (``skid``) on large MAC arrays, side by side with the plain stall.

    .venv/bin/python bench/bench_skid.py OUT_DIR [--seeds 1 2 3] [--jobs 2] [--skid-only]
        [--point nm_linear_8_16_int8_k16_wlane --point dense_mac_16_int8_k8_wmem]

Emits each engine-sweep point (``gen.config.SWEEP``, by its name without ``_skid``) twice,
with and without the skid buffer, into ``OUT_DIR/hdl``, and places all of them exactly as
``nmsparse report`` does (ECP5 LFE5U-85F, port-registering wrapper, nextpnr
``--out-of-context``), once per placer seed (cache under ``OUT_DIR/seed<k>``). Prints one
line per module and seed: Fmax and the critical path. Without the skid buffer every stall
enable is ``~o.valid | o.ready``, a path from ``o.ready`` through a LUT to each clock enable;
with it every enable is a flip-flop. The default pair is the K = 16 goal point of 8:16 and
the largest dense array of M = 16 that fits the device (128 DSP blocks each). A run takes
10-20 minutes per seed on two cores.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from place_seeds import place  # noqa: E402

from gen.config import SWEEP  # noqa: E402
from gen.emit import emit_points  # noqa: E402

PAIR = ("nm_linear_8_16_int8_k16_wlane", "dense_mac_16_int8_k8_wmem")


def configs(names: list[str], forms: tuple[bool, ...] = (False, True)) -> list:
    """Each named sweep point without and with the skid buffer (``forms``: which)."""
    by_name = {}
    for cfg in SWEEP:
        plain = dataclasses.replace(cfg, skid=False)
        by_name[plain.name] = plain
    missing = [n for n in names if n not in by_name]
    if missing:
        raise SystemExit(f"bench_skid: not an engine-sweep point (name without _skid): "
                         f"{', '.join(missing)}")
    out = []
    for n in names:
        out += [dataclasses.replace(by_name[n], skid=f) for f in forms]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--point", action="append", default=None,
                    help="engine-sweep point without _skid (repeatable; default: "
                         + ", ".join(PAIR) + ")")
    ap.add_argument("--skid-only", action="store_true",
                    help="place only the forms with the skid buffer (e.g. more seeds of them)")
    args = ap.parse_args(argv)
    hdl = args.out / "hdl"
    emit_points(configs(args.point or list(PAIR), (True,) if args.skid_only else (False, True)),
                hdl)
    return place(hdl, args.out, args.seeds, jobs=args.jobs)


if __name__ == "__main__":
    raise SystemExit(main())
