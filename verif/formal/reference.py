"""Verilog references of the N:M rule (DESIGN.md section 1), written from the sidecar alone.

::

    sidecar ─► fields, N, M, width, key rule ─► nmref_* modules (combinational Verilog)

The references are written straight from the formula, with none of the generator's
structure: key = |x| or the sign-cleared pattern (``Format.key_rule``, checked against
``Format.key`` for every bit pattern by :func:`verif.formal.equiv.prove_key`); rank(j) = the
sum of M - 1 comparison bits; keep iff rank < N; slot s of the compressed form takes the kept
element with s kept elements before it, searched over all M positions. They are meant to be
obviously right, not small: the solver pays for their size, the reader does not.
"""

from __future__ import annotations

from nmsparse.contract.formats import get_format
from nmsparse.contract.sidecar import Sidecar

__all__ = ["key_expr", "topk_reference", "rank_from_beats", "compaction_reference",
           "key_reference", "cmp_reference"]


def _clog2(x: int) -> int:
    return max(1, (x - 1).bit_length())


def key_expr(fmt: str, x: str) -> tuple[str, int]:
    """Verilog expression of the key of element ``x`` and its width (``Format.key_rule``)."""
    f = get_format(fmt)
    w = f.width
    if f.key_rule == "abs":
        return f"({x}[{w - 1}] ? (~{x} + {w}'d1) : {x})", w
    if f.key_rule == "clear_sign":
        return f"{x}[{w - 2}:0]", w - 1
    raise ValueError(f"no Verilog form for the key rule {f.key_rule!r} of {fmt}")


def key_reference(fmt: str) -> str:
    """``nmref_key(x) -> k``: one element's key."""
    f = get_format(fmt)
    expr, kw = key_expr(fmt, "x")
    return (f"module nmref_key(input [{f.width - 1}:0] x, output [{kw - 1}:0] k);\n"
            f"  assign k = {expr};\nendmodule\n")


def _rank_lines(m: int, n: int, key: str, pre: str, rw: str) -> list[str]:
    """rank(j) = #{i: key_i > key_j} + #{i < j: key_i == key_j} and keep_j = rank(j) < N."""
    out = []
    for j in range(m):
        terms = []
        for i in range(m):
            if i == j:
                continue
            op = ">=" if i < j else ">"
            terms.append(f"{{{{{rw}{{1'b0}}}}, ({key}{i} {op} {key}{j})}}")
        out.append(f"  wire [{rw}:0] {pre}rank{j} = " + " + ".join(terms) + ";")
        out.append(f"  wire {pre}keep{j} = {pre}rank{j} < {n};")
    return out


def _compaction_lines(m: int, n: int, w: int, iw: int, pre: str, keep: str, raw: str,
                      rw: str, vals: str, idx: str) -> list[str]:
    """Slot s = the kept j with s kept elements before it, over all M positions."""
    out = []
    for j in range(m):
        terms = [f"{{{{{rw}{{1'b0}}}}, {keep}{i}}}" for i in range(j)] or ["0"]
        out.append(f"  wire [{rw}:0] {pre}before{j} = " + " + ".join(terms) + ";")
    for s in range(n):
        v_terms = [f"({{{w}{{{keep}{j} && {pre}before{j} == {s}}}}} & {raw}{j})" for j in range(m)]
        i_terms = [f"({{{iw}{{{keep}{j} && {pre}before{j} == {s}}}}} & {iw}'d{j})"
                   for j in range(m)]
        out.append(f"  assign {vals}{s} = " + " | ".join(v_terms) + ";")
        out.append(f"  assign {idx}{s} = " + " | ".join(i_terms) + ";")
    return out


