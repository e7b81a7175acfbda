"""The interface of a top-k architecture, and the pieces every architecture shares.

An architecture object is made from its validated :class:`gen.config.TopKConfig`. It reports
its comparator count and depth (for the sidecar), its default number of register stages, and
its layers; :meth:`Architecture.build` builds one lane into an Amaranth module, calling the
``step`` callback after each layer so that the scheduled register stages go in there.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from amaranth.hdl import Cat, Module, Mux, Value

from nmsparse.contract.formats import get_format

from ..pipeline import tree_or

if TYPE_CHECKING:
    from ..config import TopKConfig

__all__ = ["ARCHITECTURES", "Architecture", "Layer", "Step", "key_sign", "key_bits",
           "from_key_sign",
           "mask_from_index"]

#: name -> architecture class, filled as subclasses are defined.
ARCHITECTURES: dict[str, type[Architecture]] = {}

Step = Callable[[Any], Any]
"""``step(tree) -> tree``: the scheduled register stages after one layer (or none)."""


@dataclass(frozen=True)
class Layer:
    """One combinational layer of a lane.

    ``delay_ns`` is the architecture's delay model for it (logic and routing on ECP5 in the
    project's flow), which the scheduler (:mod:`gen.schedule`) sums per register segment.
    """

    name: str
    delay_ns: float = 1.0


class Architecture:
    """Base class: one lane of an N:M top-k selector.

    Subclasses set :attr:`name` and :attr:`DELAY_NS` and implement :meth:`layer_kinds`,
    :meth:`build`, :meth:`comparators` and :meth:`default_pipeline`.
    """

    name: ClassVar[str] = ""
    #: The delay model: ns per layer kind (logic and routing on ECP5 in the project's flow),
    #: fitted on placed designs (``bench/calibrate_delays.py``), and how much longer every
    #: layer gets per doubling of M beyond 16 (nets grow with the placement).
    DELAY_NS: ClassVar[dict[str, float]] = {}
    SCALE_PER_LOG2M: ClassVar[float] = 0.0
    #: How optimistic the fitted model is for a whole design scheduled by it (a fraction of
    #: the clock): the model fits register-to-register segments one by one, but a placed
    #: design runs at the pace of the worst of hundreds of them, each a little off. The
    #: automatic schedule aims at ``target_mhz / (1 - SCHEDULE_MARGIN)``; set from the
    #: architecture's calibration designs (``bench/data/qor/<arch>_calibration.json``).
    SCHEDULE_MARGIN: ClassVar[float] = 0.0

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name:
            ARCHITECTURES[cls.name] = cls

    def __init__(self, config: TopKConfig) -> None:
        self.config = config

    def layer_kinds(self) -> list[tuple[str, str]]:  # pragma: no cover - abstract
        """(name, kind) of the layers :meth:`build` passes, in order (one ``step`` call
        after each); the kind names the layer's entry of :attr:`DELAY_NS`."""
        raise NotImplementedError

    def layers(self) -> list[Layer]:
        """The layers with their modelled delays."""
        scale = 1.0 + self.SCALE_PER_LOG2M * (math.log2(self.config.m) - 4)
        return [Layer(name, round(self.DELAY_NS.get(kind, 1.0) * scale, 3))
                for name, kind in self.layer_kinds()]

    def comparators(self) -> int:  # pragma: no cover - abstract
        """Key comparators of one lane."""
        raise NotImplementedError

    def network_depth(self) -> int:
        """Comparator layers of the selection."""
        return 1

    def default_pipeline(self) -> int:  # pragma: no cover - abstract
        """Register stages used when the configuration gives neither stages nor a clock."""
        raise NotImplementedError

    def live_bits(self) -> list[int]:
        """Bits a register after each layer would hold: a dry-run build that records the
        width of the live values at every ``step``."""
        from amaranth.hdl import Signal

        from ..pipeline import probe_live_bits

        cfg = self.config
        data = [Signal(cfg.width, name=f"probe_x{j}") for j in range(cfg.m)]
        return probe_live_bits(len(self.layers()),
                               lambda m, step: self.build(m, step, data, None, "probe"))

    def metrics(self) -> dict[str, int]:
        """Extra sidecar figures of the architecture (names ending in ``comparators`` are
        multiplied by the lane count)."""
        return {}

    def build(self, m: Module, step: Step, data: list[Value], side: Any,
              name: str) -> tuple[Value, list[Value], list[Value], Any]:  # pragma: no cover
        """Build one lane into ``m``.

        Parameters
        ----------
        step : callable
            Called with the tree of live values after each layer; returns it registered or not.
        data : list of Value
            The M raw elements of the group.
        side : tree of Value
            Sideband that must come out delayed exactly like the data (may be None).
        name : str
            Prefix of the signal names.

        Returns
        -------
        mask, values, index, side
            ``mask`` (M bits), ``values`` (N raw elements) and ``index`` (N indices), both in
            ascending index order, and the delayed sideband.
        """
        raise NotImplementedError


def key_sign(cfg: TopKConfig, x: Value) -> tuple[Value, Value]:
    """Hardware form of the contract's key (``Format.key``) and the sign bit of one element:
    |x| for integers (``width`` bits, so |-128| = 128), the sign-cleared pattern for floats."""
    x = Value.cast(x)
    w = cfg.width
    if get_format(cfg.fmt).is_int:
        return abs(x.as_signed()), x[w - 1]
    return x[: w - 1], x[w - 1]


def key_bits(cfg: TopKConfig, x: Value) -> list[Value]:
    """The same key as :func:`key_sign`, bit by bit (LSB first) as LUT logic with no
    negation chain: for integers bit b of |x| is ``x_b ^ (sign & (x_0 | .. | x_(b-1)))`` and
    the top bit ``sign & ~(x_0 | .. | x_(w-2))`` (only the most negative value has it); for
    floats the bits below the sign. ``tests/test_gen_topk.py`` checks both forms against
    ``Format.key`` for every int4 and int8 pattern."""
    x = Value.cast(x)
    w = cfg.width
    if not get_format(cfg.fmt).is_int:
        return [x[b] for b in range(w - 1)]
    sign = x[w - 1]
    bits = [x[0]] + [x[b] ^ (sign & x[:b].any()) for b in range(1, w - 1)]
    return bits + [sign & ~x[: w - 1].any()]


def from_key_sign(cfg: TopKConfig, key: Value, sign: Value) -> Value:
    """Raw bit pattern back from key and sign (integers: -|x| if negative)."""
    if get_format(cfg.fmt).is_int:
        return Mux(sign, -key, key)[: cfg.width]
    return Cat(key, sign)


def mask_from_index(cfg: TopKConfig, index: list[Value]) -> Value:
    """Mask bit j = some slot holds index j (ascending: slot s can only hold s..s+M-N)."""
    n, m = cfg.n, cfg.m
    bits = []
    for j in range(m):
        hits = [index[s] == j for s in range(max(0, j - (m - n)), min(j, n - 1) + 1)]
        bits.append(tree_or(hits))
    return Cat(*bits)
