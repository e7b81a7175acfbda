"""Mutation run: broken copies of emitted Verilog that the proofs must reject.

::

    hdl/<module>.v ─ mutate (text) ─► tmp/<module>.v + same sidecar ─► prove ─► must FAIL

Operators (each finds its site in the Verilog text, or reports that it does not apply):

- ``flip-tie``: the first key comparison's tie rule flipped (rank: ``>=`` to ``>``; network:
  the index halves of a comparator's ``{key, ~index}`` operands exchanged);
- ``drop-comparator``: one comparator output tied to a constant (it never exchanges);
- ``swap-outputs``: the wires of output slots 0 and 1 of ``values`` exchanged;
- ``stick-valid``: the ``o__valid`` register loads 1 on every clock;
- ``delay-skew`` (modules with delay lines in distributed RAM): the first delay line reads
  one word later (address + 1): a delay one stage short;
- ``delay-write-always``: the first delay line writes on every clock, stall or not.

The radix architecture has no comparators: ``flip-tie`` drops the tie term of element 0 at
the first index step (so element 0 loses ties to a later element), ``drop-comparator``
forces a threshold bit to 0.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nmsparse.contract.sidecar import Sidecar, find_module

__all__ = ["MUTANTS", "Mutant", "mutate"]


@dataclass
class Mutant:
    name: str
    what: str  # the edited line(s)
    proofs: str  # "datapath" or "stream": which proofs must catch it


def _sub_line(text: str, pattern: str, fn: Callable[[str], str | None]) -> tuple[str, str]:
    for mt in re.finditer(pattern, text, flags=re.M):
        line = mt.group(0)
        new = fn(line)
        if new is not None and new != line:
            return text[: mt.start()] + new + text[mt.end():], f"{line.strip()}  ->  {new.strip()}"
    raise LookupError(f"no site for this mutation found (pattern {pattern!r})")


def _radix_first_index_step(sc: Sidecar) -> int:
    from nmsparse.contract.formats import get_format

    return get_format(sc.fmt).key_width


def flip_tie(sc: Sidecar, text: str) -> tuple[str, str]:
    if sc.arch == "radix":
        e = _radix_first_index_step(sc)
        return _sub_line(text, rf"^\s*assign sel_s{e}_u0 = .* \| .*;$",
                         lambda ln: re.sub(r"= (.*) \| (.*);", r"= \1;", ln))
    if sc.arch == "network":
        # {key_a, ~idx_a} > {key_b, ~idx_b}: exchange the index halves (higher index wins ties)
        pat = re.compile(r"\{ (.*), (\S+\s*) \} > \{ (.*), (\S+\s*) \}")
        return _sub_line(text, r"^\s*assign sel_c\d+ = .* > .*;$",
                         lambda ln: pat.sub(lambda m: f"{{ {m[1]}, {m[4]} }} > "
                                                      f"{{ {m[3]}, {m[2]} }}", ln, count=1))
    return _sub_line(text, r"^\s*assign .* >= .*;$",
                     lambda ln: None if "'h0" in ln or "'d0" in ln else ln.replace(">=", ">", 1))


def drop_comparator(sc: Sidecar, text: str) -> tuple[str, str]:
    if sc.arch == "radix":
        return _sub_line(text, r"^\s*assign sel_thr1 = .*;$",
                         lambda ln: re.sub(r"= .*;", "= 1'h0;", ln))
    if sc.arch == "network":
        return _sub_line(text, r"^\s*assign sel_c\d+ = .*;$",
                         lambda ln: re.sub(r"= .*;", "= 1'h0;", ln))
    return _sub_line(text, r"^\s*assign .* >= .*;$",
                     lambda ln: None if "'h0" in ln or "'d0" in ln
                     else re.sub(r"(assign \S+\s+)= .*;", r"\1= 1'h1;", ln))


def swap_outputs(sc: Sidecar, text: str) -> tuple[str, str]:
    f = sc.o.fields["values"]
    w = f.elem_width
    s0 = f"o__payload[{f.offset + w - 1}:{f.offset}]"
    s1 = f"o__payload[{f.offset + 2 * w - 1}:{f.offset + w}]"
    m0 = re.search(rf"^(\s*assign {re.escape(s0)} = )(.*);$", text, flags=re.M)
    m1 = re.search(rf"^(\s*assign {re.escape(s1)} = )(.*);$", text, flags=re.M)
    if not (m0 and m1):
        raise LookupError(f"no assignments of {s0} and {s1} found")
    a, b = m0.group(2), m1.group(2)
    text = text.replace(m0.group(0), m0.group(1) + b + ";").replace(m1.group(0),
                                                                   m1.group(1) + a + ";")
    return text, f"{s0} = {a}; {s1} = {b}  ->  exchanged"


def stick_valid(sc: Sidecar, text: str) -> tuple[str, str]:
    return _sub_line(text, r"^\s*o__valid <= .*;$", lambda ln: re.sub(r"<= .*;", "<= 1'h1;", ln))


def _first_memory(text: str) -> str:
    from .delaylines import MEMORY_DECL

    mt = MEMORY_DECL.search(text)
    if mt is None:
        raise LookupError("no delay line (memory) in this module")
    return re.escape(mt.group(1))


def delay_skew(sc: Sidecar, text: str) -> tuple[str, str]:
    mem = _first_memory(text)
    return _sub_line(text, rf"^\s*assign \S+ = {mem}\[\S+\];$",
                     lambda ln: re.sub(r"\[(\S+)\];", r"[\1 + 1'h1];", ln))


def delay_write_always(sc: Sidecar, text: str) -> tuple[str, str]:
    mem = _first_memory(text)
    return _sub_line(text, rf"^\s*if \(\S+\)\n\s*{mem}\[",
                     lambda ln: re.sub(r"if \(\S+\)", "if (1'h1)", ln))


MUTANTS: dict[str, tuple[Callable[[Sidecar, str], tuple[str, str]], str]] = {
    "flip-tie": (flip_tie, "datapath"),
    "drop-comparator": (drop_comparator, "datapath"),
    "swap-outputs": (swap_outputs, "datapath"),
    "stick-valid": (stick_valid, "stream"),
    "delay-skew": (delay_skew, "datapath"),
    "delay-write-always": (delay_write_always, "datapath"),
}


def mutate(sc: Sidecar, name: str, out_dir: Path) -> tuple[Sidecar, Mutant]:
    """Write the mutant ``name`` of ``sc`` into ``out_dir``; returns its sidecar and record."""
    fn, proofs = MUTANTS[name]
    out_dir.mkdir(parents=True, exist_ok=True)
    text, what = fn(sc, sc.verilog.read_text())
    (out_dir / f"{sc.module}.v").write_text(text)
    shutil.copy(sc.path, out_dir / f"{sc.module}.json")
    return find_module(out_dir, sc.module), Mutant(name, what, proofs)
