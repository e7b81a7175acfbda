"""Stimulus of the units with weights from memory (DESIGN.md section 3.1), without a simulator:
the load transfers, the words each group reads, and the golden outputs."""

from __future__ import annotations

import torch

import golden
from gen.config import LinearConfig
from gen.emit import emit
from nmsparse.contract import sidecar
from verif import vectors


def _sc(tmp_path, **kw) -> sidecar.Sidecar:
    cfg = LinearConfig(n=2, m=4, outputs=2, weights="memory", depth=3, **kw)
    emit(cfg, tmp_path)
    return sidecar.load_sidecar(tmp_path / f"{cfg.name}.json")


def test_loads_come_first_and_address_every_feature(tmp_path):
    sc = _sc(tmp_path)
    assert vectors.is_memory(sc) and sc.params["depth"] == 3
    gen = torch.Generator().manual_seed(5)
    rows = [(torch.randint(-128, 128, (g, 4), generator=gen),
             torch.randint(-128, 128, (g, 2, 4), generator=gen)) for g in (2, 5)]
    ph = vectors.mac_phase(sc, rows)
    fields = sc.i.fields
    loads = [int(h, 16) for h in ph.inputs[:12]]
    assert [fields["load"].unpack_lane(p)[0] for p in loads] == [1] * 12
    # addr = (word << index_width) | bank, word-major
    assert [fields["addr"].unpack_lane(p)[0] for p in loads] == [
        (w << 2) | b for w in range(3) for b in range(4)]
    computes = [int(h, 16) for h in ph.inputs[12:]]
    assert [fields["load"].unpack_lane(p)[0] for p in computes] == [0] * 7
    assert [fields["last"].unpack_lane(p)[0] for p in computes] == [0, 1, 0, 0, 0, 0, 1]
    assert ph.out_src == [12 + 1, 12 + 6]  # the output sources count the loads
    # word q holds the weights of the first group q (mod depth) seen: row 0's groups 0, 1, then
    # row 1's group 2; the 5-group row reads words 0, 1, 2, 0, 1
    store = vectors.memory_store(sc, rows)
    assert torch.equal(store[0], rows[0][1][0].T) and torch.equal(store[2], rows[1][1][2].T)
    w = vectors.store_weights(sc, store, 5)
    assert torch.equal(w[3], w[0]) and torch.equal(w[4], w[1])
    x = rows[1][0].reshape(1, -1)
    want = golden.sparse_linear(x.to(torch.int8), w.permute(1, 0, 2).reshape(2, 20)
                                .to(torch.int8), 2, 4, acc_width=32, fmt="int8",
                                weight_fmt="int8")
    got = sc.o.fields["acc"].unpack_lane(int(ph.expected[1], 16))
    assert [v - (1 << 32) if v >= 1 << 31 else v for v in got] == want[0].tolist()


def test_reload_every_puts_a_store_before_each_chunk(tmp_path):
    sc = _sc(tmp_path)
    gen = torch.Generator().manual_seed(6)
    rows = [(torch.randint(-128, 128, (1, 4), generator=gen),
             torch.randint(-128, 128, (1, 2, 4), generator=gen)) for _ in range(4)]
    ph = vectors.mac_phase(sc, rows, reload_every=2)
    flags = [sc.i.fields["load"].unpack_lane(int(h, 16))[0] for h in ph.inputs]
    assert flags == [1] * 12 + [0, 0] + [1] * 12 + [0, 0]
    assert ph.out_src == [12, 13, 26, 27] and ph.groups == 4
