"""The S-PTS engine (``LinearConfig(shift=eta)``, ``nmsparse generate --shift``).

The shipped ``nm_linear_8_16_int8_k4_shift`` runs in the cocotb regression of
``tests/test_verif_regression.py`` (every module of ``hdl/``); here: the configuration and
sidecar checks, that the regression's expectation really depends on the shift, and (slow) an
engine with one eta per group position of both signs, saturating at both ends, through
Verilator.
"""

from __future__ import annotations

import copy
import json

import pytest
import torch
from conftest import seed

import golden
from gen import emit
from gen.config import SHIPPED, LinearConfig
from nmsparse.contract import sidecar
from verif import regression, vectors


def test_config_checks_the_shift():
    c = LinearConfig(n=2, m=4, shift=-3)
    assert c.name == "nm_linear_2_4_int8_k4_shift" and c.params()["shift"] == -3
    assert c.shift_lanes == (-3,) * 4
    assert LinearConfig(n=2, m=4, shift=[1, -2, 0, 127]).params()["shift"] == [1, -2, 0, 127]
    assert "shift" not in LinearConfig(n=2, m=4).params()  # the plain engine is unchanged
    with pytest.raises(ValueError, match=r"shift must be in \[-128, 127\], not 128"):
        LinearConfig(n=2, m=4, shift=128)
    with pytest.raises(ValueError, match="M = 4 integers"):
        LinearConfig(n=2, m=4, shift=(1, 2))
    with pytest.raises(ValueError, match="weights='stream'"):
        LinearConfig(n=2, m=4, shift=1, weights="memory")
    with pytest.raises(ValueError, match=r"shift must be in \[-8, 7\], not 8"):
        LinearConfig(n=2, m=4, fmt="int4", shift=8)
    with pytest.raises(TypeError, match="shift must be an integer"):
        LinearConfig(n=2, m=4, shift=1.5)


def _shipped_doc() -> dict:
    cfg = next(c for c in SHIPPED if c.name == "nm_linear_8_16_int8_k4_shift")
    return json.loads(emit.sidecar_text(cfg))


def test_sidecar_carries_and_checks_the_shift():
    doc = _shipped_doc()
    sc = sidecar.parse_sidecar(doc)
    assert sc.shift == -3
    bad = [("shift", 200, r"eta in \[-128, 127\]"), ("shift", [1, 2], "m = 16 integers"),
           ("shift", "3", "key 'params.shift'")]
    for key, value, msg in bad:
        d = copy.deepcopy(doc)
        d["params"][key] = value
        with pytest.raises(sidecar.SidecarError, match=msg):
            sidecar.parse_sidecar(d)


def test_expectation_depends_on_the_shift():
    """The regression compares against golden with the sidecar's eta: without it the expected
    accumulators differ, so an engine that ignored the shift would fail."""
    doc = _shipped_doc()
    sc = sidecar.parse_sidecar(doc)
    plain_doc = copy.deepcopy(doc)
    del plain_doc["params"]["shift"]
    plain = sidecar.parse_sidecar(plain_doc)
    gen = torch.Generator().manual_seed(seed())
    rows = [(torch.randint(-128, 128, (3, 16), generator=gen),
             torch.randint(-128, 128, (3, 4, 16), generator=gen)) for _ in range(8)]
    rows.append((torch.full((2, 16), 127), torch.ones(2, 4, 16, dtype=torch.int64)))
    a = vectors.mac_phase(sc, rows).expected
    b = vectors.mac_phase(plain, rows).expected
    assert len(a) == len(b) == 9 and a != b
    # the saturating row: d = sat(127 + 3) = 127, 8 kept of 16 per group, bias 16 * -3 * 2
    x, w = rows[-1]
    y = golden.sparse_linear(x.reshape(1, -1).to(torch.int8), w.permute(1, 0, 2).reshape(4, -1)
                             .to(torch.int8), 8, 16, shift=-3)
    assert y.tolist() == [[2 * 8 * 127 - 3 * 32] * 4]


@pytest.mark.slow
def test_per_position_shift_engine_regression(tmp_path):
    """eta per group position, both signs and both ends of int8 (d saturates at -128 and at
    127), through the whole cocotb regression."""
    cfg = LinearConfig(n=4, m=8, shift=(5, -5, 0, 127, -128, 1, -1, 3))
    emit.emit(cfg, tmp_path)
    sc = sidecar.find_module(tmp_path, cfg.name)
    assert sc.shift == [5, -5, 0, 127, -128, 1, -1, 3]
    res = regression.run_module(sc, seed=seed())
    assert res.passed, res.failure_text()
    assert res.groups > 0


