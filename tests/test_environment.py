"""The pinned environments agree with each other and with the package's loose requirements."""
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pins(lines) -> dict[str, str]:
    pins = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if not line or line.startswith("-"):
            continue
        name, _, version = line.partition("==")
        assert version, f"{line!r} is not an exact pin"
        pins[name.strip().lower()] = version.strip()
    return pins


def _constraints() -> dict[str, str]:
    return _pins((ROOT / "constraints.txt").read_text().splitlines())


def _bench_only() -> set[str]:
    """Packages of the ``bench`` extra (benchmarks' reference implementations), pinned but never installed
    by tasks.py or environment.yml."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    return {_requirement_name(req) for req in extras.get("bench", [])}


def _no_deps() -> set[str]:
    """Packages tasks.py installs on its own with --no-deps (mup): pinned, kept out of environment.yml."""
    from _tasks import load_tasks

    return set(load_tasks().NO_DEPS)


def test_no_deps_packages_are_pinned_and_never_installed_with_their_dependencies():
    """mup's setup.py requires torchvision (PyPI's CUDA build) and seaborn: no extra and no environment.yml
    line may install it, only tasks.install_mup with --no-deps at the constraints pin."""
    from _tasks import load_tasks

    tasks = load_tasks()
    assert _no_deps() == {"mup"} and "mup" in _constraints()
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = extras["dependencies"] + [r for extra in extras["optional-dependencies"].values() for r in extra]
    assert not _no_deps() & {_requirement_name(r) for r in reqs}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert not _no_deps() & set(_pins(pip))
    assert tasks.mup_spec() == f"mup=={_constraints()['mup']}" and tasks.mup_spec(latest=True) == "mup"


def test_environment_yml_names_the_constraints_exactly():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    assert any(d.startswith("python=3.11") for d in conda) and "pip" in conda
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    wanted = {name: v for name, v in _constraints().items() if name not in _bench_only() | _no_deps()}
    assert _pins(pip) == wanted
    assert "-e .[book,test]" in pip


def test_the_bench_extra_stays_out_of_the_test_environment():
    """pythae (bench_vae's reference) is a benchmark dependency only, as the VAE issue asks."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert "pythae" in _bench_only()
    installed_extras = {_requirement_name(r) for name in ("book", "test") for r in extras[name]}
    assert not _bench_only() & installed_extras
    from _tasks import load_tasks

    command = " ".join(map(str, load_tasks().install_command("python")))
    assert "[book,test]" in command and "bench" not in command


def _requirement_name(req: str) -> str:
    return re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0].lower()


def test_package_requirements_have_lower_bounds_only_and_are_pinned_for_ci():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    pins = _constraints()
    for req in reqs:
        name = _requirement_name(req)
        assert name in pins, f"{name} is required but not pinned in constraints.txt"
        if name == "jupyter-book":  # JB 2 is a different product; a bare <2 can resolve to 0.6.5
            assert ">=1.0.4" in req and "<2" in req
        else:
            assert "==" not in req and "<" not in req, f"{req}: runtime requirements carry lower bounds only"


def test_torch_is_pinned_to_the_cpu_wheel_version_used_by_tasks():
    from _tasks import load_tasks

    tasks = load_tasks()
    assert tasks.TORCH_SPEC == f"torch=={_constraints()['torch']}"


def test_package_version_matches_pyproject():
    import dlnotes

    assert dlnotes.__version__ == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
