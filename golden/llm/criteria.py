"""Selection criteria: the score whose N:M mask decides which activations are kept.

Every criterion turns the activations ``x: [..., S, K]`` (S tokens, K input features) into a
non-negative score of the same shape; the kept set is then the DESIGN.md section 1 rule on the
score (the N largest per group of M, lower index wins ties), so it maps onto the same
selector hardware: only the value fed to the comparators changes.

- ``magnitude``: ``|x|``. What the shipped selectors compute directly.
- ``weight_norm`` (Amber-Pruner / WINA-like): ``|x_j| * f_j`` with a static per-input-channel
  factor from the weights, ``f_j = ||W[:, j]||_2`` (the column L2 norm, over every layer that
  consumes this input, e.g. q, k and v together). With ``standardize=True`` the rows of W are
  first standardized (zero mean, unit variance), as Amber-Pruner does. In hardware: one
  multiplier per lane before the selector, factors in a small ROM.
- ``clact``: ``|x_ij| * ||X_:,j|| / ||X_i,:||`` (CLACT): the magnitude times the channel's
  L2 norm over the tokens of the current sequence, divided by the token's L2 norm. The row
  norm is a per-token constant, so within a token it does not change the ranking; the column
  norm favours channels that are large across the sequence. Note: in a causal LM the column
  norm sees the whole sequence (later tokens included), as in the paper's batch formulation.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["CRITERIA", "check_criterion", "weight_norm_factor", "clact_score", "score"]

CRITERIA: tuple[str, ...] = ("magnitude", "weight_norm", "clact")


def check_criterion(criterion: object) -> str:
    """Return ``criterion`` if valid, else ``ValueError`` naming the valid ones."""
    if not isinstance(criterion, str) or criterion not in CRITERIA:
        raise ValueError(f"unknown criterion {criterion!r}; valid criteria: {', '.join(CRITERIA)}")
    return criterion


def weight_norm_factor(
    weights: Sequence[torch.Tensor], *, standardize: bool = False
) -> torch.Tensor:
    """Static per-input-channel factor ``f: [K]``: column L2 norms of the stacked weights.

    Parameters
    ----------
    weights : sequence of torch.Tensor
        ``[O_i, K]`` weight matrices of every layer that reads the same input (their rows are
        stacked, so q/k/v of one attention block share one factor and one mask).
    standardize : bool
        Standardize each row (zero mean, unit variance) before taking the norms.
    """
    if not weights:
        raise ValueError("weight_norm_factor needs at least one weight matrix")
    ks = {w.shape[-1] for w in weights}
    if len(ks) != 1 or any(w.dim() != 2 for w in weights):
        raise ValueError(
            f"weights must be [O, K] with one K; got {[tuple(w.shape) for w in weights]}"
        )
    w = torch.cat([w.detach().to(torch.float32) for w in weights], dim=0)
    if standardize:
        w = (w - w.mean(dim=1, keepdim=True)) / w.std(dim=1, keepdim=True).clamp_min(1e-12)
    return w.norm(dim=0)


def clact_score(x: torch.Tensor) -> torch.Tensor:
    """CLACT score ``|x_ij| * ||X_:,j|| / ||X_i,:||`` of ``x: [..., S, K]`` (float32 result).

    The column norm runs over the token dimension ``S`` of each sequence; a token whose row is
    all zeros gets score 0.
    """
    if x.dim() < 2:
        raise ValueError(f"clact needs x of shape [..., S, K], not {tuple(x.shape)}")
    a = x.detach().to(torch.float32).abs()
    col = a.square().sum(dim=-2, keepdim=True).sqrt()
    row = a.square().sum(dim=-1, keepdim=True).sqrt()
    return a * col / row.clamp_min(torch.finfo(torch.float32).tiny)


def score(criterion: str, x: torch.Tensor, *, factor: torch.Tensor | None = None) -> torch.Tensor:
    """Score of ``x: [..., S, K]`` under ``criterion``.

    ``magnitude`` returns ``x`` itself (the selection keys already ignore the sign, so no copy
    is made); the other criteria return a float32 tensor ``>= 0``.

    Parameters
    ----------
    factor : torch.Tensor, optional
        ``[K]`` per-channel factor, required by ``weight_norm``.
    """
    check_criterion(criterion)
    if criterion == "magnitude":
        return x
    if criterion == "weight_norm":
        if factor is None:
            raise ValueError("criterion 'weight_norm' needs the per-channel factor (factor=)")
        if factor.shape != x.shape[-1:]:
            raise ValueError(f"factor must have shape [{x.shape[-1]}], not {tuple(factor.shape)}")
        return x.detach().to(torch.float32).abs() * factor
    return clact_score(x)
