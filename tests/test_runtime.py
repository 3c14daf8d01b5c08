import random

import numpy as np
import pytest
import torch

from dlnotes import runtime


def test_budget_follows_device(monkeypatch):
    monkeypatch.delenv("DLNOTES_BUDGET", raising=False)
    assert runtime.budget_name(torch.device("cpu")) == "quick"
    assert runtime.budget_name(torch.device("cuda")) == "full"


@pytest.mark.parametrize("value, expected", [("full", "full"), ("QUICK", "quick"), (" quick ", "quick")])
def test_budget_env_overrides_device(monkeypatch, value, expected):
    monkeypatch.setenv("DLNOTES_BUDGET", value)
    assert runtime.budget_name(torch.device("cpu")) == expected
    assert runtime.budget_name(torch.device("cuda")) == expected


def test_bad_budget_env_names_variable(monkeypatch):
    monkeypatch.setenv("DLNOTES_BUDGET", "huge")
    with pytest.raises(ValueError, match="DLNOTES_BUDGET.*'huge'"):
        runtime.budget_name()


def test_choose_picks_named_instance(monkeypatch):
    monkeypatch.setenv("DLNOTES_BUDGET", "full")
    assert runtime.choose({"quick": 1, "full": 2}) == 2
    with pytest.raises(ValueError, match="budgets must define"):
        runtime.choose({"quick": 1})


def test_device_env_override(monkeypatch):
    monkeypatch.setenv("DLNOTES_DEVICE", "cpu")
    assert runtime.pick_device() == torch.device("cpu")
    monkeypatch.delenv("DLNOTES_DEVICE")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert runtime.pick_device().type == expected


def test_seed_everything_repeats_all_generators():
    def draw():
        return random.random(), float(np.random.rand()), float(torch.rand(1))

    runtime.seed_everything(7)
    first = draw()
    runtime.seed_everything(7)
    assert draw() == first
    runtime.seed_everything(8)
    assert draw() != first


def test_seed_must_be_non_negative_int():
    with pytest.raises(ValueError, match="seed"):
        runtime.seed_everything(-1)


def test_setup_describes_device_and_budget(monkeypatch):
    monkeypatch.setenv("DLNOTES_BUDGET", "quick")
    rt = runtime.setup(seed=3)
    assert rt.budget == "quick" and rt.seed == 3
    text = rt.describe()
    assert f"device: {rt.device.type}" in text and "budget: quick" in text


def test_smoke_cap_caps_counts_and_skips_trained_claims(monkeypatch, capsys):
    monkeypatch.delenv(runtime.SMOKE_ENV, raising=False)
    assert not runtime.smoke() and runtime.cap(5000, 3) == 5000
    assert runtime.trained_claim("capsules beat the CNN") is True and capsys.readouterr().out == ""
    monkeypatch.setenv(runtime.SMOKE_ENV, "1")
    assert runtime.smoke() and runtime.cap(5000, 3) == 3 and runtime.cap(2, 3) == 2
    assert runtime.trained_claim("capsules beat the CNN") is False
    assert "skipped under the smoke cap" in capsys.readouterr().out
    assert "smoke cap on" in runtime.setup().describe()


def test_smoke_cap_rejects_bad_values(monkeypatch):
    monkeypatch.setenv(runtime.SMOKE_ENV, "yes please")
    with pytest.raises(ValueError, match=runtime.SMOKE_ENV):
        runtime.smoke()
    monkeypatch.delenv(runtime.SMOKE_ENV)
    for bad in (0, -1, True, 2.5):
        with pytest.raises(ValueError, match="n must be a positive int"):
            runtime.cap(bad, 3)
    with pytest.raises(ValueError, match="limit"):
        runtime.cap(3, 0)
    with pytest.raises(ValueError, match="claim"):
        runtime.trained_claim("")


def test_peak_memory_note_on_cpu_says_it_is_not_measured():
    assert "CUDA only" in runtime.peak_memory_note(torch.device("cpu"))
