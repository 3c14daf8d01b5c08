import sys
import types

import pytest
import torch

from dlnotes import data


@pytest.mark.parametrize("split, size", [("train", 1497), ("test", 300)])
def test_digits_split_sizes_and_range(split, size):
    d = data.load_digits(split)
    assert d.name == "digits" and d.image_size == 8
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


def _fake_torchvision(monkeypatch, mnist_class):
    tv = types.ModuleType("torchvision")
    datasets = types.ModuleType("torchvision.datasets")
    datasets.MNIST = mnist_class
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
    assert d.name == "digits"
    out = capsys.readouterr().out
    assert "MNIST unavailable" in out and "network unreachable" in out and "digits" in out
    leftovers = [p for p in (tmp_path / "cache").rglob("*")] if (tmp_path / "cache").exists() else []
    assert leftovers == []
    with pytest.raises(data.DatasetUnavailable, match="download failed"):
        data.load_images("train", dataset="mnist")


def test_mnist_path_uses_torchvision_and_caches(monkeypatch, tmp_path):
    calls = []

    class FakeMNIST:
        def __init__(self, root, train=True, download=False):
            from pathlib import Path

            calls.append((root, train, download))
            marker = Path(root, "MNIST", "ok")
            if download:
                marker.parent.mkdir(parents=True, exist_ok=True)
                marker.write_text("done")
            elif not marker.exists():
                raise RuntimeError("Dataset not found.")
            n = 5 if train else 3
            self.data = torch.full((n, 28, 28), 255, dtype=torch.uint8)
            self.targets = torch.arange(n)

    monkeypatch.setenv("DLNOTES_DATA", str(tmp_path))
    _fake_torchvision(monkeypatch, FakeMNIST)
    d = data.load_images("test")
    assert d.name == "mnist" and d.image_size == 28 and d.images.shape == (3, 1, 28, 28)
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
    assert data.load_images("train", verbose=False).name == "digits"
    downloads = attempts.count(True)
    assert downloads == 1
    assert data.load_images("test", verbose=False).name == "digits"
    assert attempts.count(True) == downloads  # the second split did not wait for the network again
    import socket

    assert socket.getdefaulttimeout() is None  # the download's timeout is not left behind
