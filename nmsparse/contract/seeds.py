"""The one seed default of the project: ``$NMSPARSE_SEED``, else :data:`DEFAULT_SEED`."""

from __future__ import annotations

import os

__all__ = ["DEFAULT_SEED", "seed"]

DEFAULT_SEED = 1


def seed(override: int | None = None) -> int:
    """``override``, else ``$NMSPARSE_SEED``, else :data:`DEFAULT_SEED`.

    Raises
    ------
    ValueError
        ``$NMSPARSE_SEED`` is not an integer (the message names it).
    """
    if override is not None:
        return int(override)
    raw = os.environ.get("NMSPARSE_SEED")
    if raw is None or raw == "":
        return DEFAULT_SEED
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"NMSPARSE_SEED must be an integer, not {raw!r}") from None
