"""The shell every generated unit shares: one validated config in, two streams out.

A unit is built from its configuration object alone (``NMTopK(TopKConfig(...))``); the type
is checked before the Elaboratable exists, so a wrong argument leaves no half-built
component behind. The ``i`` and ``o`` streams carry the config's payload layouts.
"""

from __future__ import annotations

from typing import Any, ClassVar

from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["StreamUnit"]


class StreamUnit(wiring.Component):
    """Base class: ``config_class`` names the configuration type the unit takes.

    Members
    -------
    i : ``In(stream.Signature(config.input_layout()))``
    o : ``Out(stream.Signature(config.output_layout()))``
    """

    config_class: ClassVar[type] = object

    def __new__(cls, config: Any = None, *args: Any, **kwargs: Any):
        if not isinstance(config, cls.config_class):
            want = f"{cls.config_class.__module__}.{cls.config_class.__name__}"
            got = (f"keyword arguments {', '.join(kwargs)}" if config is None and kwargs
                   else repr(config))
            raise TypeError(f"{cls.__name__} takes one {want} (e.g. {cls.__name__}("
                            f"{cls.config_class.__name__}(...))), not {got}")
        return super().__new__(cls)

    def __init__(self, config: Any):
        self._config = config
        super().__init__({
            "i": In(stream.Signature(config.input_layout())),
            "o": Out(stream.Signature(config.output_layout())),
        })

    @property
    def config(self) -> Any:
        """The validated design point."""
        return self._config

    @property
    def latency(self) -> int:
        """Cycles from an input transfer (for MAC units: the row's ``last`` group) to the
        earliest output transfer."""
        return self._config.latency
