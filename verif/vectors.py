"""Stimulus and expected outputs from the golden model, packed with the module's sidecar.

Everything here runs in the pytest (or CLI) process; the simulator only receives plain hex
payloads (see :mod:`verif.cocotb_regression`). Expected outputs come from
:func:`golden.nm_compress`, :func:`golden.nm_mask` and :func:`golden.sparse_linear` (int64
results wrapped to ``acc_width``); the sidecar says where each field goes.

Shapes: a batch of groups is ``bits: [G, M]`` int64 unsigned bit patterns in the module's
format (``golden.to_bits``); MAC rows are lists of groups plus weights ``[g, K, M]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

import golden
from nmsparse.contract.formats import Format
from nmsparse.contract.sidecar import Port, Sidecar
from nmsparse.contract.units import is_shift_input
from nmsparse.contract.vectors import BACKPRESSURE_PATTERNS, IDLE_PATTERNS, Phase, Scenario, Segment

__all__ = [
    "IDLE_PATTERNS",
    "BACKPRESSURE_PATTERNS",
    "topk_phase",
    "mac_phase",
    "edge_groups",
    "random_groups",
    "regression_scenarios",
    "load_activations",
    "activation_groups",
    "DEFAULT_ACTIVATIONS",
    "is_memory",
    "memory_store",
    "store_weights",
    "load_fields",
]

DEFAULT_ACTIVATIONS = Path(__file__).resolve().parent / "data" / "smollm2_acts.pt"


def _fmt(sc: Sidecar) -> Format:
    return sc.format


def _pack_rows(port: Port, fields: Mapping[str, torch.Tensor], lanes: int = 1) -> list[str]:
    """Hex payloads: ``fields[name]: [T, L, count]`` int64 unsigned elements per transfer.

    Vectorized: the payloads are assembled as a bit matrix and packed to bytes with numpy.
    """
    import numpy as np

    T = next(iter(fields.values())).shape[0]
    W8 = max(8, -(-port.width // 8) * 8)
    B = np.zeros((T, W8), dtype=np.uint8)
    for name, t in fields.items():
        f = port.fields[name]
        el = t.reshape(T, lanes * f.count).numpy().astype(np.int64)
        shifts = np.array([f.offset + lane * f.lane_stride + e * f.elem_width
                           for lane in range(lanes) for e in range(f.count)], dtype=np.int64)
        bit = np.arange(f.elem_width, dtype=np.int64)
        pos = (shifts[:, None] + bit[None, :]).ravel()
        vals = ((el[:, :, None] >> bit[None, None, :]) & 1).astype(np.uint8).reshape(T, -1)
        B[:, pos] |= vals
    packed = np.packbits(B[:, ::-1], axis=1)
    return [row.tobytes().hex() for row in packed]


def topk_expected(sc: Sidecar, bits: torch.Tensor) -> dict[str, torch.Tensor]:
    """Golden ``mask``/``values``/``index`` (unsigned patterns) of groups ``bits: [G, M]``."""
    f = _fmt(sc)
    x = golden.from_bits(bits, f)
    n, m = int(sc.n), sc.m
    mask = golden.nm_mask(x, n, m, fmt=f.name).to(torch.int64)
    values, index = golden.nm_compress(x, n, m, fmt=f.name)
    return {"mask": mask, "values": golden.to_bits(values, f.name).reshape(-1, n),
            "index": index.reshape(-1, n)}


def topk_phase(sc: Sidecar, bits: torch.Tensor, *, reset_after: bool = False) -> Phase:
    """One phase streaming groups ``bits: [G, M]`` through a selector (padded to the lanes)."""
    if bits.dim() != 2 or bits.shape[1] != sc.m:
        raise ValueError(f"expected groups of shape [G, {sc.m}], got {tuple(bits.shape)}")
    lanes = sc.lanes
    G = bits.shape[0]
    pad = (-G) % lanes
    if pad:
        bits = torch.cat([bits, torch.zeros(pad, sc.m, dtype=torch.int64)])
    exp = topk_expected(sc, bits)
    T = bits.shape[0] // lanes
    inputs = _pack_rows(sc.i, {"data": bits.reshape(T, lanes, sc.m)}, lanes)
    expected = _pack_rows(sc.o, {k: v.reshape(T, lanes, -1) for k, v in exp.items()}, lanes)
    return Phase(inputs=inputs, expected=expected, out_src=list(range(T)), groups=G,
                 reset_after=reset_after)


def _weight_fmt(sc: Sidecar) -> str:
    ww = sc.weight_width
    name = f"int{ww}"
    if name not in golden.FORMATS:
        raise ValueError(f"{sc.module}: weight_width {ww} has no golden format")
    return name


def _mac_expected(sc: Sidecar, x: torch.Tensor, w: torch.Tensor, spans: list[tuple[int, int]],
                  weight_fmt: str, acc_width: int,
                  eta: torch.Tensor | None = None) -> torch.Tensor:
    """Golden accumulators ``[R, K]`` (unsigned ``acc_width``-bit patterns) of the rows that
    cover groups ``spans[r] = (first, end)`` of ``x: [T, M]`` with weights ``w: [T, K, M]``.

    Rows go through :func:`golden.sparse_linear` together: row r becomes token r of a
    ``[R, C*M]`` activation matrix that holds only its own groups (zeros elsewhere; an all-zero
    group contributes nothing), so one call covers a chunk of rows.
    """
    K, m = w.shape[1], sc.m
    out = []
    f = _fmt(sc)
    if sc.unit == "linear" and sc.shift is not None:
        return _shift_expected(sc, x, w, spans, weight_fmt, acc_width, eta)
    for c0 in range(0, len(spans), 64):
        chunk = spans[c0 : c0 + 64]
        lo, hi = chunk[0][0], chunk[-1][1]
        X = torch.zeros(len(chunk), (hi - lo) * m, dtype=torch.int64)
        for r, (a, b) in enumerate(chunk):
            X[r, (a - lo) * m : (b - lo) * m] = x[a:b].reshape(-1)
        Wm = w[lo:hi].permute(1, 0, 2).reshape(K, (hi - lo) * m)
        if sc.unit == "dense_mac":
            y = golden.wrap(X @ Wm.to(torch.int64).T, acc_width)
        else:
            y = golden.sparse_linear(X.to(golden.dtype_of(f)), Wm.to(golden.dtype_of(weight_fmt)),
                                     int(sc.n), m, acc_width=acc_width, fmt=f.name,
                                     weight_fmt=weight_fmt)
        out.append(y & ((1 << acc_width) - 1))
    return torch.cat(out) if out else torch.zeros(0, K, dtype=torch.int64)


def _shift_expected(sc: Sidecar, x: torch.Tensor, w: torch.Tensor,
                    spans: list[tuple[int, int]], weight_fmt: str,
                    acc_width: int, etas: torch.Tensor | None) -> torch.Tensor:
    """As :func:`_mac_expected` for a linear unit with a shift: one
    :func:`golden.sparse_linear` call per row (zero padding is not neutral: ``0 - eta`` is
    a value the selector ranks, and the bias sums every weight of the row). ``etas: [T, M]``
    the run-time form's eta of every transfer (params.shift == "input")."""
    K, m = w.shape[1], sc.m
    f = _fmt(sc)
    out = []
    for a, b in spans:
        eta = sc.shift
        if is_shift_input(sc.params):  # eta per channel, from the transfers' eta fields
            eta = etas[a:b].reshape(-1)
        elif isinstance(eta, list):  # one per group position, the same for every group
            eta = torch.tensor(eta, dtype=torch.int64).repeat(b - a)
        X = x[a:b].reshape(1, (b - a) * m).to(golden.dtype_of(f))
        Wm = w[a:b].permute(1, 0, 2).reshape(K, (b - a) * m).to(golden.dtype_of(weight_fmt))
        y = golden.sparse_linear(X, Wm, int(sc.n), m, acc_width=acc_width, fmt=f.name,
                                 weight_fmt=weight_fmt, shift=eta)
        out.append(y & ((1 << acc_width) - 1))
    return torch.cat(out) if out else torch.zeros(0, K, dtype=torch.int64)


