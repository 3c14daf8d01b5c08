"""tasks.py installs mup (the reference of the muP agreement test) without its declared dependencies, after
the main install, keeps it only if it imports, and goes on without it.

No network is used: pip and the import check are replaced by fakes that record what was asked.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from _tasks import load_tasks

tasks = load_tasks()


class FakePip:
    """Answers ``pip install`` (ok or not), the import check (ok or a ModuleNotFoundError) and uninstall."""

    def __init__(self, installs: bool, imports: bool):
        self.installs, self.imports, self.calls, self.installed = installs, imports, [], False

    def __call__(self, cmd, **kwargs):
        cmd = [str(c) for c in cmd]
        self.calls.append(cmd)
        if "uninstall" in cmd:
            self.installed = False
            return subprocess.CompletedProcess(cmd, 0, "", "")
        if "install" in cmd:
            self.installed = self.installs
            return subprocess.CompletedProcess(cmd, 0 if self.installs else 1, "", "")
        if cmd[1:3] == ["-c", tasks.MUP_IMPORT_CHECK]:
            ok = self.installed and self.imports
            return subprocess.CompletedProcess(cmd, 0 if ok else 1, "",
                                               "" if ok else "ModuleNotFoundError: No module named 'pandas'\n")
        raise AssertionError(f"unexpected command {cmd}")


@pytest.mark.parametrize("latest", [False, True])
def test_installed_alone_without_dependencies_at_the_pin(monkeypatch, capsys, latest):
    pip = FakePip(installs=True, imports=True)
    monkeypatch.setattr(tasks.subprocess, "run", pip)
    assert tasks.install_mup(Path("python"), latest=latest) is True
    install = next(c for c in pip.calls if "install" in c)
    assert "--no-deps" in install and install[-1] == tasks.mup_spec(latest)
    assert ("--upgrade" in install) is latest
    assert "-c" not in install and "-e" not in install  # mup alone, nothing else resolved with it
    assert pip.calls[1][1:] == ["-c", tasks.MUP_IMPORT_CHECK] and pip.installed
    out = capsys.readouterr().out.strip().splitlines()
    assert out == [f"mup: installed {tasks.mup_spec(latest)} without its declared dependencies"]


def test_a_mup_that_does_not_import_is_removed_and_the_reason_given(monkeypatch, capsys):
    pip = FakePip(installs=True, imports=False)
    monkeypatch.setattr(tasks.subprocess, "run", pip)
    assert tasks.install_mup(Path("python")) is False
    assert any("uninstall" in c for c in pip.calls) and not pip.installed
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "No module named 'pandas'" in out[0] and "skips" in out[0]


def test_pip_failure_says_so_in_one_line_and_goes_on(monkeypatch, capsys):
    pip = FakePip(installs=False, imports=False)
    monkeypatch.setattr(tasks.subprocess, "run", pip)
    assert tasks.install_mup(Path("python")) is False
    assert len(pip.calls) == 1  # no import check, nothing to remove
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith(f"mup: {tasks.mup_spec()} not installed")


def test_ensure_environment_installs_mup_after_the_main_install(tmp_path, monkeypatch):
    """mup's imports (PyYAML, pandas) come with the main install, so mup must come after it."""
    order = []
    monkeypatch.setattr(tasks, "VENV", tmp_path)
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "python").write_text("")
    (tmp_path / "Scripts").mkdir()
    (tmp_path / "Scripts" / "python.exe").write_text("")
    monkeypatch.setattr(tasks, "_install_torch", lambda py: order.append("torch"))
    monkeypatch.setattr(tasks, "_run", lambda cmd, **kw: order.append("main"))
    monkeypatch.setattr(tasks, "install_torchvision", lambda py: order.append("torchvision"))
    monkeypatch.setattr(tasks, "install_mup", lambda py, latest=False: order.append(("mup", latest)))
    tasks.ensure_environment()
    assert order == ["torch", "main", "torchvision", ("mup", False)]
    order.clear()
    tasks.ensure_environment(latest=True)
    assert order[-1] == ("mup", True)
    order.clear()
    tasks.ensure_environment()  # stamp unchanged: nothing reinstalled
    assert order == []
