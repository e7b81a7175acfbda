"""The foundation every part of nmsparse reads and none re-derives (DESIGN.md).

Pure Python: no torch, no Amaranth, so the golden model, the generators, the testbenches, the
reports and the users' own scripts can all import it.

- :mod:`.formats`: number formats and the selection key;
- :mod:`.patterns`: N:M patterns (parse, check, label, order; ``dense``, ``unstructured``);
- :mod:`.units`: the hardware units, their payload fields and module names;
- :mod:`.sidecar`: the sidecar JSON schema, writer and typed reader;
- :mod:`.vectors`: the testbench's vector and result files;
- :mod:`.networks`: comparator networks (selection, sorting, threshold) and their checks;
- :mod:`.toolchain`: where every external tool is;
- :mod:`.seeds`: the seed default.
"""

from .formats import FORMATS, Format, get_format
from .patterns import (
    SHIPPED_PATTERNS,
    Pattern,
    Sparsity,
    check_nm,
    parse_pattern,
    parse_sparsity,
    pattern_label,
    pattern_order,
)
from .seeds import DEFAULT_SEED, seed
from .sidecar import Field, Port, Sidecar, SidecarError, find_module, list_modules, load_sidecar
from .units import UNITS, Unit, module_name
from .version import VERSION

__all__ = [
    "VERSION",
    "FORMATS",
    "Format",
    "get_format",
    "SHIPPED_PATTERNS",
    "Pattern",
    "Sparsity",
    "check_nm",
    "parse_pattern",
    "parse_sparsity",
    "pattern_label",
    "pattern_order",
    "DEFAULT_SEED",
    "seed",
    "Field",
    "Port",
    "Sidecar",
    "SidecarError",
    "find_module",
    "list_modules",
    "load_sidecar",
    "UNITS",
    "Unit",
    "module_name",
]