def mac_phase(sc: Sidecar, rows: Sequence[tuple[torch.Tensor, torch.Tensor]], *,
              reset_after: bool = False, complete_last_row: bool = True,
              reload_every: int | None = None) -> Phase:
    """One phase of MAC rows: each row is ``(x: [g, M] int, w: [g, K, M] int)``.

    For ``spmac`` the input is the golden compressed form of ``x``; for ``linear`` and
    ``dense_mac`` the dense groups. Expected: one ``acc`` transfer per row, from
    :func:`golden.sparse_linear` (dense rows: the int64 dot product), wrapped to ``acc_width``.
    With ``complete_last_row=False`` the last row carries no ``last`` and expects no output
    (used before a reset).

    Units with weights from memory (sidecar ``weights: memory``, DESIGN.md section 3.1): the
    rows' weights become bank contents (:func:`memory_store`), loaded by ``load`` transfers
    before the rows, and each row computes with the words its groups read (group q of a row
    reads word q mod depth). ``reload_every=r`` loads a new store before every r rows (a load
    right behind rows still in flight).
    """
    f = _fmt(sc)
    if not f.is_int:
        raise ValueError(f"{sc.module}: MAC units are verified for integer formats only, "
                         f"not {f.name}")
    if sc.lanes != 1:
        raise ValueError(f"{sc.module}: MAC units with lanes > 1 are not supported")
    wf = _weight_fmt(sc)
    acc_width = sc.acc_width
    K = sc.outputs
    m = sc.m
    memory = is_memory(sc)
    chunks = [list(rows)]
    if memory and reload_every:
        chunks = [list(rows[i: i + reload_every]) for i in range(0, len(rows), reload_every)]
    xs, ws, lasts, out_src, spans, loads = [], [], [], [], [], []
    etas: list[torch.Tensor] = []
    shift_in = sc.unit == "linear" and is_shift_input(sc.params)
    t = 0  # compute transfers so far
    for c, chunk in enumerate(chunks):
        if memory:
            store = memory_store(sc, chunk)
            chunk = [(x, store_weights(sc, store, x.shape[0])) for x, _ in chunk]
            loads.append((t, store))
        for r, (x, w) in enumerate(chunk):
            g = x.shape[0]
            if w.shape != (g, K, m):
                raise ValueError(f"row {r}: weights must be [{g}, {K}, {m}], got "
                                 f"{tuple(w.shape)}")
            xs.append(x)
            ws.append(w)
            if shift_in:
                etas.append(row_eta(f, x, len(etas)))
            last = torch.zeros(g, dtype=torch.int64)
            if complete_last_row or c < len(chunks) - 1 or r < len(chunk) - 1:
                last[-1] = 1
                out_src.append(t + g - 1)
                spans.append((t, t + g))
            t += g
            lasts.append(last)
    eta_t = torch.cat(etas) if etas else None
    expected = _mac_expected(sc, torch.cat(xs), torch.cat(ws), spans, wf, acc_width, eta_t)
    X = torch.cat(xs).to(golden.dtype_of(f))
    W = torch.cat(ws)
    L = torch.cat(lasts).reshape(-1, 1)
    T = X.shape[0]
    fields: dict[str, torch.Tensor] = {"last": L}
    if memory:
        fields["weights"] = torch.zeros(T, K, dtype=torch.int64)
        fields["load"] = torch.zeros(T, 1, dtype=torch.int64)
        fields["addr"] = torch.zeros(T, 1, dtype=torch.int64)
    else:
        fields["weights"] = golden.to_bits(W.to(golden.dtype_of(wf)), wf).reshape(T, K * m)
    if sc.unit == "spmac":
        values, index = golden.nm_compress(X, int(sc.n), m, fmt=f.name)
        fields["values"] = golden.to_bits(values, f.name).reshape(T, -1)
        fields["index"] = index.reshape(T, -1)
    else:
        fields["data"] = golden.to_bits(X, f.name).reshape(T, m)
    if shift_in:
        fields["eta"] = golden.to_bits(eta_t.to(golden.dtype_of(f)), f.name).reshape(T, m)
        fields["bias"] = _row_bias(sc, eta_t, W, L.reshape(-1), wf, acc_width)
    inputs = _pack_rows(sc.i, fields)
    # the load transfers go in front of their chunk; output sources shift by them
    shift = [0] * (T + 1)
    for at, store in reversed(loads):
        ld = _pack_rows(sc.i, load_fields(sc, store))
        inputs[at:at] = ld
        for i in range(at, T + 1):
            shift[i] += len(ld)
    out_src = [src + shift[src] for src in out_src]
    exp = _pack_rows(sc.o, {"acc": expected}) if spans else []
    return Phase(inputs=inputs, expected=exp, out_src=out_src, groups=T,
                 reset_after=reset_after)


