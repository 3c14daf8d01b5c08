"""Images for the chapters: handwritten digits (MNIST, else scikit-learn's digits) and CIFAR-10.

MNIST and CIFAR-10 come through torchvision's checksummed downloads into a user cache
directory (``DLNOTES_DATA`` overrides it). Where MNIST cannot be had (no torchvision, no
internet) the loader falls back to the 1,797 handwritten 8×8 digits that scikit-learn ships,
and says so; CIFAR-10 has no fallback (the digits are a different kind of data). Models take
their image size from :attr:`ImageData.image_size` and channels from :attr:`ImageData.channels`.
"""
from __future__ import annotations

import importlib
import os
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

DATASETS = ("auto", "mnist", "digits", "cifar10")
SPLITS = ("train", "test")
#: Seconds a stalled connection may wait during a dataset download before it fails.
DOWNLOAD_TIMEOUT_S = 30
#: Downloads that failed in this process (cache folder -> message): not tried again.
_FAILED_DOWNLOADS: dict[str, str] = {}
#: scikit-learn's digits have no official split: a fixed, stratified 300-image test set.
DIGITS_TEST_SIZE = 300
#: CIFAR-10's class names, indexed by label (torchvision's order).
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
#: Values one pixel channel takes in each data set, spaced evenly on [0, 1] (17 grey levels 0..16 for the
#: digits, 8 bits for the others): what a discrete likelihood of the pixels must cover.
LEVELS = {"digits": 17, "mnist": 256, "cifar10": 256}


class ImageData(NamedTuple):
    images: torch.Tensor  # (N, C, H, W) float32 in [0, 1]; C = 1 for digits/MNIST, 3 for CIFAR-10
    labels: torch.Tensor  # (N,) int64 in 0..9
    name: str  # "mnist", "digits" or "cifar10"
    image_size: int  # H == W

    @property
    def channels(self) -> int:
        """C: 1 (grey) for digits and MNIST, 3 (RGB) for CIFAR-10."""
        return self.images.shape[1]


class DatasetUnavailable(RuntimeError):
    """MNIST or CIFAR-10 could not be loaded (no torchvision, or the download failed)."""


def cache_dir() -> Path:
    """Where downloads are kept: ``$DLNOTES_DATA``, else ``~/.cache/dlnotes``."""
    root = os.environ.get("DLNOTES_DATA")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "dlnotes"


def _check(split: str, dataset: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")


def load_digits(split: str = "train") -> ImageData:
    """scikit-learn's handwritten digits (8×8, 17 grey levels 0..16), scaled to [0, 1]."""
    _check(split, "digits")
    from sklearn.datasets import load_digits as _sk_load_digits

    bunch = _sk_load_digits()
    images = bunch.images.astype(np.float32) / 16.0  # (1797, 8, 8), values 0..16
    labels = bunch.target.astype(np.int64)
    rng = np.random.default_rng(0)
    test = np.zeros(len(labels), dtype=bool)
    per_class = DIGITS_TEST_SIZE // 10
    for digit in range(10):  # stratified: 30 test images of each digit
        members = np.flatnonzero(labels == digit)
        test[rng.choice(members, size=per_class, replace=False)] = True
    keep = test if split == "test" else ~test
    return ImageData(
        images=torch.from_numpy(images[keep]).unsqueeze(1),
        labels=torch.from_numpy(labels[keep]),
        name="digits",
        image_size=8,
    )


def _torchvision_dataset(name: str, class_name: str, split: str, download: bool) -> Any:
    """``torchvision.datasets.<class_name>`` for ``split``, cached in ``cache_dir() / "mnist"`` or ``"cifar10"``.

    A download fetches both splits into a temporary folder beside the cache and moves it into
    place only when complete, so a failed download leaves nothing half-written; a failure is
    remembered and not retried within the process.
    """
    try:
        dataset_class = getattr(importlib.import_module("torchvision.datasets"), class_name)
    except ImportError as err:
        raise DatasetUnavailable("torchvision is not installed") from err
    except Exception as err:  # e.g. a torchvision built for another torch
        raise DatasetUnavailable(f"torchvision does not load ({type(err).__name__}: {err})") from err

    folder = name.lower().replace("-", "")  # "mnist", "cifar10"
    root = cache_dir() / folder
    try:
        return dataset_class(str(root), train=split == "train", download=False)
    except RuntimeError:
        if not download:
            raise DatasetUnavailable(f"{name} is not in {root} and download=False") from None
        if str(root) in _FAILED_DOWNLOADS:  # one slow failure per process is enough
            raise DatasetUnavailable(_FAILED_DOWNLOADS[str(root)]) from None
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder}-download-", dir=root.parent))
    previous_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)  # torchvision's urllib calls set none
    try:
        dataset_class(str(staging), train=True, download=True)
        dataset_class(str(staging), train=False, download=True)
        shutil.rmtree(root, ignore_errors=True)
        staging.replace(root)
    except Exception as err:
        _FAILED_DOWNLOADS[str(root)] = f"{name} download failed ({type(err).__name__}: {err})"
        raise DatasetUnavailable(_FAILED_DOWNLOADS[str(root)]) from err
    finally:
        socket.setdefaulttimeout(previous_timeout)
        shutil.rmtree(staging, ignore_errors=True)
    return dataset_class(str(root), train=split == "train", download=False)


def load_mnist(split: str = "train", *, download: bool = True) -> ImageData:
    """MNIST via torchvision (MD5-checked download), cached under :func:`cache_dir`: images (N, 1, 28, 28)."""
    _check(split, "mnist")
    ds = _torchvision_dataset("MNIST", "MNIST", split, download)
    images = ds.data.to(torch.float32).div_(255.0).unsqueeze(1)  # (N, 28, 28) uint8 -> (N, 1, 28, 28)
    return ImageData(images=images, labels=ds.targets.to(torch.int64), name="mnist", image_size=28)


def load_cifar10(split: str = "train", *, download: bool = True) -> ImageData:
    """CIFAR-10 via torchvision (MD5-checked download), cached under :func:`cache_dir`.

    Images (N, 3, 32, 32) float32 RGB in [0, 1]; labels index :data:`CIFAR10_CLASSES`.
    """
    _check(split, "cifar10")
    ds = _torchvision_dataset("CIFAR-10", "CIFAR10", split, download)
    hwc = torch.from_numpy(np.asarray(ds.data, dtype=np.uint8))  # (N, 32, 32, 3)
    images = hwc.permute(0, 3, 1, 2).contiguous().to(torch.float32).div_(255.0)  # (N, 3, 32, 32)
    labels = torch.as_tensor(np.asarray(ds.targets), dtype=torch.int64)
    return ImageData(images=images, labels=labels, name="cifar10", image_size=32)


def load_images(split: str = "train", *, dataset: str = "auto", download: bool = True,
                verbose: bool = True) -> ImageData:
    """Load a split of images (handwritten digits unless ``dataset="cifar10"``).

    ``dataset="auto"`` tries MNIST and falls back to scikit-learn's digits, announcing the
    fallback (``verbose=False`` silences the announcement); ``"mnist"`` and ``"cifar10"``
    raise :class:`DatasetUnavailable` instead of falling back.
    """
    _check(split, dataset)
    if dataset == "digits":
        return load_digits(split)
    if dataset == "cifar10":
        return load_cifar10(split, download=download)
    try:
        return load_mnist(split, download=download)
    except DatasetUnavailable as err:
        if dataset == "mnist":
            raise
        if verbose:
            print(f"MNIST unavailable: {err}.\nUsing scikit-learn's 1,797 handwritten digits (8x8 pixels) instead.")
        return load_digits(split)
