r"""Su's "train on one digit, test on two" experiment (kexue.fm/archives/4819 and 5112).

Train on single digits as 10 independent detectors (margin loss); test on images made of two test
digits of different classes stacked one above the other (no overlap, unlike Sabour et al.'s
MultiMNIST). A pair counts as right (acc₁) when its two labels are the two highest scores, and
also for acc₂ when the second score exceeds 0.5. Published (Su): CNN ≈ 40% / 10%, capsules with the
4819 routing ≈ 91%, with the 5112 routing ≈ 95%; single-digit MNIST ≈ 99.3% for both.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dlnotes import train as _train
from dlnotes.capsules.capsnet import CapsNet, CNNBaseline, margin_loss
from dlnotes.capsules.routing import METHODS

MODELS = ("cnn", *METHODS)  # "cnn", "kmeans" (5112), "su4819", "sabour"


@dataclass(frozen=True)
class CapsuleExperimentConfig:
    """One budget of the experiment; defaults are Su's script (``capsule_test.py``)."""

    image_size: int = 28  # every image is resized to this side (8×8 digits → 28×28, bilinear)
    widths: tuple[int, int, int, int] = (64, 64, 128, 128)  # Su's trunk
    cnn_hidden: int = 128  # Su's Dense(128): 276,810 parameters vs the capsule net's 279,488
    capsule_dim: int = 16  # class-capsule width
    n_iters: int = 3  # Su's routings=3: uniform start + 2 updates
    su_squash_constant: float = 0.5  # squash constant of Su's routings; "sabour" keeps the paper's 1
    margin_lambda: float = 0.25  # Su's script (paper: 0.5)
    batch_size: int = 128
    lr: float = 1e-3  # Adam, Keras' default
    epochs_cnn: int = 20  # Su: CNN 20 epochs
    epochs_capsule: int = 10  # Su: capsule net 10 epochs
    train_size: int | None = None  # None: every training image
    test_size: int | None = None  # None: every test image (pairs are built from these)
    models: tuple[str, ...] = ("cnn", "kmeans", "su4819", "sabour")
    seeds: tuple[int, ...] = (0, 1, 2)
    pair_seed: int = 0  # the permutation that pairs test digits
    pair_rounds: int = 1  # permutations stacked (Su: 1); more gives more pairs from a small test set

    def __post_init__(self) -> None:
        unknown = [m for m in self.models if m not in MODELS]
        if unknown or not self.models:
            raise ValueError(f"models must be a non-empty subset of {MODELS}, got {self.models!r}")
        if not self.seeds:
            raise ValueError("seeds must not be empty")


#: CPU, about a minute on 2 cores: 1,500 training digits (scikit-learn's, or MNIST's first) resized to
#: 20×20, trunk widths ÷ 4, one seed; fewer steps than Su's, so a larger learning rate and more epochs.
QUICK = CapsuleExperimentConfig(image_size=20, widths=(16, 16, 32, 32), cnn_hidden=120, lr=3e-3, batch_size=64,
                                epochs_cnn=30, epochs_capsule=15, train_size=1500, test_size=2000,
                                models=("cnn", "kmeans", "sabour"), seeds=(0,), pair_rounds=4)
#: one GPU: Su's exact models on all of MNIST, three seeds.
FULL = CapsuleExperimentConfig()


def build_model(name: str, config: CapsuleExperimentConfig) -> nn.Module:
    """``"cnn"`` → :class:`CNNBaseline`; a routing method name → shared-weight :class:`CapsNet`."""
    if name not in MODELS:
        raise ValueError(f"name must be one of {MODELS}, got {name!r}")
    if name == "cnn":
        return CNNBaseline(config.widths, hidden=config.cnn_hidden)
    constant = 1.0 if name == "sabour" else config.su_squash_constant
    return CapsNet(config.image_size, config.widths, capsule_dim=config.capsule_dim, method=name,
                   n_iters=config.n_iters, squash_constant=constant)


def resize(images: Tensor, size: int) -> Tensor:
    """(N, 1, H, W) → (N, 1, size, size), bilinear; unchanged when already that size."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False).clamp_(0, 1)


class Pairs(NamedTuple):
    images: Tensor  # (M, 1, 2H, W): first digit on top, second below
    labels: Tensor  # (M, 2) int64, sorted, the two classes differ
    index: Tensor  # (M, 2) positions of the two digits in the single-digit set


def stack_pairs(images: Tensor, labels: Tensor, *, rounds: int = 1, seed: int = 0) -> Pairs:
    """Su's test set: ``cat([x, x[perm]], H)``, pairs of equal labels dropped; ``rounds`` permutations."""
    if images.dim() != 4 or len(images) != len(labels):
        raise ValueError(f"images must be (N, 1, H, W) with N = len(labels), got {tuple(images.shape)}")
    if not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds must be an int >= 1, got {rounds!r}")
    gen = torch.Generator().manual_seed(seed)
    n = len(labels)
    first = torch.arange(n).repeat(rounds)
    second = torch.cat([torch.randperm(n, generator=gen) for _ in range(rounds)])
    keep = labels[first] != labels[second]
    first, second = first[keep], second[keep]
    stacked = torch.cat([images[first], images[second]], dim=2)  # top / bottom, no overlap
    pair_labels = torch.stack([labels[first], labels[second]], 1).sort(1).values
    return Pairs(stacked, pair_labels, torch.stack([first, second], 1))