def test_run_time_shift_config_and_sidecar():
    """``shift="input"``: eta per channel and the row's bias are input fields (after the
    others), either weight source; the sidecar carries and checks it."""
    c = LinearConfig(n=8, m=16, shift="input", weights="memory")
    assert c.name == "nm_linear_8_16_int8_k4_wmem_shiftin" and c.params()["shift"] == "input"
    assert c.shift_input and c.shift_lanes is None
    assert LinearConfig(n=2, m=4, shift="input").name == "nm_linear_2_4_int8_k4_shiftin"
    with pytest.raises(ValueError, match="'input'"):
        LinearConfig(n=2, m=4, shift="inputs")
    doc = json.loads(emit.sidecar_text(c))
    sc = sidecar.parse_sidecar(doc)
    fields = sorted(sc.i.fields, key=lambda f: sc.i.fields[f].offset)
    assert fields[-2:] == ["eta", "bias"]
    assert (sc.i.fields["eta"].elem_width, sc.i.fields["eta"].count) == (8, 16)
    assert (sc.i.fields["bias"].elem_width, sc.i.fields["bias"].count) == (32, 4)
    d = copy.deepcopy(doc)
    del d["ports"]["i__payload"]["fields"]["bias"]
    with pytest.raises(sidecar.SidecarError, match="bias"):
        sidecar.parse_sidecar(d)
    d = copy.deepcopy(doc)
    d["params"]["fmt"], d["params"]["width"] = "bf16", 16
    with pytest.raises(sidecar.SidecarError):
        sidecar.parse_sidecar(d)


def test_run_time_shift_expectation_uses_the_eta_field():
    """The regression's rows carry eta per channel (per layer, per channel, the extremes) and
    the bias on the last transfer only; the expected rows are golden's with that eta, so an
    engine that ignored eta or the bias would fail."""
    cfg = LinearConfig(n=2, m=4, shift="input")
    sc = sidecar.parse_sidecar(json.loads(emit.sidecar_text(cfg)))
    gen = torch.Generator().manual_seed(seed())
    rows = [(torch.randint(-128, 128, (3, 4), generator=gen),
             torch.randint(-128, 128, (3, 4, 4), generator=gen)) for _ in range(6)]
    ph = vectors.mac_phase(sc, rows)
    plain = sidecar.parse_sidecar(json.loads(emit.sidecar_text(LinearConfig(n=2, m=4))))
    assert ph.expected != vectors.mac_phase(plain, rows).expected
    for r, (x, w) in enumerate(rows):
        eta = vectors.row_eta(golden.get_format("int8"), x, r).reshape(-1)
        want = golden.sparse_linear(x.reshape(1, -1).to(torch.int8),
                                    w.permute(1, 0, 2).reshape(4, -1).to(torch.int8), 2, 4,
                                    shift=eta)
        got = [int(ph.expected[r][i:i + 8], 16) for i in range(0, 32, 8)][::-1]
        assert [v & 0xFFFFFFFF for v in want[0].tolist()] == got, r


@pytest.mark.slow
def test_run_time_shift_stream_engine_regression(tmp_path):
    """The run-time form with weights in the stream (the shipped one reads them from memory)
    through the whole cocotb regression."""
    cfg = LinearConfig(n=2, m=4, shift="input")
    emit.emit(cfg, tmp_path)
    res = regression.run_module(sidecar.find_module(tmp_path, cfg.name), seed=seed())
    assert res.passed, res.failure_text()


@pytest.mark.slow
def test_run_time_shift_with_lane_banks_regression(tmp_path):
    """The run-time form with banks by kept slot (the row's bias rides to the accumulator
    beside the lane banks' read) through the whole cocotb regression."""
    cfg = LinearConfig(n=2, m=4, shift="input", weights="memory", banks="lane", depth=8)
    assert cfg.name == "nm_linear_2_4_int8_k4_wlane_shiftin"
    emit.emit(cfg, tmp_path)
    res = regression.run_module(sidecar.find_module(tmp_path, cfg.name), seed=seed())
    assert res.passed, res.failure_text()
