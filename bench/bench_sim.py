"""Groups per second of the RTL cross-check: cocotb + Verilator next to a plain C++ harness.

For the 8:16 bf16 top-k selector (``nm_topk_8_16_bf16_network`` and its multi-lane variants),
the same groups (the embedded SmolLM2 activations, tiled to ``--groups``) are streamed

1. through the cocotb testbench of ``verif/`` (what ``nmsparse crosscheck`` runs), and
2. through a C++ main that drives the same Verilated model directly (the simulator's ceiling),

and both outputs are compared with the golden model. Prints one line per (module, driver):
groups checked, mismatches, groups per second. Lane variants that are not in ``hdl/`` are
emitted with ``nmsparse generate --lanes L`` into the build directory.

    .venv/bin/python bench/bench_sim.py [--groups 20000] [--lanes 1 4 8]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from nmsparse.contract import seeds, toolchain  # noqa: E402
from nmsparse.contract.sidecar import Sidecar, find_module  # noqa: E402
from nmsparse.contract.vectors import Phase, Scenario  # noqa: E402
from verif import runner, vectors  # noqa: E402

HARNESS = r"""
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>
#include "Vtop.h"
#include "verilated.h"

static const int IW = %(iwords)d, OW = %(owords)d;  // 32-bit words per payload

static void put(Vtop* t, const uint32_t* w) { %(put)s }
static void get(Vtop* t, uint32_t* w) { %(get)s }

