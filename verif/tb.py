"""cocotb testbench components for valid/ready streams (run inside the simulator).

Small classes wired by :class:`Testbench` (cf. cocotb's ``matrix_multiplier`` example):

- :class:`StreamDriver` offers precomputed payloads on the ``i`` stream, inserting idle cycles
  from a pattern (:func:`pattern`), and records the cycle of each accepted transfer;
- :class:`Backpressure` drives ``o__ready`` from a pattern;
- :class:`StreamMonitor` records every transfer on the ``o`` stream (cycle and payload);
- :class:`Scoreboard` compares the observed outputs in order with the expected ones (computed
  beforehand by the golden model) and decodes the first mismatches field by field, using the
  module's sidecar.

cocotb costs tens of microseconds per awaited trigger, so the components do not await
anything themselves: :meth:`Testbench.run_phase` awaits one rising edge per clock and calls
each component's ``step``. Under Verilator, values read right after ``await RisingEdge(clk)``
are those sampled by that edge (the design has not reacted yet), so each edge's handshakes are
decided from what is read there; new inputs are written right after. Payloads are moved as
binary strings / Python ints and decoded after the run.

This module imports no torch: the expected outputs arrive in the vector file.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from nmsparse.contract.formats import get_format, signed
from nmsparse.contract.sidecar import STREAM_PORTS as _STREAM
from nmsparse.contract.sidecar import Port, Sidecar
from nmsparse.contract.vectors import Segment

__all__ = [
    "pattern",
    "StreamDriver",
    "StreamMonitor",
    "Backpressure",
    "Scoreboard",
    "Testbench",
    "decode",
]

try:  # fast path: hand binary strings straight to the GPI (public API as fallback)
    from cocotb.handle import _GPISetAction

    _DEPOSIT = _GPISetAction.DEPOSIT.value
except Exception:  # pragma: no cover - other cocotb versions
    _DEPOSIT = None


class _Sig:
    """Fast read/write access to one top-level signal as binary strings."""

    def __init__(self, handle) -> None:
        self.handle = handle
        self.width = len(handle)
        gpi = getattr(handle, "_handle", None)
        self._get = getattr(gpi, "get_signal_val_binstr", None)
        self._set = getattr(gpi, "set_signal_val_binstr", None)
        if self._get is None:  # pragma: no cover
            self._get = lambda: str(handle.value)
        if self._set is None or _DEPOSIT is None:  # pragma: no cover
            self._set = None

    def read(self) -> str:
        return self._get()

    def high(self) -> bool:
        return self._get() == "1"

    def write_bin(self, s: str) -> None:
        if self._set is not None:
            self._set(_DEPOSIT, s)
        else:  # pragma: no cover
            self.handle.value = int(s, 2)

    def write_int(self, v: int) -> None:
        self.write_bin(format(v, f"0{self.width}b"))


def pattern(spec: str, seed: int = 0) -> Iterator[int]:
    """An endless 0/1 iterator from a spec string.

    ``"none"`` (always 1), ``"cycle:1,1,1,0"`` (repeat the list), ``"random:P"`` (0 with
    probability P, from a generator seeded with ``seed``).
    """
    if spec in ("none", "", None):
        return itertools.repeat(1)
    kind, _, arg = spec.partition(":")
    if kind == "cycle":
        bits = [int(b) for b in arg.split(",")]
        if not bits or any(b not in (0, 1) for b in bits):
            raise ValueError(f"bad cycle pattern {spec!r}")
        return itertools.cycle(bits)
    if kind == "random":
        p = float(arg)
        rng = random.Random(seed)
        return (0 if rng.random() < p else 1 for _ in itertools.count())
    raise ValueError(f"unknown pattern {spec!r}: use none, cycle:1,1,1,0 or random:P")


class StreamDriver:
    """Offers payloads (binary strings) on a valid/ready stream, with idle insertion.

    Valid never depends on ready; once offered, a payload stays until it is accepted.
    """

    def __init__(self, payload: _Sig, valid: _Sig, ready: _Sig, idle: Iterator[int]) -> None:
        self.payload, self.valid, self.ready = payload, valid, ready
        self.idle = idle
        self.items: Sequence[str] = ()
        self.pos = 0
        self.offering = False
        self.accepted_cycles: list[int] = []
        self.stall_cycles = 0  # cycles offered but not accepted

    def load(self, items: Sequence[str]) -> None:
        self.items, self.pos = items, 0
        self.accepted_cycles = []
        self.stall_cycles = 0
        self._fresh = False
        self._on_bus = -1

    @property
    def done(self) -> bool:
        return self.pos >= len(self.items)

    def sample(self, cycle: int) -> bool:
        """Decide this edge's handshake (values read before the design reacts)."""
        if self.offering:
            if self.ready.high():
                self.accepted_cycles.append(cycle)
                self.pos += 1
                self._fresh = True
                return True
            self.stall_cycles += 1
        return False

    def drive(self) -> None:
        """Set valid/payload for the next clock (an offer is held until it is accepted)."""
        if self.offering and not self._fresh:
            return
        self._fresh = False
        if self.pos < len(self.items) and next(self.idle):
            if self._on_bus != self.pos:
                self.payload.write_bin(self.items[self.pos])
                self._on_bus = self.pos
            if not self.offering:
                self.valid.write_bin("1")
                self.offering = True
        elif self.offering:
            self.valid.write_bin("0")
            self.offering = False

    def idle_now(self) -> None:
        if self.offering:
            self.valid.write_bin("0")
            self.offering = False


