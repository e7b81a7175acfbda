"""Selection criteria: the score whose N:M mask decides which activations are kept.

Every criterion turns the activations ``x: [..., S, K]`` (S tokens, K input features) into a
non-negative score of the same shape; the kept set is then the DESIGN.md section 1 rule on the
score (the N largest per group of M, lower index wins ties), so it maps onto the same
selector hardware: only the value fed to the comparators changes::

    x --> score(x) = |x| * f  (f per input channel, or per token and channel) --> N:M rule
          magnitude: f = 1          weight_norm / var_weight: f_j from the layer's W
          clact: f_ij from the activations of the forward call

The paper's definitions (arXiv 2509.22166 and its code, On-Point-RND/
Structured-Sparse-Activations-Inference, ``Linear_act_sp``):

- ``magnitude``: ``|x|``. What the shipped selectors compute directly.
- ``weight_norm`` (Amber-Pruner, the paper's form, per layer): each Linear's own ``W``;
  the weights outside the 0.5-99.5% quantiles are dropped (the quantiles taken on a random
  50,000-entry subsample when W has more than 100,000 entries), one global mean and standard
  deviation of the rest standardize all of W, ``W_std = (W - mean) / std``, and
  ``f_j = ||W_std[:, j]||_2 / min_k ||W_std[:, k]||_2``. Each Linear gets its own mask (q, k
  and v of one block select differently). The paper's code redraws the subsample at every
  forward call, unseeded; here it is drawn once per layer from the project seed.
- ``weight_norm_site`` (the project's variant): ``f_j = ||W[:, j]||_2`` over the rows of
  *every* layer that reads the input (q, k and v stacked; gate and up stacked), optionally
  with each row standardized. One score and one mask per site: **one selector in front of a
  fused q/k/v (or gate/up) projection instead of three (two)**, a real hardware saving.
- ``var_weight``: ``|x_j| * Var(W[:, j])`` (the variance over the output rows of the
  layer's own W, unbiased, as ``torch.var``), per layer.
- ``clact`` (CLACT, the paper's form): ``|x_ij| * ||X_:,j|| / (||X_i,:|| + 1e-8)`` where the
  column norm pools *all* tokens of the forward call (the paper evaluates 8 windows of 512
  per batch: ``nmsparse quality --batch 8`` reproduces it; a different batch gives a
  different score). The row norm is a per-token constant, so it never changes an N:M
  choice; it matters for unstructured selection over the whole tensor.
- ``clact_seq`` (the project's variant): the column norm over the tokens of each sequence.

Both CLACT forms look at later tokens of the sequence (and ``clact`` at other sequences of
the batch): they fit a prefill accelerator that holds the whole tile, not a token stream.
In hardware every ``|x| * f`` criterion is one multiplier per lane before the selector (the
static ``f`` in a ROM); CLACT also needs a column-norm pass over the tile.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from nmsparse.contract.seeds import seed as _seed

__all__ = [
    "CRITERIA",
    "PER_LAYER",
    "GLOBAL_UNSTRUCTURED",
    "check_criterion",
    "amber_factor",
    "weight_norm_factor",
    "var_weight_factor",
    "clact_score",
    "score",
]

CRITERIA: tuple[str, ...] = (
    "magnitude",
    "weight_norm",
    "weight_norm_site",
    "var_weight",
    "clact",
    "clact_seq",
)
#: criteria computed from each Linear's own weights: every Linear is its own site
PER_LAYER: frozenset[str] = frozenset({"weight_norm", "var_weight"})
#: criteria whose unstructured form selects over the whole [tokens, K] tensor (the paper's
#: unstructured CLACT and Amber-Pruner); the others keep ``int(K * (1 - s))`` per token
GLOBAL_UNSTRUCTURED: frozenset[str] = frozenset({"weight_norm", "clact"})

_AMBER_SAMPLE_ABOVE = 100_000
_AMBER_SAMPLE = 50_000


def check_criterion(criterion: object) -> str:
    """Return ``criterion`` if valid, else ``ValueError`` naming the valid ones."""
    if not isinstance(criterion, str) or criterion not in CRITERIA:
        raise ValueError(f"unknown criterion {criterion!r}; valid criteria: {', '.join(CRITERIA)}")
    return criterion


def _check_weight(w: object) -> torch.Tensor:
    if not isinstance(w, torch.Tensor) or w.dim() != 2 or w.numel() == 0:
        raise ValueError(
            f"a weight matrix must be a non-empty [O, K] tensor, not "
            f"{tuple(w.shape) if isinstance(w, torch.Tensor) else type(w).__name__}"
        )
    return w.detach().to(torch.float32)


def amber_factor(w: torch.Tensor, *, seed: int | None = None) -> torch.Tensor:
    """Amber-Pruner's channel factor ``f: [K]`` of one layer's ``w: [O, K]`` (paper form).

    ``f_j = ||W_std[:, j]|| / min_k ||W_std[:, k]||`` with ``W_std = (W - mean) / std``, the
    mean and (biased) standard deviation taken over the weights inside the 0.5% and 99.5%
    quantiles; the quantiles come from a random subsample of 50,000 entries (drawn with
    replacement, as the paper's ``torch.randint``) when W has more than 100,000 entries.

    Parameters
    ----------
    seed : int, optional
        Seed of the subsample (default: the project seed, :func:`nmsparse.contract.seeds.seed`).
    """
    w = _check_weight(w)
    flat = w.reshape(-1)
    if flat.numel() > _AMBER_SAMPLE_ABOVE:
        gen = torch.Generator().manual_seed(_seed(seed))
        sample = flat[torch.randint(0, flat.numel(), (_AMBER_SAMPLE,), generator=gen)]
    else:
        sample = flat
    lo, hi = torch.quantile(sample, torch.tensor([0.005, 0.995]))  # one sort for both
    inside = (w >= lo) & (w <= hi)
    kept = w[inside] if inside.any() else flat
    mean, std = kept.mean(), kept.std(unbiased=False).clamp_min(1e-8)
    norms = ((w - mean) / std).norm(dim=0)
    return norms / norms.min().clamp_min(1e-8)


def weight_norm_factor(
    weights: Sequence[torch.Tensor], *, standardize: bool = False
) -> torch.Tensor:
    """The project's shared-site factor ``f: [K]``: column L2 norms of the stacked weights.

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


def var_weight_factor(w: torch.Tensor) -> torch.Tensor:
    """``Var(W[:, j])`` over the output rows of one layer's ``w: [O, K]`` (unbiased): ``[K]``."""
    w = _check_weight(w)
    if w.shape[0] < 2:
        raise ValueError(f"var_weight needs at least two output rows, not {w.shape[0]}")
    return w.var(dim=0)


def clact_score(x: torch.Tensor, *, pool: str = "batch") -> torch.Tensor:
    """CLACT score ``|x_ij| * ||X_:,j|| / (||X_i,:|| + 1e-8)`` of ``x: [..., S, K]`` (float32).

    Parameters
    ----------
    pool : str
        ``"batch"`` (the paper): the column norm over every token of ``x`` (all sequences of
        the forward call); ``"sequence"``: over the ``S`` tokens of each sequence.
    """
    if x.dim() < 2:
        raise ValueError(f"clact needs x of shape [..., S, K], not {tuple(x.shape)}")
    if pool not in ("batch", "sequence"):
        raise ValueError(f"pool must be 'batch' or 'sequence', not {pool!r}")
    a = x.detach().to(torch.float32).abs()
    sq = a.square()
    if pool == "batch":
        col = sq.reshape(-1, a.shape[-1]).sum(dim=0).sqrt()
    else:
        col = sq.sum(dim=-2, keepdim=True).sqrt()
    row = sq.sum(dim=-1, keepdim=True).sqrt()
    return a / (row + 1e-8) * col


def score(criterion: str, x: torch.Tensor, *, factor: torch.Tensor | None = None) -> torch.Tensor:
    """Score of ``x: [..., S, K]`` under ``criterion``.

    ``magnitude`` returns ``x`` itself (the selection keys already ignore the sign, so no copy
    is made); the other criteria return a float32 tensor ``>= 0``.

    Parameters
    ----------
    factor : torch.Tensor, optional
        ``[K]`` per-channel factor, required by ``weight_norm``, ``weight_norm_site`` and
        ``var_weight``.
    """
    check_criterion(criterion)
    if criterion == "magnitude":
        return x
    if criterion in ("clact", "clact_seq"):
        return clact_score(x, pool="batch" if criterion == "clact" else "sequence")
    if factor is None:
        raise ValueError(f"criterion {criterion!r} needs the per-channel factor (factor=)")
    if factor.shape != x.shape[-1:]:
        raise ValueError(f"factor must have shape [{x.shape[-1]}], not {tuple(factor.shape)}")
    return x.detach().to(torch.float32).abs() * factor
