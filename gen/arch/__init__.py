"""Top-k selector architectures: one class each, behind one interface (:class:`Architecture`).

Every architecture implements the same contract (DESIGN.md sections 1 and 3) for one lane:
M raw elements in; the keep ``mask``, the kept ``values`` and their ``index`` in ascending
index order out. It describes itself as a sequence of combinational *layers*; the generator
places the register stages between layers (:mod:`gen.pipeline`). A new architecture is one new
subclass in its own module, registered by its ``name``.

- :class:`~gen.arch.rank.RankArch` (``"rank"``): comparison matrix, popcounts, compaction;
- :class:`~gen.arch.network.NetworkArch` (``"network"``): a selection network on
  (key, index) pairs, then an index sort of the survivors;
- :class:`~gen.arch.radix.RadixArch` (``"radix"``): an MSB-first search for the N-th largest
  (key, ~index), one count per bit, then the rank unit's compaction.

Structures shared by more than one architecture (counts, compaction) are in
:mod:`gen.arch.parts`.
"""

from .base import ARCHITECTURES, Architecture, Layer
from .network import NetworkArch
from .radix import RadixArch
from .rank import RankArch

__all__ = ["ARCHITECTURES", "Architecture", "Layer", "RankArch", "NetworkArch", "RadixArch"]