class Backpressure:
    """Drives the consumer's ready from a 0/1 pattern."""

    def __init__(self, ready: _Sig, pat: Iterator[int]) -> None:
        self.ready_sig, self.pat = ready, pat
        self.ready = False

    def drive(self) -> None:
        r = bool(next(self.pat))
        if r != self.ready:
            self.ready_sig.write_bin("1" if r else "0")
            self.ready = r

    def force(self, r: bool) -> None:
        self.ready_sig.write_bin("1" if r else "0")
        self.ready = r


class StreamMonitor:
    """Records each transfer of a stream: cycle and payload (binary string)."""

    def __init__(self, payload: _Sig, valid: _Sig, bp: Backpressure) -> None:
        self.payload, self.valid, self.bp = payload, valid, bp
        self.cycles: list[int] = []
        self.payloads: list[str] = []

    def clear(self) -> None:
        self.cycles, self.payloads = [], []

    def sample(self, cycle: int) -> None:
        if self.bp.ready and self.valid.high():
            self.cycles.append(cycle)
            self.payloads.append(self.payload.read())


def decode(port: Port, payload: int, lane: int, fmt: str) -> dict[str, str]:
    """Field-by-field text of one lane of ``payload`` (values in ``fmt``, accumulators signed)."""
    out = {}
    f_elem = get_format(fmt)
    for name, f in port.fields.items():
        el = f.unpack_lane(payload, lane)
        if name == "mask":
            out[name] = "".join(str(b) for b in el) + " (element 0 first)"
        elif name in ("index", "last"):
            out[name] = str(el if len(el) > 1 else el[0])
        elif name in ("values", "data"):
            out[name] = "[" + ", ".join(f_elem.describe(b) for b in el) + "]"
        elif name in ("acc", "weights"):
            out[name] = str([signed(b, f.elem_width) for b in el])
        else:
            out[name] = str(el)
    return out


@dataclass
class PhaseResult:
    """What one phase observed. ``timed_out``: nothing moved for ``timeout`` cycles (the
    phase was abandoned); ``valid_seen``: ``o__valid`` was high on some edge."""

    outputs: list[int] = field(default_factory=list)
    out_cycles: list[int] = field(default_factory=list)
    in_cycles: list[int] = field(default_factory=list)
    stall_cycles: int = 0
    cycles: int = 0
    seconds: float = 0.0
    input_done: bool = True
    timed_out: bool = False
    valid_seen: bool = False
    end_cycle: int = 0

    def stall_text(self, n_inputs: int, n_expected: int, timeout: int) -> str:
        """One line saying where a phase that timed out stopped."""
        text = f"timeout: no transfer for {timeout} cycles (stopped at cycle {self.end_cycle}); "
        if not self.valid_seen:
            text += f"o__valid never went high (0 of {n_expected} output transfers)"
        elif self.out_cycles:
            text += (f"{len(self.outputs)} of {n_expected} output transfers, the last "
                     f"(#{len(self.outputs) - 1}) at cycle {self.out_cycles[-1]}")
        else:
            text += "o__valid went high but no output transfer completed (o__ready low?)"
        text += f"; {len(self.in_cycles)} of {n_inputs} input transfers accepted"
        if self.in_cycles:
            text += f", the last (#{len(self.in_cycles) - 1}) at cycle {self.in_cycles[-1]}"
        if not self.input_done:
            text += " (i__ready stuck low?)"
        return text