def row_eta(f: Format, x: torch.Tensor, r: int) -> torch.Tensor:
    """eta ``[g, M]`` of row ``r`` (``x: [g, M]``) for the run-time S-PTS form, cycling
    through the forms it must serve: one eta for the layer, one per input channel, and the
    format's extremes (``x - eta`` saturates at both ends). Deterministic in ``x`` and ``r``."""
    g, m = x.shape
    gen = torch.Generator().manual_seed((int(x.abs().sum()) * 31 + r) & 0x7FFFFFFF)
    kind = r % 3
    if kind == 0:  # per layer, a small shift (as S-PTS calibrates)
        return torch.full((g, m), int(torch.randint(-8, 9, (1,), generator=gen)))
    if kind == 1:  # per channel, anywhere in the format's range
        return torch.randint(f.min, f.max + 1, (g, m), generator=gen)
    return torch.where(torch.rand(g, m, generator=gen) < 0.5, f.min, f.max).to(torch.int64)


def _row_bias(sc: Sidecar, eta: torch.Tensor, W: torch.Tensor, last: torch.Tensor,
              weight_fmt: str, acc_width: int) -> torch.Tensor:
    """The ``bias`` field of every transfer ``[T, K]``: on each row's last transfer the bias
    ``wrap(W eta)`` of the row (the host's figure, :func:`golden.shift_bias`), on the others
    junk the engine must ignore (the accumulator's figure would change if it did not)."""
    T, K, m = W.shape
    out = torch.zeros(T, K, dtype=torch.int64)
    start = 0
    gen = torch.Generator().manual_seed(T)
    lo, hi = -(1 << (acc_width - 1)), (1 << (acc_width - 1)) - 1
    for t in range(T):
        if int(last[t]):
            Wm = W[start:t + 1].permute(1, 0, 2).reshape(K, -1)
            out[t] = golden.shift_bias(Wm.to(golden.dtype_of(weight_fmt)),
                                       eta[start:t + 1].reshape(-1), fmt=_fmt(sc).name,
                                       acc_width=acc_width, weight_fmt=weight_fmt)
            start = t + 1
        else:
            out[t] = torch.randint(lo, hi + 1, (K,), generator=gen)
    return out


