import json

import pytest

from dlnotes import results


def test_write_then_read_names_device_and_versions(tmp_path):
    path = results.write_results(tmp_path / "sub" / "r.json", "bench", {"ratio": 2.5}, config={"K": 512})
    record = results.read_results(path)
    assert record["metrics"] == {"ratio": 2.5} and record["config"] == {"K": 512}
    assert record["device"].startswith("cpu:") and "torch" in record["versions"]
    assert not list(tmp_path.rglob("*.tmp"))


def test_rejects_empty_metrics_and_foreign_files(tmp_path):
    with pytest.raises(ValueError, match="metrics"):
        results.write_results(tmp_path / "r.json", "bench", {})
    (tmp_path / "other.json").write_text(json.dumps({"ratio": 1}))
    with pytest.raises(ValueError, match="not a dlnotes-results"):
        results.read_results(tmp_path / "other.json")


def test_report_does_nothing_without_the_runner(monkeypatch, tmp_path):
    monkeypatch.delenv(results.REPORT_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    results.report("chapter", {"mse": 0.01})
    assert list(tmp_path.iterdir()) == []


def test_report_collects_each_name_in_the_runners_file(monkeypatch, tmp_path):
    target = tmp_path / "report.json"
    monkeypatch.setenv(results.REPORT_ENV, str(target))
    results.report("digits", {"mse": 0.01, "used": [1, 2]})
    results.report("cifar10", {"bits_per_dim": 5.1})
    results.report("digits", {"mse": 0.02})  # a second report of a name replaces the first
    assert json.loads(target.read_text()) == {"digits": {"mse": 0.02}, "cifar10": {"bits_per_dim": 5.1}}


@pytest.mark.parametrize("name, metrics, match", [("", {"a": 1}, "name"), ("x", {}, "metrics"),
                                                  ("x", {"a": object()}, "JSON")])
def test_report_rejects_bad_input(monkeypatch, tmp_path, name, metrics, match):
    monkeypatch.setenv(results.REPORT_ENV, str(tmp_path / "r.json"))
    with pytest.raises(ValueError, match=match):
        results.report(name, metrics)
    assert not (tmp_path / "r.json").exists()


def test_glue_returns_the_formatted_text_and_glues_it():
    assert results.glue("probe-acc", 0.93456, "{:.1%}") == "93.5%"
    assert results.glue("probe-nats", 89.7812, "{:.1f}") == "89.8"
    assert repr(results._Text("93.5%")) == "93.5%"  # the prose shows the text itself, not a quoted string
    with pytest.raises(ValueError, match="name"):
        results.glue("", 1.0)
