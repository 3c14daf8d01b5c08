"""``python3 tasks.py test --latest`` runs the suite in its own environment with every dependency but
torch at its newest release; the default run keeps the exact versions of constraints.txt."""
from __future__ import annotations

import subprocess
from pathlib import Path

from _tasks import load_tasks


def test_default_install_uses_the_constraints_and_latest_does_not(tmp_path, monkeypatch):
    tasks = load_tasks()
    monkeypatch.setattr(tasks, "VENV", tmp_path)
    pinned = [str(c) for c in tasks.install_command(Path("py"))]
    latest = [str(c) for c in tasks.install_command(Path("py"), latest=True)]
    assert str(tasks.ROOT / "constraints.txt") in pinned and "--upgrade" not in pinned
    assert str(tasks.ROOT / "constraints.txt") not in latest
    assert "--upgrade" in latest and latest[latest.index("--upgrade-strategy") + 1] == "eager"
    only = Path(latest[latest.index("-c") + 1]).read_text().split()
    assert only == [tasks.TORCH_SPEC]  # torch stays at its pin


def test_latest_flag_moves_to_its_own_environment_and_is_not_passed_to_pytest(monkeypatch):
    tasks = load_tasks()
    seen = {}

    def fake_ensure(latest=False):
        seen["latest"], seen["venv"] = latest, tasks.VENV
        return tasks._python()

    def fake_run(cmd, **kwargs):
        seen["cmd"] = [str(c) for c in cmd]
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(tasks, "ensure_environment", fake_ensure)
    monkeypatch.setattr(tasks.subprocess, "run", fake_run)
    default_venv = tasks.VENV
    assert tasks.main(["test", "--latest", "tests/test_data.py"]) == 0
    assert seen["latest"] is True and seen["venv"] == default_venv.parent / ".venv-latest"
    assert "--latest" not in seen["cmd"] and seen["cmd"][-1] == "tests/test_data.py"
    assert seen["cmd"][0].startswith(str(default_venv.parent / ".venv-latest"))
