"""TEST FAKE: MNIST- and CIFAR-10-shaped random images with torchvision's attributes (``data``, ``targets``).

Small on purpose (the smoke run caps every loop anyway); each class is equally frequent, in a shuffled
order (a cyclic order would make every fifth image hold only two classes).
"""
from __future__ import annotations

import numpy as np
import torch

SIZES = {True: 1200, False: 400}  # train, test


class MNIST:
    def __init__(self, root: str, train: bool = True, download: bool = False, **kwargs) -> None:
        rng = np.random.default_rng(1 if train else 2)
        n = SIZES[bool(train)]
        self.data = torch.from_numpy(rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8))  # (N, 28, 28)
        self.targets = torch.from_numpy(rng.permutation(np.arange(n) % 10))


class CIFAR10:
    def __init__(self, root: str, train: bool = True, download: bool = False, **kwargs) -> None:
        rng = np.random.default_rng(3 if train else 4)
        n = SIZES[bool(train)]
        self.data = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)  # (N, H, W, C) as torchvision
        self.targets = [int(t) for t in rng.permutation(np.arange(n) % 10)]
