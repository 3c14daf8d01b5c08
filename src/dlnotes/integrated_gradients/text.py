r"""An offline miniature of Su's sentiment demo: a synthetic review corpus and a small text classifier.

The corpus is **synthetic**: short "reviews" of ``length`` tokens built from a fixed vocabulary of
sentiment words, negators ("not"), intensifiers ("very") and neutral fillers. The label is the sign of the
summed polarity of the sentiment phrases, a phrase's polarity flipped by a preceding "not" and doubled by
a preceding "very", so the classifier has to learn word interactions, not only a word list.

Attribution works on the token embeddings, as in Su's code: the classifier's ``classify`` takes embeddings
``(R, T, H)``, so integrated gradients can move them along the straight path from the all-zero embedding
(the baseline) to the sentence's embeddings. A token's signed score sums its attribution over the hidden
dimension (complete); Su's score is the L2 norm over the hidden dimension (sign and completeness lost).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dlnotes import train

__all__ = ["POSITIVE", "NEGATIVE", "FILLERS", "VOCAB", "Corpus", "make_corpus", "TextClassifier",
           "train_text_classifier", "token_scores", "TRAIN_STEPS"]

POSITIVE = ("good", "great", "excellent", "love", "perfect", "fun")
NEGATIVE = ("bad", "awful", "boring", "hate", "broken", "poor")
FILLERS = ("the", "this", "book", "shop", "it", "was", "is", "and", "story", "service", "really", "quite")
VOCAB = POSITIVE + NEGATIVE + ("not", "very") + FILLERS
TRAIN_STEPS = 200  # Adam steps of the chapter's text classifier (seconds on a CPU)


class Corpus(NamedTuple):
    """Token ids (N, T) and labels (N,): 1 = positive, 0 = negative."""

    tokens: Tensor
    labels: Tensor

    def words(self, i: int) -> list[str]:
        return [VOCAB[int(t)] for t in self.tokens[i]]


def make_corpus(n: int, *, length: int = 8, seed: int = 0) -> Corpus:
    """``n`` synthetic reviews of ``length`` tokens with one or two sentiment phrases (balanced labels)."""
    for name, value, least in (("n", n, 2), ("length", length, 6), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"{name} must be an int >= {least}, got {value!r}")
    gen = torch.Generator().manual_seed(seed)
    index = {w: i for i, w in enumerate(VOCAB)}
    rows, labels = [], []

    def pick(options: tuple[str, ...]) -> str:
        return options[int(torch.randint(len(options), (), generator=gen))]

    while len(rows) < n:
        phrases, score = [], 0
        for _ in range(1 + int(torch.randint(2, (), generator=gen))):
            positive = bool(torch.rand((), generator=gen) < 0.5)
            words, value = [pick(POSITIVE if positive else NEGATIVE)], 1 if positive else -1
            if torch.rand((), generator=gen) < 0.3:
                words, value = ["very"] + words, 2 * value
            if torch.rand((), generator=gen) < 0.3:
                words, value = ["not"] + words, -value
            phrases.append(words)
            score += value
        used = sum(len(p) for p in phrases)
        if score == 0 or used > length:
            continue
        fill = [pick(FILLERS) for _ in range(length - used)]
        cuts = sorted(int(c) for c in torch.randint(len(fill) + 1, (len(phrases),), generator=gen))
        sentence, last = [], 0
        for cut, phrase in zip(cuts, phrases):
            sentence += fill[last:cut] + phrase
            last = cut
        sentence += fill[last:]
        rows.append([index[w] for w in sentence])
        labels.append(int(score > 0))
    return Corpus(torch.tensor(rows), torch.tensor(labels))


class TextClassifier(nn.Module):
    """Embedding -> 1-D convolution over 3 tokens -> ReLU -> mean over tokens -> 2 logits.

    ``forward(tokens (B, T))`` embeds and classifies; ``classify(embeddings (B, T, H))`` is the function
    that attribution differentiates.
    """

    def __init__(self, vocab_size: int = len(VOCAB), hidden: int = 16, channels: int = 32) -> None:
        super().__init__()
        for name, value in (("vocab_size", vocab_size), ("hidden", hidden), ("channels", channels)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.embed = nn.Embedding(vocab_size, hidden)
        self.conv = nn.Conv1d(hidden, channels, 3, padding=1)
        self.head = nn.Linear(channels, 2)

    def classify(self, embeddings: Tensor) -> Tensor:
        """embeddings (B, T, H) -> logits (B, 2)."""
        h = torch.relu(self.conv(embeddings.transpose(1, 2)))  # (B, C, T)
        return self.head(h.mean(2))

    def forward(self, tokens: Tensor) -> Tensor:
        return self.classify(self.embed(tokens))


def train_text_classifier(corpus: Corpus, *, steps: int = TRAIN_STEPS, batch_size: int = 64, lr: float = 1e-2,
                          seed: int = 0, progress: bool = False) -> TextClassifier:
    """Train :class:`TextClassifier` with cross-entropy; returns it in eval mode."""
    torch.manual_seed(seed)
    model = TextClassifier()

    def loss_fn(m: nn.Module, batch: tuple[Tensor, ...]) -> tuple[Tensor, dict[str, float]]:
        tokens, labels = batch
        logits = m(tokens)
        return F.cross_entropy(logits, labels), {"accuracy": (logits.argmax(1) == labels).float().mean().item()}

    gen = torch.Generator().manual_seed(seed)
    train.fit(model, loss_fn, train.batches(corpus.tokens, corpus.labels, batch_size=batch_size, generator=gen),
              optimizer=torch.optim.Adam(model.parameters(), lr=lr), steps=steps, progress=progress,
              description=f"text classifier, seed {seed}")
    return model.eval()


def token_scores(attributions: Tensor) -> tuple[Tensor, Tensor]:
    """Per-token scores of an embedding attribution (B, T, H): (signed sum over H, Su's L2 norm over H)."""
    if not isinstance(attributions, Tensor) or attributions.ndim != 3:
        got = tuple(attributions.shape) if isinstance(attributions, Tensor) else type(attributions).__name__
        raise ValueError(f"attributions must have shape (B, T, H), got {got}")
    return attributions.sum(-1), attributions.norm(dim=-1)
