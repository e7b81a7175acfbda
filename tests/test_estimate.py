"""`nmsparse estimate`: the NNLS solver, the fitted models on the measured points, held-out
errors, the shipped coefficients and the CLI."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from gen.config import LinearConfig, TopKConfig
from nmsparse import cli
from nmsparse.sweep import estimate, runner

ROOT = Path(__file__).resolve().parent.parent
RESOURCES = ROOT / "reports" / "resources.json"


def test_nnls_matches_a_known_nonnegative_solution():
    A = [[1, 0, 2], [0, 1, 1], [1, 1, 0], [2, 1, 1], [0, 3, 1]]
    x_true = [2.0, 0.0, 0.5]
    b = [sum(a * x for a, x in zip(row, x_true, strict=True)) for row in A]
    assert estimate.nnls(A, b) == pytest.approx(x_true, abs=1e-9)
    # an unconstrained fit would go negative: NNLS clamps at 0
    x = estimate.nnls([[1, 1], [1, 2], [1, 3]], [3, 2, 1])
    assert min(x) >= 0


def _pt(m, arch="rank", fmt="int8", pipeline=1):
    cfg = TopKConfig(n=m // 2, m=m, fmt=fmt, arch=arch, pipeline=pipeline)
    sc = cfg.sidecar()
    return estimate.point_of({"unit": sc.unit, "params": dict(sc.params), **sc.metrics,
                              "latency": sc.latency})


def test_fit_recovers_an_exact_model():
    pts = [_pt(m, fmt=f, pipeline=p) for m in (4, 8, 16) for f in ("int8", "bf16")
           for p in (1, 2)]
    truth = {"c0": 10.0, "cmp_bits": 1.5, "sel_bits": 0.25}
    data = []
    for p in pts:
        fx = estimate.features(p, "lut4")
        data.append((p, {"lut4": sum(c * fx[k] for k, c in truth.items())}))
    model = estimate.fit(data)
    assert model.heldout["all"]["lut4"]["max_pct"] < 1.0
    got = model.predict(pts[0])["lut4"]
    assert got == pytest.approx(data[0][1]["lut4"], rel=1e-3)


@pytest.mark.skipif(not RESOURCES.is_file(), reason="no reports/resources.json")
def test_fit_on_the_report_prints_the_heldout_error(tmp_path, capsys):
    out = tmp_path / "coef.json"
    assert cli.main(["estimate", "--fit", str(RESOURCES), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "held-out error" in text and "| LUT4 | all |" in text and "| Fmax | all |" in text
    doc = json.loads(out.read_text())
    assert {"topk/rank", "topk/network"} <= set(doc["groups"])
    assert doc["heldout"]["all"]["lut4"]["n"] >= 10
    assert cli.main(["estimate", "--coefficients", str(out), "--pattern", "8:16",
                     "--arch", "rank,network"]) == 0
    text = capsys.readouterr().out
    assert "nm_topk_8_16_int8_rank" in text and "topk/network" in text


def test_shipped_coefficients_estimate_in_milliseconds():
    model = estimate.Model.load_default()
    assert model is not None, "nmsparse/sweep/data/estimate.json is missing: make estimate-fit"
    cfgs = [TopKConfig(n=8, m=16, fmt="int8", arch="rank"),
            TopKConfig(n=16, m=32, fmt="bf16", arch="network", pipeline=6),
            LinearConfig(n=8, m=16, outputs=4)]
    for cfg in cfgs:
        model.predict_config(cfg)  # warm the caches of the config
    t0 = time.perf_counter()
    ests = [model.predict_config(c) for c in cfgs]
    assert (time.perf_counter() - t0) / len(cfgs) < 0.05
    for e in ests[:2]:
        assert e["lut4"] > 100 and 5 < e["fmax_mhz"] < 1000 and e["transistors"] > 1e4
    assert ests[0]["group"] == "topk/rank" and not ests[0]["pooled"]
    assert model.heldout["all"]["lut4"]["n"] >= 20


def test_prune_by_estimate():
    assert runner._prune_reason({"lut4": 900.0}, {"max_lut4": 500}) == \
        "estimated lut4 900 > max_lut4 500"
    assert runner._prune_reason({"fmax_mhz": 80.0}, {"min_fmax_mhz": 100}).startswith(
        "estimated fmax_mhz 80 <")
    assert runner._prune_reason({"lut4": 100.0}, {"max_lut4": 500}) is None
    assert runner._prune_reason(None, {"max_lut4": 1}) is None