class Scoreboard:
    """In-order comparison of observed against expected outputs, with readable reports."""

    def __init__(self, sc: Sidecar, max_reports: int = 5) -> None:
        self.sc = sc
        self.max_reports = max_reports
        self.mismatches = 0
        self.checked = 0
        self.reports: list[str] = []
        self.errors: list[str] = []

    def _lanes(self) -> int:
        return self.sc.lanes if self.sc.unit == "topk" else 1

    def describe_group(self, transfer: int, lane: int, segments: Sequence[Segment] = ()) -> str:
        g = transfer * self._lanes() + lane
        text = f"group {g} (transfer {transfer}, lane {lane})"
        for seg in reversed(segments):
            if g >= seg.first:
                r, q = divmod(g - seg.first, seg.row_groups)
                text += f" = {seg.name}: row {r}, group {q} of the row"
                break
        return text

    def compare(self, name: str, inputs: Sequence[int], expected: Sequence[int],
                observed: Sequence[int], out_src: Sequence[int] | None, *, prefix: bool = False,
                segments: Sequence[Segment] = ()) -> None:
        """Compare ``observed`` with ``expected`` (or a prefix of it when ``prefix``)."""
        sc = self.sc
        n_cmp = min(len(expected), len(observed))
        if len(observed) > len(expected):
            self.errors.append(f"{name}: {len(observed) - len(expected)} unexpected extra output "
                               f"transfer(s) (got {len(observed)}, expected {len(expected)})")
        elif len(observed) < len(expected) and not prefix:
            self.errors.append(f"{name}: only {len(observed)} of {len(expected)} output transfers "
                               "arrived")
        lanes = self._lanes()
        for k in range(n_cmp):
            e, o = expected[k], observed[k]
            for lane in range(lanes):
                self.checked += 1
                if lanes > 1:
                    fields = sc.o.fields.values()
                    if all(f.lane_bits(e, lane) == f.lane_bits(o, lane) for f in fields):
                        continue
                elif e == o:
                    continue
                self.mismatches += 1
                if len(self.reports) < self.max_reports:
                    self.reports.append(self._report(name, k, lane, inputs, e, o, out_src,
                                                     segments))

    def _report(self, name, k, lane, inputs, e, o, out_src, segments) -> str:
        sc = self.sc
        src = out_src[k] if out_src is not None and k < len(out_src) else k
        lines = [f"{name}: MISMATCH at output {k}, " + (
            self.describe_group(src, lane, segments) if sc.unit == "topk"
            else f"input transfer {src}" if sc.unit == "topk_flex"
            else f"row ending at input transfer {src}")]
        if sc.unit in ("topk", "topk_flex") and src < len(inputs):
            d = decode(sc.i, inputs[src], lane, sc.fmt)
            lines += [f"  input  {k_}: {v}" for k_, v in d.items()]
        ed = decode(sc.o, e, lane, sc.fmt)
        od = decode(sc.o, o, lane, sc.fmt)
        for f in sc.o.fields:
            flag = "" if ed[f] == od[f] else "   <-- differs"
            lines.append(f"  expected {f}: {ed[f]}")
            lines.append(f"  actual   {f}: {od[f]}{flag}")
        return "\n".join(lines)


