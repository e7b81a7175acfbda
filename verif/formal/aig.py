"""And-inverter graphs from Yosys, pipeline stripping, CNF and CaDiCaL.

::

    Verilog ──yosys (flatten, aigmap)──► ASCII AIGER + map ──► Aig
        Aig.strip()      registers replaced by wires, after checking that every path from an
                         input to an output crosses the same number of registers
        Cnf.add_aig()    Tseitin clauses of the cone of the wanted outputs
        Cnf.solve()      CaDiCaL (python-sat): UNSAT = the miter can never differ

Stripping instead of unrolling keeps the formula the size of the combinational logic (each
stage once), at the price of a structural side condition (balanced register depth) that is
checked, never assumed. Latch initial values are ignored: nothing proven here depends on them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Aig", "AigError", "Cnf", "read_aiger", "read_aiger_inits", "support_vars"]


class AigError(ValueError):
    """An AIGER file that cannot be used (unbalanced pipeline, feedback, missing signal)."""


@dataclass
class Aig:
    """An ASCII AIGER graph with named bits.

    Members
    -------
    inputs : dict[str, list[int]]
        Port name -> AIGER literal of each bit (LSB first).
    outputs : dict[str, list[int]]
        Port name -> literal driving each bit.
    latches : dict[int, int]
        Latch variable -> literal of its next state.
    ands : dict[int, tuple[int, int]]
        AND variable -> its two input literals.
    latch_names : dict[int, str]
        Latch variable -> ``name[bit]`` from the map file.
    """

    inputs: dict[str, list[int]] = field(default_factory=dict)
    outputs: dict[str, list[int]] = field(default_factory=dict)
    latches: dict[int, int] = field(default_factory=dict)
    ands: dict[int, tuple[int, int]] = field(default_factory=dict)
    latch_names: dict[int, str] = field(default_factory=dict)
    input_vars: set[int] = field(default_factory=set)

    def strip(self, roots: Iterable[int], input_depth: dict[int, int] | None = None,
              check: bool = True) -> tuple[dict[int, int], int | None]:
        """Replace every latch by its next-state literal, checking register balance.

        Parameters
        ----------
        roots : literals
            The outputs whose cone is stripped.
        input_depth : dict, optional
            Register depth of some input variables (cut points); others are at depth 0.
        check : bool
            Raise on unbalanced paths (False: only substitute, e.g. for simulation).

        Returns
        -------
        subst, depth
            ``subst`` maps each latch variable in the cone to the literal (latch-free) that
            replaces it; ``depth`` is the common register depth of ``roots`` (None: constant).

        Raises
        ------
        AigError
            A gate mixes paths of different register depth, or a register feeds itself.
        """
        input_depth = input_depth or {}
        depth: dict[int, int | None] = {0: None}
        subst: dict[int, int] = {}
        state: dict[int, int] = {}  # 1 = on the stack, 2 = done

        def resolve(lit: int) -> int:
            v = lit >> 1
            if v in subst:
                return subst[v] ^ (lit & 1)
            return lit

        for root in roots:
            stack = [root >> 1]
            while stack:
                v = stack[-1]
                if state.get(v) == 2 or v == 0:
                    stack.pop()
                    continue
                if v in self.input_vars:
                    depth[v] = input_depth.get(v, 0)
                    state[v] = 2
                    stack.pop()
                    continue
                kids = ([self.latches[v] >> 1] if v in self.latches
                        else [a >> 1 for a in self.ands[v]])
                if state.get(v) != 1:
                    state[v] = 1
                    todo = [k for k in kids if state.get(k) != 2 and k != 0]
                    for k in todo:
                        if state.get(k) == 1:
                            raise AigError(f"register feedback through {self.name_of(k)}: "
                                           "the datapath is not a pipeline")
                    stack.extend(todo)
                    continue
                stack.pop()
                state[v] = 2
                if v in self.latches:
                    d = depth[self.latches[v] >> 1]
                    depth[v] = None if d is None else d + 1
                    subst[v] = resolve(self.latches[v])
                else:
                    a, b = self.ands[v]
                    da, db = depth[a >> 1], depth[b >> 1]
                    if check and da is not None and db is not None and da != db:
                        raise AigError(f"unbalanced pipeline: a gate combines signals "
                                       f"{da} and {db} registers deep (near "
                                       f"{self.name_of(v)})")
                    depth[v] = da if da is not None else db
        ds = {depth[r >> 1] for r in roots} - {None}
        if len(ds) > 1 and check:
            raise AigError(f"outputs at different register depths {sorted(ds)}")
        self._subst = subst
        return subst, (max(ds) if ds else None)

    def cut(self, lits: Iterable[int]) -> Aig:
        """A copy in which the variables of ``lits`` are free inputs (their gates removed):
        every use of such a node, downstream of the cut, then takes any value."""
        vs = {lit >> 1 for lit in lits} - {0}
        ands = {v: d for v, d in self.ands.items() if v not in vs}
        latches = {v: d for v, d in self.latches.items() if v not in vs}
        return Aig(dict(self.inputs), dict(self.outputs), latches, ands,
                   dict(self.latch_names), self.input_vars | vs)

    def name_of(self, v: int) -> str:
        """A readable name for variable ``v`` (a latch name when known)."""
        if v in self.latch_names:
            return self.latch_names[v]
        for name, lits in self.inputs.items():
            for bit, lit in enumerate(lits):
                if lit >> 1 == v:
                    return f"{name}[{bit}]"
        return f"gate {v}"

    def evaluate(self, values: dict[int, int], roots: Sequence[int],
                 subst: dict[int, int] | None = None) -> list[int]:
        """Bit-parallel evaluation: ``values`` maps input variables to Python ints (one bit
        per simulation run); returns the value of each root literal, with latches stripped
        by ``subst`` (or read from ``values`` when absent). ``-1`` means all ones."""
        subst = subst or {}
        memo: dict[int, int] = {0: 0}
        memo.update(values)

        def val(lit: int) -> int:
            return ~memo[lit >> 1] if lit & 1 else memo[lit >> 1]

        for root in roots:
            stack = [root >> 1]
            while stack:
                v = stack[-1]
                if v in memo:
                    stack.pop()
                    continue
                if v in subst:
                    k = subst[v] >> 1
                    if k not in memo:
                        stack.append(k)
                        continue
                    memo[v] = ~memo[k] if subst[v] & 1 else memo[k]
                elif v in self.ands:
                    a, b = self.ands[v]
                    todo = [x >> 1 for x in (a, b) if x >> 1 not in memo]
                    if todo:
                        stack.extend(todo)
                        continue
                    memo[v] = val(a) & val(b)
                else:
                    raise AigError(f"no value for {self.name_of(v)}")
                stack.pop()
        return [val(r) for r in roots]


_MAP = re.compile(r"^(input|output|latch|init)\s+(\d+)\s+(\d+)\s+(.*)$")


def read_aiger(aag: str | Path, map_file: str | Path) -> Aig:
    """Read an ASCII AIGER file and the Yosys ``write_aiger -map`` file beside it."""
    lines = Path(aag).read_text().split("\n")
    head = lines[0].split()
    if head[0] != "aag":
        raise AigError(f"{aag}: not an ASCII AIGER file")
    _m, ni, nl, no, na = (int(x) for x in head[1:6])
    pos = 1
    in_lits = [int(lines[pos + k]) for k in range(ni)]
    pos += ni
    latches = {}
    latch_order = []
    for k in range(nl):
        parts = lines[pos + k].split()
        latches[int(parts[0]) >> 1] = int(parts[1])
        latch_order.append(int(parts[0]) >> 1)
    pos += nl
    out_lits = [int(lines[pos + k]) for k in range(no)]
    pos += no
    ands = {}
    for k in range(na):
        lhs, a, b = (int(x) for x in lines[pos + k].split())
        ands[lhs >> 1] = (a, b)
    aig = Aig(latches=latches, ands=ands, input_vars={lit >> 1 for lit in in_lits})
    for line in Path(map_file).read_text().split("\n"):
        mt = _MAP.match(line.strip())
        if not mt:
            continue
        kind, idx, bit, name = mt.group(1), int(mt.group(2)), int(mt.group(3)), mt.group(4)
        name = name.lstrip("\\")
        if kind == "input":
            lits = aig.inputs.setdefault(name, [])
            lit = in_lits[idx]
        elif kind == "output":
            lits = aig.outputs.setdefault(name, [])
            lit = out_lits[idx]
        elif kind == "latch":
            aig.latch_names[latch_order[idx]] = f"{name}[{bit}]"
            continue
        else:
            continue
        while len(lits) <= bit:
            lits.append(0)
        lits[bit] = lit
    ports = Path(map_file).with_suffix(".ports.json")
    if ports.exists():
        _constant_bits(aig, ports)
    return aig


def _constant_bits(aig: Aig, ports: Path) -> None:
    """Put the constant bits of the output ports in place: the ``write_aiger`` map leaves
    them out (the reader would otherwise see a 0 where the netlist drives a 1). ``ports``:
    ``write_json -selected`` of the output ports (Yosys ``select o:*``)."""
    for mod in json.loads(ports.read_text())["modules"].values():
        if not int(mod.get("attributes", {}).get("top", "0"), 2):
            continue
        for name, info in mod["netnames"].items():
            name = name.lstrip("\\")
            bits = info["bits"]
            if name not in aig.outputs and any(isinstance(b, int) for b in bits):
                continue  # not an output of the AIGER file
            lits = aig.outputs.setdefault(name, [])
            lits.extend([0] * (len(bits) - len(lits)))
            for k, b in enumerate(bits):
                if b in ("0", "1"):
                    lits[k] = int(b)
                elif not isinstance(b, int):
                    raise AigError(f"output {name}[{k}] is undefined ({b!r}) in the netlist")


def read_aiger_inits(aag: str | Path) -> dict[int, int]:
    """Initial value (0 or 1) of every latch whose AIGER line gives one (``lhs next init``;
    an ``init`` equal to ``lhs`` means uninitialised and is left out)."""
    lines = Path(aag).read_text().split("\n")
    _m, ni, nl = (int(x) for x in lines[0].split()[1:4])
    out = {}
    for k in range(nl):
        parts = lines[1 + ni + k].split()
        if len(parts) < 3:
            out[int(parts[0]) >> 1] = 0  # AIGER 1.9: no third field = initialised to 0
        elif parts[2] in ("0", "1"):
            out[int(parts[0]) >> 1] = int(parts[2])
    return out


def support_vars(g: Aig, roots: Iterable[int]) -> set[int]:
    """The variables without a gate (inputs, latches) in the cone of ``roots``."""
    seen: set[int] = set()
    out: set[int] = set()
    stack = [r >> 1 for r in roots]
    while stack:
        v = stack.pop()
        if v in seen or v == 0:
            continue
        seen.add(v)
        if v in g.ands:
            stack += [x >> 1 for x in g.ands[v]]
        else:
            out.add(v)
    return out


class Cnf:
    """Tseitin encoding of AIG cones into one CaDiCaL instance.

    Several graphs can share variables: :meth:`add_aig` takes a ``bind`` map from input
    variables of that graph to existing CNF literals (e.g. the same input bits for the
    design and the reference).
    """

    def __init__(self) -> None:
        self.nvars = 1  # CNF variable 1 is the constant true
        self.clauses: list[list[int]] = [[1]]

    def new(self) -> int:
        self.nvars += 1
        return self.nvars

    def add_aig(self, aig: Aig, roots: Sequence[int], bind: dict[int, int] | None = None,
                subst: dict[int, int] | None = None) -> list[int]:
        """CNF literals of ``roots`` (AIGER literals); free inputs get fresh variables,
        latches are replaced through ``subst``. Returns one CNF literal per root."""
        bind = dict(bind or {})
        subst = subst or {}
        var: dict[int, int] = {0: -1}  # AIGER variable 0 is false
        var.update(bind)
        clauses = self.clauses

        def lit_of(lit: int) -> int:
            x = var[lit >> 1]
            return -x if lit & 1 else x

        for root in roots:
            stack = [root >> 1]
            while stack:
                v = stack[-1]
                if v in var:
                    stack.pop()
                    continue
                if v in subst:
                    k = subst[v] >> 1
                    if k not in var:
                        stack.append(k)
                        continue
                    var[v] = -var[k] if subst[v] & 1 else var[k]
                elif v in aig.ands:
                    a, b = aig.ands[v]
                    todo = [x >> 1 for x in (a, b) if x >> 1 not in var]
                    if todo:
                        stack.extend(todo)
                        continue
                    x, la, lb = self.new(), lit_of(a), lit_of(b)
                    clauses += [[-x, la], [-x, lb], [x, -la, -lb]]
                    var[v] = x
                elif v in aig.input_vars:
                    var[v] = self.new()
                elif v in aig.latches:
                    raise AigError(f"latch {aig.name_of(v)} in the cone was not stripped")
                else:
                    raise AigError(f"undefined AIGER variable {v}")
                stack.pop()
        self._last_vars = var
        return [lit_of(r) for r in roots]

    def xor(self, a: int, b: int) -> int:
        x = self.new()
        self.clauses += [[-x, a, b], [-x, -a, -b], [x, -a, b], [x, a, -b]]
        return x

    def and_(self, a: int, b: int) -> int:
        x = self.new()
        self.clauses += [[-x, a], [-x, b], [x, -a, -b]]
        return x

    def or_(self, lits: Sequence[int]) -> int:
        x = self.new()
        self.clauses.append([-x, *lits])
        self.clauses += [[x, -a] for a in lits]
        return x

    def differ(self, a: Sequence[int], b: Sequence[int]) -> int:
        """A literal that is true iff the two bit vectors differ somewhere."""
        if len(a) != len(b):
            raise AigError(f"cannot compare vectors of {len(a)} and {len(b)} bits")
        return self.or_([self.xor(x, y) for x, y in zip(a, b, strict=True)])

    def solve_each(self, assumption_sets: Iterable[Sequence[int]],
                   solver: str = "cadical195") -> tuple[int, list[int]] | None:
        """One solver, several calls: ``(k, model)`` of the first satisfiable assumption set
        ``k``, or None if all are UNSAT (learnt clauses carry over between calls)."""
        from pysat.solvers import Solver

        with Solver(name=solver, bootstrap_with=self.clauses) as s:
            for k, assumptions in enumerate(assumption_sets):
                if s.solve(assumptions=list(assumptions)):
                    return k, s.get_model()
        return None

    def solve(self, assumptions: Sequence[int] = (), solver: str = "cadical195"
              ) -> list[int] | None:
        """None if UNSAT, else the model (list of signed literals)."""
        from pysat.solvers import Solver

        with Solver(name=solver, bootstrap_with=self.clauses) as s:
            if s.solve(assumptions=list(assumptions)):
                return s.get_model()
            return None


def value_of(model: Sequence[int], lits: Sequence[int]) -> int:
    """Integer (LSB first) of CNF literals ``lits`` in ``model``."""
    pos = set(x for x in model if x > 0)
    v = 0
    for k, lit in enumerate(lits):
        bit = (abs(lit) in pos) != (lit < 0)
        if lit == 1 or lit == -1:
            bit = lit == 1
        v |= int(bit) << k
    return v
