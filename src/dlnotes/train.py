"""A short, model-agnostic training loop with a progress bar, returning its history."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from dlnotes._book_mode import in_book_build

LossFn = Callable[[torch.nn.Module, tuple[torch.Tensor, ...]], "tuple[torch.Tensor, dict[str, float]]"]


@dataclass
class History:
    """What :func:`fit` recorded: the step numbers and, per metric name, one value per logged step."""

    steps: list[int] = field(default_factory=list)
    metrics: dict[str, list[float]] = field(default_factory=dict)

    def log(self, step: int, values: dict[str, float]) -> None:
        self.steps.append(step)
        for name, value in values.items():
            self.metrics.setdefault(name, []).append(float(value))

    def last(self, name: str) -> float:
        return self.metrics[name][-1]


def batches(*tensors: torch.Tensor, batch_size: int, generator: torch.Generator | None = None,
            device: torch.device | str | None = None) -> Iterator[tuple[torch.Tensor, ...]]:
    """Endless shuffled mini-batches of equally long tensors, reshuffled every epoch.

    tensors: each (N, ...); yields tuples of (batch_size, ...) moved to ``device``.
    """
    if not tensors:
        raise ValueError("batches needs at least one tensor")
    n = len(tensors[0])
    if any(len(t) != n for t in tensors):
        raise ValueError(f"tensors must have equal length, got {[len(t) for t in tensors]}")
    if not 1 <= batch_size <= n:
        raise ValueError(f"batch_size must be in 1..{n}, got {batch_size}")
    while True:
        order = torch.randperm(n, generator=generator)
        for start in range(0, n - batch_size + 1, batch_size):  # drop the ragged last batch
            idx = order[start:start + batch_size]
            yield tuple(t[idx].to(device) if device is not None else t[idx] for t in tensors)


def fit(model: torch.nn.Module, loss_fn: LossFn, data: Iterator[tuple[torch.Tensor, ...]], *,
        optimizer: torch.optim.Optimizer, steps: int, log_every: int = 10, progress: bool = True,
        description: str = "training") -> History:
    """Run ``steps`` optimisation steps and return the logged history.

    ``loss_fn(model, batch) -> (loss, metrics)`` computes the scalar loss to minimise and a
    dict of floats to record; every ``log_every`` steps the metrics (averaged since the last
    log) are stored with the step number.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if log_every < 1:
        raise ValueError(f"log_every must be >= 1, got {log_every}")
    history = History()
    running: dict[str, float] = {}
    count = 0
    model.train()
    quiet = not progress or in_book_build()  # a static page cannot show a live bar
    bar = tqdm(range(1, steps + 1), desc=description, disable=quiet, leave=False)
    for step in bar:
        batch = next(data)
        loss, metrics = loss_fn(model, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        for name, value in {"loss": loss.item(), **metrics}.items():
            running[name] = running.get(name, 0.0) + float(value)
        count += 1
        if step % log_every == 0 or step == steps:
            averaged = {name: total / count for name, total in running.items()}
            history.log(step, averaged)
            bar.set_postfix(loss=f"{averaged['loss']:.4g}")
            running, count = {}, 0
    model.eval()
    return history
