"""Unit tests of the verification plumbing (no simulator): sidecar parsing, packing, vectors,
activation loading and the crosscheck command's one-line errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import golden
from nmsparse import cli
from nmsparse.contract import sidecar
from nmsparse.contract.vectors import Segment
from verif import vectors

EXAMPLE = Path(__file__).resolve().parent.parent / "verif" / "data" / "example_hdl"


def _sc(name: str = "nm_topk_2_4_int8_example") -> sidecar.Sidecar:
    return sidecar.load_sidecar(EXAMPLE / f"{name}.json")


def test_field_pack_unpack_roundtrip_lanes():
    f = sidecar.Field("data", offset=3, elem_width=8, count=4, lanes=2, lane_stride=40)
    p = f.pack_lane([1, 255, 128, 0], lane=1) | f.pack_lane([7, 6, 5, 4], lane=0)
    assert f.unpack_lane(p, 0) == [7, 6, 5, 4]
    assert f.unpack_lane(p, 1) == [1, 255, 128, 0]
    assert (p >> 3) & 0xFF == 7  # element 0 of lane 0 at the offset, LSB first
    assert (p >> (3 + 40 + 8)) & 0xFF == 255


def test_topk_phase_packs_golden_outputs_lsb_first():
    sc = _sc()
    bits = golden.to_bits(torch.tensor([[5, -128, 127, 0]], dtype=torch.int8), "int8")
    ph = vectors.topk_phase(sc, bits)
    inp, out = int(ph.inputs[0], 16), int(ph.expected[0], 16)
    assert sc.i.unpack(inp)["data"] == [5, 128, 127, 0]
    o = sc.o.unpack(out)
    assert o["mask"] == [0, 1, 1, 0]          # |-128| = 128 beats 127 beats 5
    assert o["values"] == [128, 127]          # ascending index order, unchanged bit patterns
    assert o["index"] == [1, 2]


def test_topk_phase_pads_to_lanes():
    sc = _sc()
    lanes_sc = sidecar.Sidecar(module="x", unit="topk", params={**sc.params, "lanes": 3},
                               latency=1, ports={
                                   "i__payload": sidecar.Port("i__payload", "in", 96, {
                                       "data": sidecar.Field("data", 0, 8, 4, 3, 32)}),
                                   "o__payload": sidecar.Port("o__payload", "out", 72, {
                                       name: sidecar.Field(name, f.offset, f.elem_width,
                                                           f.count, 3, 24)
                                       for name, f in sc.o.fields.items()})},
                               path=sc.path)
    bits = vectors.random_groups(sc, 7, seed=3)
    ph = vectors.topk_phase(lanes_sc, bits)
    assert len(ph.inputs) == 3 and ph.groups == 7
    exp = vectors.topk_expected(sc, bits)
    third = int(ph.expected[2], 16)
    assert lanes_sc.o.unpack(third, lane=0)["index"] == exp["index"][6].tolist()


def test_edge_groups_cover_the_specials():
    sc = _sc("nm_topk_8_16_bf16_example")
    g = vectors.edge_groups(sc, 1)
    x = golden.from_bits(g, "bf16").float()
    assert torch.isnan(x).any() and torch.isinf(x).any()
    assert ((g == 0x8000).any(dim=1)).any()              # -0.0
    assert ((g & 0x7F80) == 0).logical_and(g & 0x7F != 0).any()  # subnormals
    assert (g == g[:, :1]).all(dim=1).any()               # all-equal groups
    ints = vectors.edge_groups(_sc(), 1)
    assert (ints == 0x80).any()                           # the most negative int8


def test_mac_phase_wraps_like_golden():
    params = {"m": 4, "fmt": "int8", "width": 8, "weight_width": 8, "acc_width": 16,
              "outputs": 2}
    ports = {
        "i__payload": sidecar.Port("i__payload", "in", 32 + 64 + 1, {
            "data": sidecar.Field("data", 0, 8, 4),
            "weights": sidecar.Field("weights", 32, 8, 8),
            "last": sidecar.Field("last", 96, 1, 1)}),
        "o__payload": sidecar.Port("o__payload", "out", 32, {
            "acc": sidecar.Field("acc", 0, 16, 2)}),
    }
    sc = sidecar.Sidecar(module="m", unit="dense_mac", params=params, latency=1, ports=ports,
                         path=EXAMPLE)
    x = torch.full((3, 4), -128, dtype=torch.int64)
    w = torch.full((3, 2, 4), -128, dtype=torch.int64)
    ph = vectors.mac_phase(sc, [(x, w)])
    acc = ports["o__payload"].unpack(int(ph.expected[0], 16))["acc"]
    want = (12 * 16384) & 0xFFFF  # 196608 wraps at 16 bits
    assert acc == [want, want]
    assert ph.out_src == [2]
    last = [ports["i__payload"].unpack(int(h, 16))["last"][0] for h in ph.inputs]
    assert last == [0, 0, 1]


def test_sidecar_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        sidecar.load_sidecar(tmp_path / "nope.json")
    bad = tmp_path / "m.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        sidecar.load_sidecar(bad)
    raw = json.loads((EXAMPLE / "nm_topk_2_4_int8_example.json").read_text())
    del raw["ports"]["o__payload"]["fields"]["index"]
    bad.write_text(json.dumps(raw))
    with pytest.raises(ValueError, match="missing key 'ports.o__payload.fields.index'"):
        sidecar.load_sidecar(bad)


def test_load_activations_formats(tmp_path):
    t = torch.randn(3, 32).to(torch.bfloat16)
    torch.save({"a": t}, tmp_path / "a.pt")
    np.save(tmp_path / "b.npy", np.random.randn(2, 16).astype(np.float32))
    from safetensors.torch import save_file

    save_file({"c": torch.randn(2, 16)}, str(tmp_path / "c.safetensors"))
    assert torch.equal(vectors.load_activations(tmp_path / "a.pt")["a"], t)
    assert vectors.load_activations(tmp_path / "b.npy")["b"].shape == (2, 16)
    assert vectors.load_activations(tmp_path / "c.safetensors")["c"].shape == (2, 16)
    bits, labels = vectors.activation_groups({"a": t}, 16, "int8")
    assert bits.shape == (6, 16) and labels == [Segment(0, "a", 2)]
    (tmp_path / "junk.pt").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="cannot read activations"):
        vectors.load_activations(tmp_path / "junk.pt")
    with pytest.raises(ValueError, match="not a multiple of M = 16"):
        vectors.activation_groups({"x": torch.randn(2, 24)}, 16, "bf16")
    with pytest.raises(TypeError, match="does not fit"):
        vectors.activation_groups({"x": torch.ones(2, 16, dtype=torch.int32)}, 16, "bf16")
    with pytest.raises(ValueError, match="outside the int8 range"):
        vectors.activation_groups({"x": torch.full((2, 16), 300, dtype=torch.int32)}, 16, "int8")


@pytest.mark.parametrize("argv, message", [
    (["--activations", "{tmp}/missing.pt"], "does not exist"),
    (["--activations", "{tmp}/bad.pt"], "cannot read activations"),
    (["--activations", "{tmp}/odd.pt"], "not a multiple of M = 4"),
    (["--activations", "{tmp}/ints.pt", "--fmt", "bf16"], "does not fit"),
    (["--activations", "default", "--hdl-dir", "{tmp}/empty"], "no top-k selector"),
    (["--activations", "default", "--hdl-dir", "{tmp}/nodir"], "does not exist"),
    (["--activations", "default", "--pattern", "5:4"], "invalid pattern"),
])
def test_crosscheck_bad_input_one_line(tmp_path, capsys, argv, message):
    (tmp_path / "bad.pt").write_bytes(b"\x00" * 10)
    torch.save(torch.randn(2, 6), tmp_path / "odd.pt")
    torch.save(torch.ones(2, 8, dtype=torch.int32), tmp_path / "ints.pt")
    (tmp_path / "empty").mkdir()
    shutil.copy(EXAMPLE / "nm_topk_2_4_int8_example.json", tmp_path / "empty" / "unrelated.txt")
    args = [a.format(tmp=tmp_path) for a in argv]
    base = ["crosscheck", "--pattern", "2:4", "--fmt", "int8"]
    rc = cli.main(base + args)
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err
