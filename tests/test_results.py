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
