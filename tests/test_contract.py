"""The foundation package: formats and the key, patterns, units, sidecar and vector files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from nmsparse.contract import formats, patterns, seeds, sidecar, units, vectors


@pytest.mark.parametrize("name", ["int4", "int8", "int16"])
def test_integer_key_is_the_absolute_value(name: str) -> None:
    f = formats.get_format(name)
    bits = list(range(1 << min(f.width, 12))) + [f.sign_bit, f.all_ones, f.max]
    for b in bits:
        assert f.key(b) == abs(formats.signed(b, f.width))
    assert f.key(f.sign_bit) == 1 << (f.width - 1)  # |most negative| without overflow
    # the same definition on arrays and tensors
    arr = np.array(bits, dtype=np.int64)
    assert f.key(arr).tolist() == [f.key(b) for b in bits]
    assert f.key(torch.tensor(bits)).tolist() == [f.key(b) for b in bits]


@pytest.mark.parametrize("name", ["fp16", "bf16", "fp32"])
def test_float_key_clears_the_sign(name: str) -> None:
    f = formats.get_format(name)
    specials = f.special_patterns()
    for b in specials:
        assert f.key(b) == b & (f.sign_bit - 1)
    inf = ((1 << f.exp_bits) - 1) << f.mant_bits
    assert f.key(inf | 1) > f.key(inf) > f.key(inf - 1)  # NaN above inf above max finite
    assert f.key(f.sign_bit) == f.key(0) == 0  # -0 == +0
    assert f.key_rule == "clear_sign" and f.key_width == f.width - 1


def test_format_lookup_and_describe() -> None:
    with pytest.raises(ValueError, match="'int3'.*valid formats: int4"):
        formats.get_format("int3")
    with pytest.raises(TypeError, match="8"):
        formats.get_format(8)  # type: ignore[arg-type]
    bf = formats.get_format("bf16")
    assert bf.describe(0x3F80) == "1.0(0x3f80)"
    assert bf.describe(0x7FC1).startswith("nan(0x7fc1")
    assert formats.get_format("int8").describe(0x80) == "-128"
    assert (bf.exp_bits, bf.mant_bits) == (8, 7)


def test_patterns() -> None:
    assert patterns.parse_pattern(" 8:16 ") == (8, 16)
    assert patterns.Pattern.parse("2:4") < patterns.Pattern(8, 16) < patterns.Pattern(3, 32)
    assert patterns.Pattern(8, 16).index_width == 4
    for bad, msg in [("4:4", "n = 4"), ("8-16", "'8-16'"), ("a:b", "N:M"), ("0:4", "n = 0")]:
        with pytest.raises(ValueError, match=msg):
            patterns.parse_pattern(bad)
    with pytest.raises(TypeError, match="True"):
        patterns.check_nm(True, 4)
    assert patterns.parse_sparsity("dense") is None
    sp = patterns.parse_sparsity("unstructured:0.5")
    assert sp is not None and sp.label == "unstructured:0.5" and sp.keep(4096) == 2048
    with pytest.raises(ValueError, match="unstructured:S"):
        patterns.parse_sparsity("unstructured:1.5")
    labels = ["16:32", "dense", "2:4", "unstructured:0.5", "8:16", "4:8"]
    assert sorted(labels, key=patterns.pattern_order) == [
        "dense", "2:4", "4:8", "8:16", "16:32", "unstructured:0.5"]
    with pytest.raises(ValueError, match="'bogus'"):
        patterns.pattern_order("bogus")  # never a silent default order
    assert patterns.pattern_label(None, 16) == "dense:16"


def test_module_names() -> None:
    assert units.module_name("topk", n=8, m=16, fmt="int8", arch="rank") == \
        "nm_topk_8_16_int8_rank"
    assert units.module_name("topk", n=2, m=4, fmt="bf16", arch="network", lanes=4) == \
        "nm_topk_2_4_bf16_network_x4"
    assert units.module_name("dense_mac", m=32, fmt="int8", outputs=16) == \
        "dense_mac_32_int8_k16"
    with pytest.raises(ValueError, match="'outputs'"):
        units.module_name("spmac", n=2, m=4, fmt="int8")
    with pytest.raises(ValueError, match="unit must be one of"):
        units.unit("fft")


def _topk_doc() -> dict:
    from gen.config import TopKConfig

    return TopKConfig(n=2, m=4, fmt="int8", arch="rank", pipeline=1).sidecar().to_dict()


def test_sidecar_round_trip() -> None:
    doc = _topk_doc()
    sc = sidecar.parse_sidecar(json.loads(json.dumps(doc)))
    assert sc.to_dict() == doc
    assert sc.pattern == "2:4" and sc.latency == 1 and sc.i.fields["data"].count == 4
    assert sc.format.name == "int8" and sc.metrics["comparators"] == 6


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d.pop("module"), "missing key 'module'"),
    (lambda d: d["params"].pop("n"), "missing key 'params.n'"),
    (lambda d: d["params"].update(width=16), r"'params.width': expected 8 \(int8 elements"),
    (lambda d: d["params"].update(n=4), "'params.n': expected 0 < n < m"),
    (lambda d: d.update(unit="fft"), "'unit': expected one of"),
    (lambda d: d["ports"]["o__payload"].update(dir="in"), "'ports.o__payload.dir': expected 'out'"),
    (lambda d: d["ports"].pop("o__ready"), "missing key 'ports.o__ready'"),
    (lambda d: d["ports"]["i__payload"]["fields"]["data"].update(count=40, width=320),
     "'ports.i__payload.fields.data': expected count 4 x elem_width 8"),
    (lambda d: d["ports"]["i__payload"]["fields"]["data"].update(count=40),
     "'ports.i__payload.fields.data.width': expected elem_width x count = 320"),
    (lambda d: d["ports"]["o__payload"]["fields"].pop("index"),
     "missing key 'ports.o__payload.fields.index'"),
    (lambda d: d.update(latency=-1), "'latency': expected an integer >= 0"),
])
def test_sidecar_errors_name_the_key(edit, message) -> None:
    doc = _topk_doc()
    edit(doc)
    with pytest.raises(sidecar.SidecarError, match=message):
        sidecar.parse_sidecar(doc, "x.json")


def test_vector_files_round_trip(tmp_path) -> None:
    ph = vectors.Phase(inputs=["0f"], expected=["a"], out_src=[0], groups=1, reset_after=True)
    scen = vectors.Scenario("s", [ph], idle="cycle:1,0", backpressure="random:0.3",
                            check_latency=True, segments=[vectors.Segment(0, "t", 2)])
    vf = vectors.VectorFile(sidecar="m.json", seed=3, scenarios=[scen])
    vf.write(tmp_path / "v.json")
    assert vectors.VectorFile.read(tmp_path / "v.json") == vf
    with pytest.raises(ValueError, match="bad pattern 'cycle:0,0'"):
        vectors.Scenario("s", [ph], idle="cycle:0,0")
    res = vectors.ResultFile("m", 3, [vectors.ScenarioResult("s", groups=4, seconds=2.0)])
    res.write(tmp_path / "r.json")
    back = vectors.ResultFile.read(tmp_path / "r.json")
    assert back == res and back.scenarios[0].groups_per_second == 2.0


def test_seed(monkeypatch) -> None:
    monkeypatch.delenv("NMSPARSE_SEED", raising=False)
    assert seeds.seed() == seeds.DEFAULT_SEED == 1
    monkeypatch.setenv("NMSPARSE_SEED", "7")
    assert seeds.seed() == 7 and seeds.seed(5) == 5
    monkeypatch.setenv("NMSPARSE_SEED", "x")
    with pytest.raises(ValueError, match="NMSPARSE_SEED must be an integer, not 'x'"):
        seeds.seed()