int main(int argc, char** argv) {
    Verilated::commandArgs(argc, argv);
    std::ifstream in(argv[1]);
    int repeat = atoi(argv[3]);
    std::vector<uint32_t> data;
    std::string line;
    size_t n = 0;
    while (std::getline(in, line)) {
        for (int i = 0; i < IW; i++) {
            int hi = (int)line.size() - 8 * i;
            int lo = hi - 8 < 0 ? 0 : hi - 8;
            data.push_back(hi > 0 ? (uint32_t)strtoul(line.substr(lo, hi - lo).c_str(), 0, 16) : 0);
        }
        n++;
    }
    Vtop* t = new Vtop;
    std::vector<uint32_t> out(n * OW);
    t->o__ready = 1; t->i__valid = 0; t->rst = 1;
    for (int c = 0; c < 4; c++) { t->clk = 0; t->eval(); t->clk = 1; t->eval(); }
    t->rst = 0;
    size_t total = 0;
    auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < repeat; r++) {
        size_t k = 0, o = 0;
        while (o < n) {
            t->i__valid = k < n;
            if (k < n) put(t, &data[k * IW]);
            t->clk = 0; t->eval();
            bool fin = t->i__valid && t->i__ready;
            if (t->o__valid && t->o__ready) { get(t, &out[o * OW]); o++; }
            t->clk = 1; t->eval();
            if (fin) k++;
        }
        total += n;
    }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    FILE* f = fopen(argv[2], "w");
    for (size_t k = 0; k < n; k++) {
        for (int i = OW - 1; i >= 0; i--) fprintf(f, "%%08x", out[k * OW + i]);
        fprintf(f, "\n");
    }
    fclose(f);
    printf("%%zu %%.6f\n", total, s);
    delete t;
    return 0;
}
"""


def _accessors(port: str, width: int, words: int, write: bool) -> str:
    if width <= 32:
        return f"t->{port} = w[0];" if write else f"w[0] = t->{port};"
    if width <= 64:
        if write:
            return f"t->{port} = ((uint64_t)w[1] << 32) | w[0];"
        return f"w[0] = (uint32_t)t->{port}; w[1] = (uint32_t)(t->{port} >> 32);"
    if write:
        return f"for (int i = 0; i < {words}; i++) t->{port}[i] = w[i];"
    return f"for (int i = 0; i < {words}; i++) w[i] = t->{port}[i];"


def build_harness(sc: Sidecar, root: Path) -> Path:
    """Verilate ``sc`` with the C++ harness above (``-O3``); return the executable."""
    verilator = toolchain.verilator()
    d = root / f"cxx-{sc.module}"
    exe = d / "harness"
    if exe.is_file():
        return exe
    d.mkdir(parents=True, exist_ok=True)
    iw, ow = -(-sc.i.width // 32), -(-sc.o.width // 32)
    cpp = d / "harness.cpp"
    # Verilator mangles "__" in port names to "___05F"
    cpp.write_text((HARNESS % {
        "iwords": iw, "owords": ow,
        "put": _accessors("i__payload", sc.i.width, iw, True),
        "get": _accessors("o__payload", sc.o.width, ow, False),
    }).replace("t->i__", "t->i___05F").replace("t->o__", "t->o___05F"))
    cmd = [verilator, "--cc", "--exe", "--build", "-O3", "--x-assign", "fast", "-Wno-fatal",
           "-Wno-lint", "-Wno-style", "--top-module", sc.module, "--prefix", "Vtop",
           "-Mdir", str(d / "obj"), "-o", str(exe), "-CFLAGS", "-O2", str(cpp), str(sc.verilog)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode:
        raise RuntimeError(
            f"building the C++ harness failed:\n{p.stdout[-2000:]}{p.stderr[-2000:]}")
    return exe


def run_cxx(sc: Sidecar, phase: Phase, root: Path, min_seconds: float = 0.5):
    exe = build_harness(sc, root)
    d = exe.parent
    (d / "in.hex").write_text("\n".join(phase.inputs) + "\n")
    repeat = 1
    while True:
        p = subprocess.run([str(exe), str(d / "in.hex"), str(d / "out.hex"), str(repeat)],
                           capture_output=True, text=True, check=True)
        total, seconds = p.stdout.split()
        if float(seconds) >= min_seconds or repeat >= 4096:
            break
        repeat = min(4096, max(repeat * 2, int(repeat * min_seconds / max(float(seconds), 1e-6))))
    outs = [int(h, 16) for h in (d / "out.hex").read_text().split()]
    exp = [int(h, 16) for h in phase.expected]
    mism = sum(1 for a, b in zip(outs, exp, strict=False) if a != b) + abs(len(outs) - len(exp))
    transfers = int(total)
    return transfers * sc.lanes, float(seconds), mism


def _module(name: str, lanes: int, build_root: Path) -> Sidecar:
    mod = name if lanes == 1 else f"{name}_x{lanes}"
    d = runner.hdl_dir()
    if (d / f"{mod}.json").is_file():
        return find_module(d, mod)
    out = build_root / "bench_hdl"
    if not (out / f"{mod}.json").is_file():
        subprocess.run([str(Path(sys.executable).with_name("nmsparse")), "generate",
                        "--pattern", "8:16", "--fmt", "bf16", "--unit", "topk", "--arch",
                        "network", "--lanes", str(lanes), "-o", str(out)],
                       check=True, capture_output=True)
    return find_module(out, mod)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--groups", type=int, default=20000)
    ap.add_argument("--lanes", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--module", default="nm_topk_8_16_bf16_network")
    args = ap.parse_args(argv)
    root = runner.default_build_root()
    acts = vectors.load_activations("default")
    bits, _ = vectors.activation_groups(acts, 16, "bf16")
    reps = -(-args.groups // bits.shape[0])
    bits = bits.repeat(reps, 1)[: args.groups]
    seed = seeds.seed()
    print(f"{args.groups} groups of 16 bf16 (SmolLM2 activations, tiled), one core, seed {seed}")
    print(f"{'module':34s} {'driver':22s} {'groups':>8s} {'mismatch':>8s} {'groups/s':>12s}")
    for lanes in args.lanes:
        sc = _module(args.module, lanes, root)
        phase = vectors.topk_phase(sc, bits)
        t0 = time.perf_counter()
        res = runner.run_vectors(sc, [Scenario("bench", [phase], check_latency=True)],
                                 seed=seed, tag="bench")
        rec = res.scenarios[0]
        wall = time.perf_counter() - t0
        print(f"{sc.module:34s} {'cocotb + Verilator':22s} {rec.groups:8d} "
              f"{rec.mismatches:8d} {rec.groups_per_second:12,.0f}   "
              f"(run incl. start-up {wall:.1f} s)")
        n, s, mism = run_cxx(sc, phase, root)
        print(f"{sc.module:34s} {'C++ harness (-O3)':22s} {n:8d} {mism:8d} {n / s:12,.0f}")
    return 0


if __name__ == "__main__":
    torch.set_num_threads(1)
    sys.exit(main())