class PairAccuracy(NamedTuple):
    acc1: float  # the two labels are the two highest scores
    acc2: float  # acc1 and the second-highest score > 0.5


def pair_accuracy(scores: Tensor, labels: Tensor) -> PairAccuracy:
    """scores: (M, C) independent class scores; labels: (M, 2)."""
    if labels.dim() != 2 or labels.shape[1] != 2 or len(labels) != len(scores):
        raise ValueError(f"labels must be (M, 2) with M = {len(scores)}, got {tuple(labels.shape)}")
    top = scores.topk(2, dim=1)
    hit = (top.indices.sort(1).values == labels.sort(1).values).all(1)
    confident = top.values[:, 1] > 0.5
    return PairAccuracy(hit.double().mean().item(), (hit & confident).double().mean().item())


@torch.no_grad()
def predict(model: nn.Module, images: Tensor, *, batch_size: int = 500,
            device: torch.device | str = "cpu") -> Tensor:
    """Class scores (N, C) in eval mode, computed in batches."""
    model.eval()
    out = [model.scores(images[i:i + batch_size].to(device)).cpu() for i in range(0, len(images), batch_size)]
    return torch.cat(out)


def train_model(name: str, config: CapsuleExperimentConfig, images: Tensor, labels: Tensor, *, seed: int = 0,
                device: torch.device | str = "cpu", progress: bool = True) -> tuple[nn.Module, _train.History]:
    """Build model ``name`` with ``seed`` and train it with the margin loss and Adam for the config's epochs."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = build_model(name, config).to(device)
    epochs = config.epochs_cnn if name == "cnn" else config.epochs_capsule
    steps = max(1, epochs * (len(images) // config.batch_size))

    def loss_fn(m: nn.Module, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, dict[str, float]]:
        x, y = batch
        scores = m.scores(x)
        loss = margin_loss(scores, y, lam=config.margin_lambda)
        return loss, {"accuracy": (scores.argmax(1) == y).float().mean().item()}

    data = _train.batches(images, labels, batch_size=config.batch_size, generator=gen, device=device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    history = _train.fit(model, loss_fn, data, optimizer=optimizer, steps=steps, progress=progress,
                         log_every=max(1, steps // 50), description=f"{name} (seed {seed})")
    return model, history


class ExperimentResult(NamedTuple):
    metrics: dict[str, dict[str, list[float]]]  # model → {"single", "acc1", "acc2"} → one value per seed
    models: dict[str, nn.Module]  # model name → the network trained with the first seed
    histories: dict[str, _train.History]  # model name → its first seed's training history
    pairs: Pairs  # the two-digit test set (resized digits)
    n_train: int


def run_experiment(config: CapsuleExperimentConfig, train_images: Tensor, train_labels: Tensor,
                   test_images: Tensor, test_labels: Tensor, *, device: torch.device | str = "cpu",
                   progress: bool = True) -> ExperimentResult:
    """Train every model of ``config`` for every seed; score single digits and stacked pairs."""
    x_train = resize(train_images[:config.train_size], config.image_size)
    y_train = train_labels[:config.train_size]
    x_test = resize(test_images[:config.test_size], config.image_size)
    y_test = test_labels[:config.test_size]
    pairs = stack_pairs(x_test, y_test, rounds=config.pair_rounds, seed=config.pair_seed)
    metrics: dict[str, dict[str, list[float]]] = {}
    models: dict[str, nn.Module] = {}
    histories: dict[str, _train.History] = {}
    for name in config.models:
        rows = metrics.setdefault(name, {"single": [], "acc1": [], "acc2": []})
        for seed in config.seeds:
            model, history = train_model(name, config, x_train, y_train, seed=seed, device=device,
                                         progress=progress)
            single = (predict(model, x_test, device=device).argmax(1) == y_test).double().mean().item()
            acc = pair_accuracy(predict(model, pairs.images, device=device), pairs.labels)
            rows["single"].append(single)
            rows["acc1"].append(acc.acc1)
            rows["acc2"].append(acc.acc2)
            if name not in models:
                models[name], histories[name] = model.cpu(), history
    return ExperimentResult(metrics, models, histories, pairs, len(x_train))
