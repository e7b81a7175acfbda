#!/usr/bin/env python3
"""Compiler wrapper that caches Verilator's runtime objects across design points.

Verilator's makefile compiles the same runtime sources (``verilated.cpp``,
``verilated_vpi.cpp``, ...) into every build directory; they dominate the build time of the
small models the regression simulates. :mod:`verif.runner` passes this script as the
makefile's ``OBJCACHE`` prefix, so each compile arrives here as ``g++ ... -c -o X.o Y.cpp``.
Compiles of a source under ``$VERILATOR_ROOT/include`` are cached in ``$NMSPARSE_OBJCACHE``,
keyed by the full command line (minus the output name), the source text and the compiler's
version; every other compile runs unchanged. Writes are atomic, so parallel builds share the
cache safely.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path


def _main(argv: list[str]) -> int:
    cache = os.environ.get("NMSPARSE_OBJCACHE")
    root = os.environ.get("VERILATOR_ROOT")
    if not argv:
        return 2
    if not cache or not root or "-c" not in argv or "-o" not in argv:
        return subprocess.call(argv)
    out = argv[argv.index("-o") + 1]
    srcs = [a for a in argv if a.endswith((".cpp", ".cc")) and os.path.isfile(a)]
    inc = str(Path(root, "include").resolve())
    if len(srcs) != 1 or not str(Path(srcs[0]).resolve()).startswith(inc):
        return subprocess.call(argv)
    h = hashlib.sha256()
    for a in argv:
        if a != out:
            h.update(a.encode() + b"\0")
    h.update(Path(srcs[0]).read_bytes())
    try:
        h.update(subprocess.run([argv[0], "--version"], capture_output=True).stdout)
    except OSError:
        return subprocess.call(argv)
    entry = Path(cache) / (h.hexdigest() + ".o")
    if entry.is_file():
        shutil.copyfile(entry, out)
        return 0
    rc = subprocess.call(argv)
    if rc == 0:
        Path(cache).mkdir(parents=True, exist_ok=True)
        tmp = entry.with_suffix(f".{os.getpid()}.tmp")
        shutil.copyfile(out, tmp)
        os.replace(tmp, entry)
    return rc


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