def is_memory(sc: Sidecar) -> bool:
    """The unit holds its weights in banks (DESIGN.md section 3.1)."""
    return sc.params.get("weights") == "memory"


def memory_store(sc: Sidecar, rows: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """Bank contents ``[depth, M, K]`` (word, bank, output) taken from the rows' weights: word q
    holds the weights of the first group q (mod depth) among the rows, so directed weights
    (extremes, the wrap-around rows) reach the multipliers; words no group sets hold those of
    the first group."""
    d, m, K = int(sc.params["depth"]), sc.m, sc.outputs
    store = torch.zeros(d, m, K, dtype=torch.int64)
    seen = torch.zeros(d, dtype=torch.bool)
    first = None
    for _, w in rows:
        for q in range(w.shape[0]):
            if first is None:
                first = w[q].T
            word = q % d
            if not seen[word]:
                store[word] = w[q].T
                seen[word] = True
        if bool(seen.all()):
            break
    if first is not None:
        store[~seen] = first
    return store


def store_weights(sc: Sidecar, store: torch.Tensor, groups: int) -> torch.Tensor:
    """Weights ``[groups, K, M]`` a row of ``groups`` groups reads from ``store``."""
    d = store.shape[0]
    words = torch.arange(groups) % d
    return store[words].permute(0, 2, 1)


def load_fields(sc: Sidecar, store: torch.Tensor) -> dict[str, torch.Tensor]:
    """Payload fields of the load transfers writing ``store`` (one per input feature,
    ``addr = (word << index_width) | bank``)."""
    d, m, K = store.shape
    iw = int(sc.params["index_width"])
    wf = _weight_fmt(sc)
    word = torch.arange(d).repeat_interleave(m)
    bank = torch.arange(m).repeat(d)
    T = d * m
    fields = {"last": torch.zeros(T, 1, dtype=torch.int64),
              "load": torch.ones(T, 1, dtype=torch.int64),
              "addr": ((word << iw) | bank).reshape(T, 1),
              "weights": golden.to_bits(store.reshape(T, K).to(golden.dtype_of(wf)), wf)}
    fields["data"] = torch.zeros(T, m, dtype=torch.int64)
    return fields


# --------------------------------------------------------------------------------- stimulus

def edge_groups(sc: Sidecar, seed: int) -> torch.Tensor:
    """Directed groups ``[G, M]`` (bit patterns): all-equal groups, ties at the N-th place,
    zeros, the most negative integer, and for floats NaN payloads, +-inf, -0.0, subnormals."""
    f = _fmt(sc)
    n, m = int(sc.n), sc.m
    w = f.width
    full = (1 << w) - 1
    gen = torch.Generator().manual_seed(seed)
    groups: list[list[int]] = []

    def neg(v: int) -> int:  # bit pattern of -v (ints) / sign flip (floats)
        return (-v) & full if f.is_int else v ^ (1 << (w - 1))

    specials = f.special_patterns()
    mag = f.key
    if f.is_int:
        mn, mx = f.sign_bit, f.max  # patterns of min and max
        small = [0, 1, 2, 3, mx, mn, full]  # full = -1
    else:
        small = specials
    # all-equal groups (and all-equal magnitudes with mixed signs)
    for v in sorted(set(specials)):
        groups.append([v] * m)
        groups.append([v if j % 2 else neg(v) for j in range(m)])
    groups.append([0] * m)
    if f.is_int:
        groups.append([mn] * m)
        groups.append([mn if j % 2 else mx for j in range(m)])
        groups.append([mx if j % 2 else mn for j in range(m)])
    # ties at the N-th place: N-1 larger distinct keys, then a run of equal keys
    big = sorted({v for v in specials if mag(v) > 0}, key=mag, reverse=True)
    for tie in specials:
        for _ in range(3):
            larger = [v for v in big if mag(v) > mag(tie)]
            if len(larger) < n - 1:
                larger = larger * (n - 1)
            grp = larger[: n - 1] + [tie, neg(tie), tie] + [0] * m
            grp = grp[:m]
            perm = torch.randperm(m, generator=gen).tolist()
            groups.append([grp[p] for p in perm])
    # random picks from the special values (many ties, every position)
    for _ in range(4 * m):
        idx = torch.randint(len(small), (m,), generator=gen).tolist()
        groups.append([small[i] for i in idx])
    return torch.tensor(groups, dtype=torch.int64) & full


def random_groups(sc: Sidecar, count: int, seed: int) -> torch.Tensor:
    """``[count, M]`` bit patterns: a mix of uniform patterns, tie-heavy small values and
    typical values (normal floats / small integers)."""
    f = _fmt(sc)
    m = sc.m
    w = f.width
    gen = torch.Generator().manual_seed(seed)
    full = (1 << w) - 1
    a = torch.randint(0, 1 << w, (count, m), generator=gen, dtype=torch.int64)
    if f.is_int:
        small = torch.randint(-3, 4, (count, m), generator=gen, dtype=torch.int64) & full
        typ = (torch.randn(count, m, generator=gen) * (1 << (w - 3))).round().clamp(
            -(1 << (w - 1)), (1 << (w - 1)) - 1).to(torch.int64) & full
    else:
        vals = torch.tensor([0.0, -0.0, 1.0, -1.0, 0.5, 2.0, -2.0]).to(golden.dtype_of(f))
        pick = torch.randint(0, len(vals), (count, m), generator=gen)
        small = golden.to_bits(vals[pick], f.name)
        typ = golden.to_bits(torch.randn(count, m, generator=gen).to(golden.dtype_of(f)), f.name)
    which = torch.randint(0, 3, (count, 1), generator=gen)
    return torch.where(which == 0, a, torch.where(which == 1, small, typ))


def _random_int(shape, width: int, gen: torch.Generator) -> torch.Tensor:
    return torch.randint(-(1 << (width - 1)), 1 << (width - 1), shape, generator=gen,
                         dtype=torch.int64)


def _mac_rows(sc: Sidecar, count: int, seed: int, *, max_groups: int = 4,
              extreme: bool = False) -> list[tuple[torch.Tensor, torch.Tensor]]:
    f = _fmt(sc)
    ww = sc.weight_width
    K = sc.outputs
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(count):
        g = int(torch.randint(1, max_groups + 1, (1,), generator=gen))
        if extreme:
            x = torch.full((g, sc.m), f.min, dtype=torch.int64)
            x[torch.rand(g, sc.m, generator=gen) < 0.3] = f.max
            w = torch.full((g, K, sc.m), -(1 << (ww - 1)), dtype=torch.int64)
            w[torch.rand(g, K, sc.m, generator=gen) < 0.3] = (1 << (ww - 1)) - 1
        else:
            x = _random_int((g, sc.m), f.width, gen)
            small = torch.rand(g, 1, generator=gen) < 0.3  # tie-heavy groups
            x = torch.where(small, x % 3 - 1, x)
            w = _random_int((g, K, sc.m), ww, gen)
        rows.append((x, w))
    return rows


def wrap_rows(sc: Sidecar, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]] | None:
    """One row long enough that the accumulators wrap around at ``acc_width`` (None when that
    needs more than 2**17 groups)."""
    f = _fmt(sc)
    ww = sc.weight_width
    acc_width = sc.acc_width
    K = sc.outputs
    kept = sc.m if sc.unit == "dense_mac" else int(sc.n)
    per_group = (1 << (f.width - 1)) * (1 << (ww - 1)) * kept
    groups = (1 << (acc_width - 1)) // per_group + 3
    if groups > (1 << 17):
        return None
    x = torch.full((groups, sc.m), f.min, dtype=torch.int64)
    w = torch.full((groups, K, sc.m), -(1 << (ww - 1)), dtype=torch.int64)
    # output k: the others scaled so that each wraps at a different point
    for k in range(1, K):
        w[:, k, :] = (1 << (ww - 1)) - k
    return [(x, w)]


