r"""The models of Su's digit experiment (kexue.fm/archives/4819, re-run in 5112): a capsule net and a CNN.

Both share Su's trunk (valid 3×3 convolutions, ReLU): Conv(w1) → Conv(w2) → AvgPool 2×2 → Conv(w3) →
Conv(w4); a 28×28 image gives an 8×8×w4 map, a 56×28 two-digit image 22×8×w4.

* :class:`CapsNet`: every position of the map is a primary capsule (its w4 channels; or groups of
  ``primary_dim`` channels), routed to 10 class capsules of width 16 by a :class:`~dlnotes.capsules.CapsuleLayer`;
  the class score is the capsule length. Optional reconstruction decoder (Sabour et al. 2017).
* :class:`CNNBaseline`: global average pooling → Dense(128, ReLU) → Dense(10, sigmoid) (Su's CNN), or
  global *sum* pooling (``pooling="sum"``, a control: the sum, like the capsule layer's, grows with the
  number of positions that see a digit).

With widths (64, 64, 128, 128) they have 279,488 and 276,810 parameters, as in Su's script. Both are
trained as 10 independent detectors with the margin loss, so two digits can both score high.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dlnotes.capsules.routing import CapsuleLayer, Routing, safe_norm

MIN_IMAGE_SIZE = 14  # the trunk's valid convolutions and pooling need at least 14 pixels a side


def _check_count(name: str, value: object) -> None:
    """A count: an int >= 1 and not a bool (``True`` is an int in Python)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")


def trunk_output_size(size: int) -> int:
    """Side of the trunk's feature map for an input side ``size``: ((size − 4) // 2) − 4."""
    return (size - 4) // 2 - 4


class Trunk(nn.Module):
    """Su's convolutional trunk. x: (B, 1, H, W) → (B, w4, (H−4)//2 − 4, (W−4)//2 − 4)."""

    def __init__(self, widths: tuple[int, int, int, int] = (64, 64, 128, 128)) -> None:
        super().__init__()
        if len(widths) != 4 or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths):
            raise ValueError(f"widths must be four positive ints, got {widths!r}")
        w1, w2, w3, w4 = widths
        self.widths = tuple(widths)
        self.layers = nn.Sequential(
            nn.Conv2d(1, w1, 3), nn.ReLU(), nn.Conv2d(w1, w2, 3), nn.ReLU(), nn.AvgPool2d(2),
            nn.Conv2d(w2, w3, 3), nn.ReLU(), nn.Conv2d(w3, w4, 3), nn.ReLU(),
        )

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != 1:
            raise ValueError(f"x must have shape (B, 1, H, W), got {tuple(x.shape)}")
        if min(x.shape[-2:]) < MIN_IMAGE_SIZE:
            raise ValueError(f"images must be at least {MIN_IMAGE_SIZE}x{MIN_IMAGE_SIZE}, got {tuple(x.shape[-2:])}")
        return self.layers(x)


def margin_loss(scores: Tensor, target: Tensor, *, m_plus: float = 0.9, m_minus: float = 0.1,
                lam: float = 0.5) -> Tensor:
    r"""$\sum_c T_c \max(0, m^+ - s_c)^2 + \lambda (1 - T_c) \max(0, s_c - m^-)^2$, averaged over the batch.

    scores: (B, C) in [0, 1] (capsule lengths or sigmoid outputs); target: (B,) class indices or
    (B, C) multi-hot. Paper: m⁺ = 0.9, m⁻ = 0.1, λ = 0.5; Su's script uses λ = 0.25.
    """
    if scores.dim() != 2:
        raise ValueError(f"scores must have shape (B, C), got {tuple(scores.shape)}")
    if target.dim() == 1:
        target = F.one_hot(target.long(), scores.shape[1]).to(scores.dtype)
    if target.shape != scores.shape:
        raise ValueError(f"target must be (B,) or (B, C) = {tuple(scores.shape)}, got {tuple(target.shape)}")
    if not 0 <= m_minus < m_plus <= 1:
        raise ValueError(f"margins must satisfy 0 <= m_minus < m_plus <= 1, got {m_minus}, {m_plus}")
    if lam < 0:
        raise ValueError(f"lam must be >= 0, got {lam}")
    present = target * F.relu(m_plus - scores).pow(2)
    absent = lam * (1 - target) * F.relu(scores - m_minus).pow(2)
    return (present + absent).sum(1).mean()


class CapsNetOutput(NamedTuple):
    """What :class:`CapsNet` returns."""

    scores: Tensor  # (B, n_classes) class-capsule lengths ‖v_j‖ in [0, 1)
    capsules: Tensor  # (B, n_classes, capsule_dim) v_j
    routing: Routing  # couplings (B, n_iters, n, n_classes) etc.
    reconstruction: Tensor | None  # (B, 1, H, W) with the decoder on and training-sized input, else None


