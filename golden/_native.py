"""Build and load the C fast path of the selection rule (``_native.c``), once per machine.

The shared library is compiled with the system C compiler into a cache directory
(:func:`nmsparse.contract.toolchain.cache_dir`), keyed by a hash of the source, and loaded with
ctypes. Without a compiler the golden model falls back to a pure-torch path that gives the
same masks (both are tested against the reference); :func:`available` says which is in use.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch

from nmsparse.contract.formats import Format
from nmsparse.contract.networks import threshold_network
from nmsparse.contract.toolchain import cache_dir

_SRC = Path(__file__).with_name("_native.c")

# storage codes of _native.c
STORAGE = {
    torch.int8: 0,
    torch.int16: 1,
    torch.int32: 2,
    torch.int64: 3,
    torch.float16: 4,
    torch.bfloat16: 4,
    torch.float32: 5,
}
MAX_M = 1024


@functools.cache
def _library() -> ctypes.CDLL | None:
    if os.environ.get("NMSPARSE_NO_NATIVE"):
        return None
    src = _SRC.read_bytes()
    # -march=native: key the build by the CPU too, in case the cache directory is shared
    cpu = platform.machine() + _cpu_model()
    tag = hashlib.sha256(src + cpu.encode()).hexdigest()[:16]
    lib = cache_dir() / f"nmsparse_native_{tag}.so"
    if not lib.exists():
        cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
        if cc is None:
            return None
        lib.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=lib.parent) as tmp:
            out = Path(tmp) / lib.name
            base = [cc, "-O3", "-shared", "-fPIC", "-o", str(out), str(_SRC)]
            for extra in (["-march=native", "-fopenmp"], ["-fopenmp"], []):
                r = subprocess.run(base[:1] + extra + base[1:], capture_output=True)
                if r.returncode == 0:
                    break
            else:
                return None
            os.replace(out, lib)  # atomic: parallel test workers may race here
    dll = ctypes.CDLL(str(lib))
    dll.nm_mask.restype = ctypes.c_int
    dll.nm_mask.argtypes = [
        ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int, ctypes.c_int,
        ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int,
        ctypes.c_int, ctypes.c_int64,
    ]
    dll.row_median_f32.restype = ctypes.c_int
    dll.row_median_f32.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int]
    dll.nm_mask_kernel.restype = ctypes.c_int
    dll.nm_mask_kernel.argtypes = [ctypes.c_int, ctypes.c_int]
    return dll


def kernel(m: int, dtype: torch.dtype) -> str | None:
    """Which compiled kernel masks ``m``-groups of ``dtype``: ``"byte"`` (AVX-512 VBMI, int8
    storage, M in 2, 4, 8, 16, 32), ``"generic"``, or None without the compiled path."""
    dll = _library()
    if dll is None or dtype not in STORAGE or m > MAX_M:
        return None
    return "byte" if dll.nm_mask_kernel(m, STORAGE[dtype]) else "generic"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "flags")):
                return line
    except OSError:
        pass
    return ""


def available() -> bool:
    """True when the compiled fast path is in use."""
    return _library() is not None


@functools.cache
def _threshold(m: int, n: int) -> tuple[torch.Tensor, int, int]:
    """(comparators as int32 [C, 2], comparator count, lines) for the N-th largest of M."""
    net = threshold_network(n, m)
    comps = torch.tensor(net.comparators, dtype=torch.int32).reshape(-1, 2).contiguous()
    return comps, net.size, net.lines


def nm_mask_native(x: torch.Tensor, n: int, m: int, fmt: Format) -> torch.Tensor | None:
    """Mask via the compiled kernel, or None when it cannot run (caller falls back).

    ``x`` must already be checked to be readable as ``fmt`` (its key rule goes to the kernel).
    """
    dll = _library()
    if dll is None or m > MAX_M or x.dtype not in STORAGE:
        return None
    x = x.contiguous()
    out = torch.empty(x.shape, dtype=torch.bool)
    ib = max(1, (m - 1).bit_length())
    net, ncomp, lines = _threshold(m, n)
    key_abs = fmt.key_rule == "abs"
    rc = dll.nm_mask(
        x.data_ptr(), out.data_ptr(), x.numel() // m, m, n, STORAGE[x.dtype],
        net.data_ptr(), ncomp, lines, ib, int(key_abs), 0 if key_abs else fmt.sign_bit - 1,
    )
    if rc != 0:
        return None
    return out


def row_median(x: torch.Tensor) -> torch.Tensor | None:
    """Lower median over the last dimension of float32 CPU ``x`` (``[..., 1]``, the value
    ``x.median(dim=-1, keepdim=True).values`` gives), or None without the compiled path."""
    dll = _library()
    if dll is None or x.dtype != torch.float32 or x.device.type != "cpu" or not x.numel():
        return None
    x = x.detach().contiguous()
    k = x.shape[-1]
    out = torch.empty((*x.shape[:-1], 1), dtype=torch.float32)
    if dll.row_median_f32(x.data_ptr(), out.data_ptr(), x.numel() // k, k) != 0:
        return None
    return out