def topk_reference(sc: Sidecar, name: str = "nmref_topk") -> str:
    """The whole selector as one combinational module ``name(i, o)``: ``i`` and ``o`` are the
    module's ``i__payload`` and ``o__payload``, every lane, fields placed per the sidecar."""
    f = get_format(sc.fmt)
    n, m, w = sc.n, sc.m, f.width
    data = sc.i.fields["data"]
    mask, values, index = (sc.o.fields[k] for k in ("mask", "values", "index"))
    iw = index.elem_width
    rw = str(_clog2(m + 1))
    lines = [f"module {name}(input [{sc.i.width - 1}:0] i, output [{sc.o.width - 1}:0] o);"]
    covered = []
    for lane in range(sc.lanes):
        p = f"l{lane}_"
        for j in range(m):
            lo = data.offset + lane * data.lane_stride + j * data.elem_width
            expr, kw = key_expr(sc.fmt, f"{p}x{j}")
            lines.append(f"  wire [{w - 1}:0] {p}x{j} = i[{lo + w - 1}:{lo}];")
            lines.append(f"  wire [{kw - 1}:0] {p}k{j} = {expr};")
        lines += _rank_lines(m, n, f"{p}k", p, rw)
        for s in range(n):
            lines.append(f"  wire [{w - 1}:0] {p}v{s};")
            lines.append(f"  wire [{iw - 1}:0] {p}i{s};")
        lines += _compaction_lines(m, n, w, iw, p, f"{p}keep", f"{p}x", rw, f"{p}v", f"{p}i")
        for j in range(m):
            b = mask.offset + lane * mask.lane_stride + j
            lines.append(f"  assign o[{b}] = {p}keep{j};")
            covered.append((b, 1))
        for s in range(n):
            b = values.offset + lane * values.lane_stride + s * w
            lines.append(f"  assign o[{b + w - 1}:{b}] = {p}v{s};")
            b2 = index.offset + lane * index.lane_stride + s * iw
            lines.append(f"  assign o[{b2 + iw - 1}:{b2}] = {p}i{s};")
            covered += [(b, w), (b2, iw)]
    used = set()
    for b, width in covered:
        used |= set(range(b, b + width))
    for b in range(sc.o.width):
        if b not in used:
            lines.append(f"  assign o[{b}] = 1'b0;")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"


def rank_from_beats(m: int, n: int, name: str = "nmref_beats") -> str:
    """``name(b, keep)``: keep bits from the beats relation, ``b[t]`` = element i outranks
    element j for the t-th pair i < j (row-major), i.e. rank(j) = #{i < j: b_ij} +
    #{i > j: not b_ji} (the rule of section 1 written over the comparison bits)."""
    pairs = [(i, j) for i in range(m) for j in range(i + 1, m)]
    pos = {p: t for t, p in enumerate(pairs)}
    rw = _clog2(m + 1)
    lines = [f"module {name}(input [{len(pairs) - 1}:0] b, output [{m - 1}:0] keep);"]
    for j in range(m):
        terms = []
        for i in range(m):
            if i < j:
                terms.append(f"{{{{{rw}{{1'b0}}}}, b[{pos[(i, j)]}]}}")
            elif i > j:
                terms.append(f"{{{{{rw}{{1'b0}}}}, ~b[{pos[(j, i)]}]}}")
        lines.append(f"  wire [{rw}:0] rank{j} = " + " + ".join(terms) + ";")
        lines.append(f"  assign keep[{j}] = rank{j} < {n};")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"


def compaction_reference(m: int, n: int, w: int, name: str = "nmref_compact") -> str:
    """``name(keep, x, vals, idx)``: the compressed form of a group from its keep bits."""
    iw = _clog2(m)
    rw = _clog2(m + 1)
    lines = [f"module {name}(input [{m - 1}:0] keep, input [{m * w - 1}:0] x, "
             f"output [{n * w - 1}:0] vals, output [{n * iw - 1}:0] idx);"]
    for j in range(m):
        lines.append(f"  wire k{j} = keep[{j}];")
        lines.append(f"  wire [{w - 1}:0] x{j} = x[{(j + 1) * w - 1}:{j * w}];")
    for s in range(n):
        lines.append(f"  wire [{w - 1}:0] v{s};")
        lines.append(f"  wire [{iw - 1}:0] i{s};")
        lines.append(f"  assign vals[{(s + 1) * w - 1}:{s * w}] = v{s};")
        lines.append(f"  assign idx[{(s + 1) * iw - 1}:{s * iw}] = i{s};")
    lines += _compaction_lines(m, n, w, iw, "", "k", "x", str(rw), "v", "i")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"


def cmp_reference(kw: int, iw: int, name: str = "nmref_cmp") -> str:
    """``name(ka, ia, kb, ib, a_wins)``: a outranks b (larger key; equal keys: lower index)."""
    return (f"module {name}(input [{kw - 1}:0] ka, input [{iw - 1}:0] ia, "
            f"input [{kw - 1}:0] kb, input [{iw - 1}:0] ib, output a_wins);\n"
            f"  assign a_wins = (ka > kb) || (ka == kb && ia < ib);\nendmodule\n")