def primary_capsules(features: Tensor, primary_dim: int) -> Tensor:
    """Channels-last capsules: (B, C, H, W) → (B, H·W·C/primary_dim, primary_dim), position-major."""
    B, C, H, W = features.shape
    per_position = features.permute(0, 2, 3, 1)  # (B, H, W, C): not a plain view of (B, C, H, W)
    return per_position.reshape(B, H * W * (C // primary_dim), primary_dim)


class CapsNet(nn.Module):
    r"""Su's capsule classifier: trunk → primary capsules → routing to class capsules → lengths.

    ``image_size`` is the training side (it sizes the decoder and, for ``shared=False``, the number of
    input capsules); with shared $W_j$ the model accepts other image sizes, e.g. 56×28 pairs.
    """

    def __init__(self, image_size: int = 28, widths: tuple[int, int, int, int] = (64, 64, 128, 128), *,
                 n_classes: int = 10, capsule_dim: int = 16, primary_dim: int | None = None,
                 shared: bool = True, method: str = "kmeans", n_iters: int = 3, squash_constant: float = 1.0,
                 detach: bool = False, reconstruction: bool = False) -> None:
        super().__init__()
        if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < MIN_IMAGE_SIZE:
            raise ValueError(f"image_size must be an int >= {MIN_IMAGE_SIZE}, got {image_size!r}")
        _check_count("n_classes", n_classes)  # checked here, so the error names the caller's parameter
        _check_count("capsule_dim", capsule_dim)
        self.trunk = Trunk(widths)
        channels = widths[-1]
        primary_dim = channels if primary_dim is None else primary_dim
        bad = isinstance(primary_dim, bool) or not isinstance(primary_dim, int) or primary_dim < 1
        if bad or channels % primary_dim:
            raise ValueError(f"primary_dim must divide the last width {channels}, got {primary_dim!r}")
        self.image_size, self.primary_dim, self.n_classes = image_size, primary_dim, n_classes
        side = trunk_output_size(image_size)
        n_primary = side * side * (channels // primary_dim)
        self.capsules = CapsuleLayer(primary_dim, n_classes, capsule_dim, shared=shared,
                                     n_in=None if shared else n_primary, method=method, n_iters=n_iters,
                                     squash_constant=squash_constant, detach=detach)
        self.decoder = None
        if reconstruction:  # Sabour et al.: 512 → 1024 → H·W, sigmoid
            self.decoder = nn.Sequential(
                nn.Linear(n_classes * capsule_dim, 512), nn.ReLU(), nn.Linear(512, 1024), nn.ReLU(),
                nn.Linear(1024, image_size * image_size), nn.Sigmoid())

    def forward(self, x: Tensor, target: Tensor | None = None) -> CapsNetOutput:
        """x: (B, 1, H, W); target (B,) masks the decoder's input (default: the longest capsule)."""
        u = primary_capsules(self.trunk(x), self.primary_dim)  # (B, n, primary_dim)
        routing = self.capsules(u)
        v = routing.v  # (B, n_classes, capsule_dim)
        scores = safe_norm(v, dim=-1)
        recon = None
        if self.decoder is not None and tuple(x.shape[-2:]) == (self.image_size, self.image_size):
            chosen = scores.argmax(1) if target is None else target
            mask = F.one_hot(chosen, self.n_classes).to(v.dtype).unsqueeze(-1)  # keep one capsule
            recon = self.decoder((v * mask).flatten(1)).view(-1, 1, self.image_size, self.image_size)
        return CapsNetOutput(scores=scores, capsules=v, routing=routing, reconstruction=recon)

    def scores(self, x: Tensor) -> Tensor:
        """Class scores (B, n_classes): the capsule lengths."""
        return self.forward(x).scores


POOLINGS = ("mean", "sum")


class CNNBaseline(nn.Module):
    """Su's CNN: trunk → global pooling → Dense(hidden, ReLU) → Dense(10, sigmoid). Any H, W ≥ 14.

    ``pooling="mean"`` is Su's global average pooling; ``"sum"`` adds the positions up instead.
    """

    def __init__(self, widths: tuple[int, int, int, int] = (64, 64, 128, 128), *, hidden: int = 128,
                 n_classes: int = 10, pooling: str = "mean") -> None:
        super().__init__()
        _check_count("hidden", hidden)
        _check_count("n_classes", n_classes)
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.trunk = Trunk(widths)
        self.pooling = pooling
        self.head = nn.Sequential(nn.Linear(widths[-1], hidden), nn.ReLU(), nn.Linear(hidden, n_classes))

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, 1, H, W) → independent class probabilities (B, n_classes)."""
        features = self.trunk(x)  # (B, w4, h, w)
        pooled = features.sum(dim=(2, 3)) if self.pooling == "sum" else features.mean(dim=(2, 3))  # (B, w4)
        return torch.sigmoid(self.head(pooled))

    def scores(self, x: Tensor) -> Tensor:
        return self.forward(x)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