# --------------------------------------------------------------------------------- activations

def load_activations(path: str | Path) -> dict[str, torch.Tensor]:
    """Activations from ``.pt`` (a tensor or a dict of tensors), ``.npy`` or ``.safetensors``.

    ``"default"`` means the embedded SmolLM2-135M-Instruct Linear-layer inputs.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        It cannot be read, holds no tensor, or has an unsupported extension.
    """
    p = DEFAULT_ACTIVATIONS if str(path) == "default" else Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"activation file {p} does not exist")
    suffix = p.suffix.lower()
    try:
        if suffix in (".pt", ".pth"):
            obj = torch.load(p, map_location="cpu", weights_only=True)
        elif suffix == ".npy":
            import numpy as np

            arr = np.load(p, allow_pickle=False)
            if arr.dtype.kind not in "iuf":
                raise ValueError(f"dtype {arr.dtype} is not numeric")
            obj = torch.from_numpy(arr.copy())
        elif suffix == ".safetensors":
            from safetensors.torch import load_file

            obj = load_file(str(p))
        else:
            raise ValueError(f"unsupported extension {suffix!r} (use .pt, .npy or .safetensors)")
    except ValueError as exc:
        raise ValueError(f"cannot read activations from {p}: {exc}") from None
    except Exception as exc:  # torch/numpy/safetensors raise many kinds on corrupt files
        raise ValueError(f"cannot read activations from {p}: {type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
    if isinstance(obj, torch.Tensor):
        obj = {p.stem: obj}
    if not isinstance(obj, Mapping) or not obj:
        raise ValueError(f"{p} holds {type(obj).__name__}, not a tensor or a dict of tensors")
    out = {}
    for k, v in obj.items():
        if not isinstance(v, torch.Tensor):
            raise ValueError(f"{p}: entry {k!r} is {type(v).__name__}, not a tensor")
        if v.dim() == 0:
            raise ValueError(f"{p}: entry {k!r} is a scalar; need [..., K] activations")
        out[str(k)] = v
    return out


def activation_groups(acts: Mapping[str, torch.Tensor], m: int, fmt: str, *,
                      limit: int | None = None) -> tuple[torch.Tensor, list[Segment]]:
    """Bit patterns ``[G, m]`` of every group of every tensor, in ``fmt``, and the
    :class:`~nmsparse.contract.vectors.Segment` of each tensor (for mismatch reports).

    Float tensors become ``fmt`` by a cast to bf16/fp16/fp32 (only from a float dtype), or by
    per-token quantization (:func:`golden.quantize_per_token`) for integer formats. Integer
    tensors must already be in ``fmt``'s range.

    Raises
    ------
    ValueError
        A last dimension that is not a multiple of ``m``, integers out of range, NaN/inf
        where integers are needed.
    TypeError
        A dtype that does not fit ``fmt`` (e.g. integers for a float format).
    """
    f = golden.get_format(fmt)
    parts, labels = [], []
    start = 0
    for name, t in acts.items():
        if t.shape[-1] % m:
            raise ValueError(f"activations {name!r}: last dimension {t.shape[-1]} is not a "
                             f"multiple of M = {m}")
        x = t.reshape(-1, t.shape[-1])
        if f.is_int:
            if x.dtype.is_floating_point:
                x, _ = golden.quantize_per_token(x, f.name)
            elif x.dtype in (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8):
                x = x.to(torch.int64)
                golden.resolve_format(x, f.name)
            else:
                raise TypeError(f"activations {name!r}: dtype {t.dtype} does not fit {f.name}")
        else:
            if not x.dtype.is_floating_point:
                raise TypeError(f"activations {name!r}: dtype {t.dtype} does not fit the float "
                                f"format {f.name} (pass float activations)")
            x = x.to(golden.dtype_of(f))
        bits = golden.to_bits(x, f.name).reshape(-1, m)
        parts.append(bits)
        labels.append(Segment(first=start, name=name, row_groups=t.shape[-1] // m))
        start += bits.shape[0]
        if limit is not None and start >= limit:
            break
    if not parts:
        raise ValueError("no activations")
    g = torch.cat(parts)
    if limit is not None:
        g = g[:limit]
    return g, labels


# --------------------------------------------------------------------------------- scenarios

def regression_scenarios(sc: Sidecar, seed: int, *, groups: int = 240, act_groups: int = 2048,
                         activations: Mapping[str, torch.Tensor] | None = None,
                         slow: bool = False) -> list[Scenario]:
    """The regression for one module (DESIGN.md contract), as scenarios for the vector file.

    - directed edge cases with o__ready held high: exact latency and full throughput asserted;
    - random groups under every idle x back-pressure pattern (3 x 3);
    - a reset in the middle of a stream;
    - real activations (selector: int8 per-token quantized or bf16; linear engine: int8);
    - MAC units: rows of several groups with ``last``, extreme values, accumulator wrap-around.
    """
    if sc.flexible:  # runtime patterns: DESIGN.md section 5
        from .flexvec import flex_scenarios

        return flex_scenarios(sc, seed, transfers=groups, act_groups=act_groups,
                              activations=activations, slow=slow)
    scen: list[Scenario] = []
    scale = 8 if slow else 1
    if sc.unit == "topk":
        scen.append(Scenario("directed edge cases", [topk_phase(sc, edge_groups(sc, seed))],
                             check_latency=True))
        for i, idle in enumerate(IDLE_PATTERNS):
            for j, bp in enumerate(BACKPRESSURE_PATTERNS):
                bits = random_groups(sc, groups * scale, seed + 10 * i + j)
                scen.append(Scenario(f"random idle={idle} bp={bp}", [topk_phase(sc, bits)],
                                     idle=idle, backpressure=bp,
                                     check_latency=idle == bp == "none"))
        a = random_groups(sc, 37 * sc.lanes + 1, seed + 101)
        b = random_groups(sc, 50, seed + 102)
        scen.append(Scenario("reset mid-stream",
                             [topk_phase(sc, a, reset_after=True), topk_phase(sc, b)],
                             idle="random:0.2", backpressure="cycle:1,0"))
        if activations is not None and sc.fmt in ("int8", "bf16") and act_groups:
            bits, segments = activation_groups(activations, sc.m, sc.fmt,
                                               limit=act_groups * scale)
            scen.append(Scenario(f"SmolLM2 activations ({sc.fmt})", [topk_phase(sc, bits)],
                                 check_latency=True, segments=segments))
        return scen
    # MAC units
    rows = max(8, groups // 8) * scale
    scen.append(Scenario("directed extremes",
                         [mac_phase(sc, _mac_rows(sc, rows, seed, extreme=True))],
                         check_latency=True))
    for i, idle in enumerate(IDLE_PATTERNS):
        for j, bp in enumerate(BACKPRESSURE_PATTERNS):
            r = _mac_rows(sc, rows, seed + 10 * i + j)
            scen.append(Scenario(f"random rows idle={idle} bp={bp}", [mac_phase(sc, r)],
                                 idle=idle, backpressure=bp,
                                 check_latency=idle == bp == "none"))
    single = _mac_rows(sc, rows, seed + 99, max_groups=1)
    scen.append(Scenario("one-group rows", [mac_phase(sc, single)], check_latency=True))
    a = _mac_rows(sc, 5, seed + 201)
    b = _mac_rows(sc, 6, seed + 202)
    scen.append(Scenario("reset mid-row",
                         [mac_phase(sc, a, reset_after=True, complete_last_row=False),
                          mac_phase(sc, b)],
                         idle="random:0.2", backpressure="random:0.3"))
    if is_memory(sc):
        # new weights right behind rows still in the pipeline: the load must wait for them
        r = _mac_rows(sc, rows, seed + 301)
        # the row before each reload is one group that keeps element 0 (the most negative
        # value): it reads bank 0 at word 0, the first word the reload writes
        r = [(x[:1], w[:1]) if i % 2 == 1 else (x, w) for i, (x, w) in enumerate(r)]
        for x, _ in r[1::2]:
            x[0, 0] = _fmt(sc).min
        scen.append(Scenario("weight reload between rows", [mac_phase(sc, r, reload_every=2)],
                             idle="random:0.2", backpressure="random:0.3"))
        scen.append(Scenario("weight reload between rows, full rate",
                             [mac_phase(sc, r, reload_every=3)]))
    wr = wrap_rows(sc, seed)
    if wr is not None:
        scen.append(Scenario(f"accumulator wrap-around at {sc.acc_width} bits",
                             [mac_phase(sc, wr)], check_latency=True, timeout=4000))
    if activations is not None and sc.unit == "linear" and sc.fmt == "int8" and act_groups:
        bits, segments = activation_groups(activations, sc.m, "int8", limit=act_groups * scale)
        x = golden.from_bits(bits, "int8").to(torch.int64)
        gen = torch.Generator().manual_seed(seed + 7)
        K, ww = sc.outputs, sc.weight_width
        # one row per token and layer: consecutive groups of the same token
        act_rows = []
        ends = [seg.first for seg in segments[1:]] + [x.shape[0]]
        for seg, end in zip(segments, ends, strict=True):
            for r0 in range(seg.first, end, seg.row_groups):
                xr = x[r0 : min(r0 + seg.row_groups, end)]
                act_rows.append((xr, _random_int((xr.shape[0], K, sc.m), ww, gen)))
        scen.append(Scenario("SmolLM2 activations (int8, per-token quantized)",
                             [mac_phase(sc, act_rows)], check_latency=True))
    return scen