class Testbench:
    """Drives one module from its sidecar: clock, reset, driver, back-pressure, monitor.

    Raises
    ------
    ValueError
        A port of the sidecar is missing in the simulated design or has another width (one
        line; the regression reports it as an interface error, not a crash).
    """

    def __init__(self, dut, sc: Sidecar) -> None:
        self.dut, self.sc = dut, sc
        sigs = {}
        for name, port in sc.ports.items():
            try:
                handle = getattr(dut, name)
            except AttributeError:
                raise ValueError(f"{sc.module}: the Verilog has no port {name}, which the "
                                 f"sidecar lists") from None
            sigs[name] = _Sig(handle)
            if sigs[name].width != port.width:
                raise ValueError(f"{sc.module}: {name} is {sigs[name].width} bits in the "
                                 f"Verilog but {port.width} in the sidecar")
        self.clk = dut.clk
        self.rst = sigs["rst"]
        self.i_payload = sigs["i__payload"]
        self.i_valid = sigs["i__valid"]
        self.i_ready = sigs["i__ready"]
        self.o_payload = sigs["o__payload"]
        self.o_valid = sigs["o__valid"]
        self.o_ready = sigs["o__ready"]
        # inputs beyond the stream ports are held at 0 (the sidecar lists them)
        self._extra_inputs = [sigs[n] for n, p in sc.ports.items()
                              if p.dir == "in" and n not in _STREAM]
        self.cycle = 0
        self._edge = None

    async def start(self) -> None:
        from cocotb.clock import Clock
        from cocotb.triggers import RisingEdge

        Clock(self.clk, 10, unit="ns").start()
        self._edge = RisingEdge(self.clk)
        for sig in self._extra_inputs:
            sig.write_int(0)
        self.i_valid.write_bin("0")
        self.o_ready.write_bin("0")
        self.i_payload.write_int(0)
        await self.reset()

    async def reset(self, cycles: int = 2) -> None:
        self.rst.write_bin("1")
        self.i_valid.write_bin("0")
        for _ in range(cycles):
            await self._edge
            self.cycle += 1
        self.rst.write_bin("0")

    async def idle(self, cycles: int) -> None:
        for _ in range(cycles):
            await self._edge
            self.cycle += 1

    async def run_phase(self, items: Sequence[str], n_expected: int, *, idle: Iterator[int],
                        bp: Iterator[int], reset_after: bool = False, timeout: int = 1000,
                        drain: int = 8,
                        progress: Callable[[int, list[int], list[int]], None] | None = None,
                        every: int = 4096) -> PhaseResult:
        """Stream ``items``; collect outputs until ``n_expected`` arrived (plus ``drain`` cycles
        to catch extra ones), or reset right after the last input is accepted.

        A phase in which nothing moves for ``timeout`` cycles is abandoned (``timed_out``)
        and the design is reset. ``progress(cycle, input cycles, output cycles)`` is called
        every ``every`` cycles (the runner reports it if the simulator hangs)."""
        drv = StreamDriver(self.i_payload, self.i_valid, self.i_ready, idle)
        bpg = Backpressure(self.o_ready, bp)
        mon = StreamMonitor(self.o_payload, self.o_valid, bpg)
        drv.load(items)
        bpg.force(False)
        edge = self._edge
        t0 = time.perf_counter()
        c0 = self.cycle
        quiet = 0
        last_progress = c0
        extra = drain + self.sc.latency
        timed_out = valid_seen = False
        o_valid = self.o_valid
        bpg.drive()
        drv.drive()
        while True:
            await edge
            cyc = self.cycle = self.cycle + 1
            n_out = len(mon.payloads)
            if drv.sample(cyc):
                last_progress = cyc
            mon.sample(cyc)
            if len(mon.payloads) != n_out:
                last_progress = cyc
            elif not valid_seen and o_valid.high():
                valid_seen = True
            if drv.done:
                if reset_after:
                    break
                if len(mon.payloads) >= n_expected:
                    quiet += 1
                    if quiet > extra:
                        break
            if cyc - last_progress > timeout:
                timed_out = True  # neither input accepted nor output produced for `timeout`
                break
            if progress is not None and cyc % every == 0:
                progress(cyc, drv.accepted_cycles, mon.cycles)
            bpg.drive()
            drv.drive()
        drv.idle_now()
        res = PhaseResult(
            outputs=[int(s, 2) if set(s) <= {"0", "1"} else -1 for s in mon.payloads],
            out_cycles=mon.cycles, in_cycles=drv.accepted_cycles,
            stall_cycles=drv.stall_cycles, cycles=self.cycle - c0,
            seconds=time.perf_counter() - t0, timed_out=timed_out,
            valid_seen=valid_seen or bool(mon.cycles), end_cycle=self.cycle,
        )
        res.input_done = drv.done
        if reset_after or timed_out:
            await self.reset()
        return res
