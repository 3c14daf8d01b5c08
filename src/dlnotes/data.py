"""Handwritten digits for the chapters: MNIST when it can be had, scikit-learn's digits otherwise.

MNIST comes through torchvision's checksummed download into a user cache directory
(``DLNOTES_DATA`` overrides it). Where it cannot be had (no torchvision, no internet) the
loader falls back to the 1,797 handwritten 8×8 digits that scikit-learn ships, and says so.
Models take their image size from :attr:`ImageData.image_size`.
"""
from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

DATASETS = ("auto", "mnist", "digits")
SPLITS = ("train", "test")
#: Seconds a stalled connection may wait during the MNIST download before it fails.
DOWNLOAD_TIMEOUT_S = 30
#: Downloads that failed in this process (cache folder -> message): not tried again.
_FAILED_DOWNLOADS: dict[str, str] = {}
#: scikit-learn's digits have no official split: a fixed, stratified 300-image test set.
DIGITS_TEST_SIZE = 300


class ImageData(NamedTuple):
    images: torch.Tensor  # (N, 1, H, W) float32 in [0, 1]
    labels: torch.Tensor  # (N,) int64 in 0..9
    name: str  # "mnist" or "digits"
    image_size: int  # H == W


class DatasetUnavailable(RuntimeError):
    """MNIST could not be loaded (no torchvision, or the download failed)."""


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


def _mnist_root() -> Path:
    return cache_dir() / "mnist"


def load_mnist(split: str = "train", *, download: bool = True) -> ImageData:
    """MNIST via torchvision (MD5-checked download), cached under :func:`cache_dir`.

    The download goes to a temporary folder beside the cache and is moved into place only
    when complete, so a failed download leaves nothing half-written.
    """
    _check(split, "mnist")
    try:
        from torchvision.datasets import MNIST
    except ImportError as err:
        raise DatasetUnavailable("torchvision is not installed") from err
    except Exception as err:  # e.g. a torchvision built for another torch
        raise DatasetUnavailable(f"torchvision does not load ({type(err).__name__}: {err})") from err

    root = _mnist_root()
    try:
        ds = MNIST(str(root), train=split == "train", download=False)
    except RuntimeError:
        if not download:
            raise DatasetUnavailable(f"MNIST is not in {root} and download=False") from None
        if str(root) in _FAILED_DOWNLOADS:  # one slow failure per process is enough
            raise DatasetUnavailable(_FAILED_DOWNLOADS[str(root)])
        root.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".mnist-download-", dir=root.parent))
        previous_timeout = socket.getdefaulttimeout()
        socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)  # torchvision's urllib calls set none
        try:
            MNIST(str(staging), train=True, download=True)
            MNIST(str(staging), train=False, download=True)
            shutil.rmtree(root, ignore_errors=True)
            staging.replace(root)
        except Exception as err:
            _FAILED_DOWNLOADS[str(root)] = f"MNIST download failed ({type(err).__name__}: {err})"
            raise DatasetUnavailable(_FAILED_DOWNLOADS[str(root)]) from err
        finally:
            socket.setdefaulttimeout(previous_timeout)
            shutil.rmtree(staging, ignore_errors=True)
        ds = MNIST(str(root), train=split == "train", download=False)
    images = ds.data.to(torch.float32).div_(255.0).unsqueeze(1)  # (N, 1, 28, 28)
    return ImageData(images=images, labels=ds.targets.to(torch.int64), name="mnist", image_size=28)


def load_images(split: str = "train", *, dataset: str = "auto", download: bool = True,
                verbose: bool = True) -> ImageData:
    """Load a split of handwritten digits.

    ``dataset="auto"`` tries MNIST and falls back to scikit-learn's digits, announcing the
    fallback (``verbose=False`` silences the announcement); ``"mnist"`` raises
    :class:`DatasetUnavailable` instead of falling back.
    """
    _check(split, dataset)
    if dataset == "digits":
        return load_digits(split)
    try:
        return load_mnist(split, download=download)
    except DatasetUnavailable as err:
        if dataset == "mnist":
            raise
        if verbose:
            print(f"MNIST unavailable: {err}.\nUsing scikit-learn's 1,797 handwritten digits (8x8 pixels) instead.")
        return load_digits(split)
