"""tasks.py installs the torchvision that matches torch, from torch's own source, and goes on without it.

No network is used: pip and the import check are replaced by fakes that record what was asked.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from _tasks import load_tasks

tasks = load_tasks()


def test_spec_follows_the_constraints_pin_and_pytorch_numbering():
    pins = dict(l.split("==") for l in (tasks.ROOT / "constraints.txt").read_text().splitlines()
                if "==" in l and not l.startswith("#"))
    assert tasks.torchvision_spec(pins["torch"]) == f"torchvision=={pins['torchvision']}"
    assert tasks.torchvision_spec("2.14.1") == "torchvision==0.29.*"
    assert tasks.torchvision_spec("2.9.1") == "torchvision==0.24.*"
    with pytest.raises(ValueError, match="torch_version"):
        tasks.torchvision_spec("1.13.1")


def test_cpu_machines_never_take_the_default_index():
    cpu = tasks.torchvision_sources(has_gpu=False)
    gpu = tasks.torchvision_sources(has_gpu=True)
    assert cpu[0][1] == gpu[0][1] == ["--no-index"]  # a wheel on this machine first
    assert cpu[1][1] == ["--index-url", tasks.CPU_TORCH_INDEX]
    assert gpu[1][1] == []  # the default index has the CUDA builds


class FakePip:
    """Answers ``pip install`` by source; records installs, uninstalls and whether torchvision loads."""

    def __init__(self, found_in: set[str], loads: bool):
        self.found_in, self.loads, self.calls, self.installed = found_in, loads, [], False

    def __call__(self, cmd, **kwargs):
        cmd = [str(c) for c in cmd]
        self.calls.append(cmd)
        if cmd[1:3] == ["-c", "import importlib.metadata as m; print(m.version('torch'))"]:
            return subprocess.CompletedProcess(cmd, 0, stdout="2.13.0+cpu\n", stderr="")
        if "uninstall" in cmd:
            self.installed = False
            return subprocess.CompletedProcess(cmd, 0)
        if "install" in cmd:
            source = "local" if "--no-index" in cmd else "online"
            ok = source in self.found_in
            self.installed |= ok
            return subprocess.CompletedProcess(cmd, 0 if ok else 1)
        if cmd[1] == "-c":  # the import check
            return subprocess.CompletedProcess(cmd, 0 if self.installed and self.loads else 1)
        raise AssertionError(f"unexpected command {cmd}")


@pytest.mark.parametrize("gpu", [False, True])
def test_failure_says_so_in_one_line_and_goes_on(monkeypatch, capsys, gpu):
    pip = FakePip(found_in=set(), loads=False)
    monkeypatch.setattr(tasks.subprocess, "run", pip)
    monkeypatch.setattr(tasks, "_has_nvidia_gpu", lambda: gpu)
    assert tasks.install_torchvision(Path("python")) is False
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("torchvision: torchvision==0.28.0 not installed")
    assert "mlxtend" in out[0]
    installs = [c for c in pip.calls if "install" in c]
    assert len(installs) == 2 and ("--index-url" in installs[1]) is not gpu


def test_a_build_that_does_not_load_is_removed(monkeypatch, capsys):
    pip = FakePip(found_in={"online"}, loads=False)  # e.g. PyPI's CUDA wheel beside the CPU torch
    monkeypatch.setattr(tasks.subprocess, "run", pip)
    monkeypatch.setattr(tasks, "_has_nvidia_gpu", lambda: False)
    assert tasks.install_torchvision(Path("python")) is False
    assert any("uninstall" in c for c in pip.calls) and not pip.installed
    assert "does not load" in capsys.readouterr().out


def test_a_local_wheel_that_loads_is_kept(monkeypatch, capsys):
    pip = FakePip(found_in={"local", "online"}, loads=True)
    monkeypatch.setattr(tasks.subprocess, "run", pip)
    monkeypatch.setattr(tasks, "_has_nvidia_gpu", lambda: False)
    assert tasks.install_torchvision(Path("python")) is True
    assert [c for c in pip.calls if "install" in c and "--index-url" in c] == []  # no network asked
    assert "installed torchvision==0.28.0 from a wheel on this machine" in capsys.readouterr().out
