"""Repository hygiene: notebooks are committed clean, the table of contents is real, set-up cells
are the canonical one, and stale executions are never reused."""
import json
import sys
from pathlib import Path

import pytest
import yaml
from _tasks import load_tasks

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
sys.path.insert(0, str(BOOK / "_ext"))
import setup_cell  # noqa: E402

NOTEBOOKS = sorted(BOOK.glob("*.ipynb"))


def _toc_files() -> list[str]:
    toc = yaml.safe_load((BOOK / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [entry["file"] for entry in part["chapters"]]
    return files


def _page(name: str) -> Path | None:
    return next((BOOK / f"{name}{ext}" for ext in (".md", ".ipynb") if (BOOK / f"{name}{ext}").exists()), None)


def test_toc_lists_only_existing_pages_and_every_notebook():
    files = _toc_files()
    assert len(files) == len(set(files)), "a page is listed twice"
    missing = [f for f in files if _page(f) is None]
    assert missing == [], f"_toc.yml lists pages that do not exist: {missing}"
    unlisted = [nb.stem for nb in NOTEBOOKS if nb.stem not in files]
    assert unlisted == [], f"notebooks not in _toc.yml: {unlisted}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_committed_without_outputs(path):
    nb = json.loads(path.read_text())
    dirty = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"
             and (c.get("outputs") or c.get("execution_count") is not None)]
    assert dirty == [], f"{path.name}: cells {dirty} carry outputs or execution counts"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_first_code_cell_is_the_canonical_setup(path):
    nb = json.loads(path.read_text())
    cell = setup_cell.first_code_cell(nb)
    assert cell is not None
    tags = cell.get("metadata", {}).get("tags", [])
    assert setup_cell.SETUP_TAG in tags and "hide-input" in tags
    assert "".join(cell["source"]) == setup_cell.render(), "run `python tasks.py sync`"


def test_setup_cell_pins_repository_and_version():
    config = yaml.safe_load((BOOK / "_config.yml").read_text())
    text = setup_cell.render()
    assert f"git+{config['repository']['url']}@v{setup_cell.version()}" in text
    assert "--editable" not in text and " -e " not in text
    assert "torch" not in text.split("from dlnotes")[0]  # the install never names torch


def test_book_config_fails_on_errors_and_stays_offline():
    config = yaml.safe_load((BOOK / "_config.yml").read_text())
    assert config["execute"]["allow_errors"] is False
    assert config["execute"]["stderr_output"] == "error"
    assert config["execute"]["execute_notebooks"] == "cache"
    assert config["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    sphinx = config["sphinx"]["config"]
    assert sphinx["nb_execution_raise_on_error"] is True and sphinx["nb_ipywidgets_js"] == {}
    assert "dlnotes_book" in config["sphinx"]["extra_extensions"]


def _load_tasks(monkeypatch, root: Path):
    tasks = load_tasks()
    monkeypatch.setattr(tasks, "ROOT", root)
    monkeypatch.setattr(tasks, "BUILD", root / "book" / "_build")
    monkeypatch.setattr(tasks, "BOOK", root / "book")
    return tasks


def test_previous_build_dropped_when_package_source_changes(monkeypatch, tmp_path):
    (tmp_path / "src" / "dlnotes").mkdir(parents=True)
    module = tmp_path / "src" / "dlnotes" / "m.py"
    module.write_text("x = 1\n")
    tasks = _load_tasks(monkeypatch, tmp_path)
    build = tmp_path / "book" / "_build"
    outputs = [build / ".jupyter_cache" / "db", build / ".doctrees" / "env.pickle", build / "html" / "index.html"]
    tasks._invalidate_stale_cache()
    for path in outputs:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("previous build")
    tasks._invalidate_stale_cache()  # nothing changed: the build and its cache stay
    assert all(path.exists() for path in outputs)
    module.write_text("x = 2\n")
    tasks._invalidate_stale_cache()  # the package changed: cache and Sphinx environment go
    assert not any(path.exists() for path in outputs)
    for path in outputs:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("previous build")
    (tmp_path / "constraints.txt").write_text("plotly==9.9\n")
    tasks._invalidate_stale_cache()  # new pins: the figures must be made again too
    assert not any(path.exists() for path in outputs)


def test_readme_quotes_the_recorded_times():
    """The times the README states are those of benchmarks/results, not typed guesses."""
    import re

    readme = (ROOT / "README.md").read_text()
    record = json.loads((ROOT / "benchmarks" / "results" / "chapter-times-quick-cpu.json").read_text())
    seconds = record["metrics"]
    pages = len(seconds)
    words = {7: "seven", 8: "eight", 9: "nine", 10: "ten"}
    total = f"took {sum(seconds.values()):.0f} s for all {words.get(pages, pages)} pages"
    assert total in readme, f"README should say '{total}' (chapter-times-quick-cpu.json)"
    quoted = {float(s) for s in re.findall(r"\((\d+) s\)", readme)}
    longest = sorted(seconds.values())[-2:]
    assert {round(s) for s in longest} <= quoted, f"README should quote the two longest chapters: {longest}"
    suite = ROOT / "benchmarks" / "results" / "test-suite-cpu.json"
    if suite.exists():
        minutes = json.loads(suite.read_text())["metrics"]["minutes"]
        assert f"{minutes:.0f} minutes" in readme, f"README should quote the test suite's {minutes:.0f} minutes"
