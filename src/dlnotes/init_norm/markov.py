"""A synthetic language for small language-model experiments: a random second-order Markov chain.

Not data: the "language" is a table of next-token distributions P(c | a, b), one per pair of previous
tokens, drawn from a Dirichlet distribution (a small concentration makes each row peaked, so there is
something to learn). Sequences start from the chain's stationary distribution over pairs, so every target
with two tokens of context has the same best achievable loss, the entropy rate (``entropy_rate``).
"""
from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["MarkovLanguage"]


class MarkovLanguage:
    """Second-order Markov chain over ``vocab`` tokens; ``table``: (vocab, vocab, vocab), rows sum to 1."""

    def __init__(self, vocab: int = 32, *, concentration: float = 0.1, seed: int = 0) -> None:
        if isinstance(vocab, bool) or not isinstance(vocab, int) or vocab < 2:
            raise ValueError(f"vocab must be an int >= 2, got {vocab!r}")
        if not concentration > 0:
            raise ValueError(f"concentration must be positive, got {concentration!r}")
        rows = np.random.default_rng(seed).dirichlet(np.full(vocab, float(concentration)), size=(vocab, vocab))
        self.vocab = vocab
        table = torch.as_tensor(rows, dtype=torch.float64).clamp_min(1e-12)
        self.table = table / table.sum(-1, keepdim=True)
        self.pairs = self._stationary_pairs()

    def _stationary_pairs(self, iters: int = 500) -> torch.Tensor:
        """Stationary distribution over (previous, current) pairs: (vocab, vocab), by power iteration."""
        v = self.vocab
        pi = torch.full((v, v), 1.0 / v**2, dtype=torch.float64)
        for _ in range(iters):
            pi = torch.einsum("ab,abc->bc", pi, self.table)
        return pi / pi.sum()

    def entropy_rate(self) -> float:
        """Best achievable cross-entropy (nats) of a target given its two previous tokens, at stationarity."""
        row_entropy = -(self.table * self.table.clamp_min(1e-300).log()).sum(-1)
        return float((self.pairs * row_entropy).sum())

    def sample(self, batch: int, seq_len: int, *, generator: torch.Generator | None = None,
               device: torch.device | str = "cpu") -> torch.Tensor:
        """Token sequences (batch, seq_len) int64; the first pair is drawn from the stationary distribution."""
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ValueError(f"batch must be a positive int, got {batch!r}")
        if isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len < 3:
            raise ValueError(f"seq_len must be an int >= 3, got {seq_len!r}")
        v = self.vocab
        first = torch.multinomial(self.pairs.flatten(), batch, replacement=True, generator=generator)
        out = torch.empty(batch, seq_len, dtype=torch.long)
        out[:, 0], out[:, 1] = first // v, first % v
        for t in range(2, seq_len):
            probs = self.table[out[:, t - 2], out[:, t - 1]]
            out[:, t] = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        return out.to(device)

    def uniform_loss(self) -> float:
        """Cross-entropy of guessing uniformly, ln vocab."""
        return math.log(self.vocab)
