"""Load the repository's ``tasks.py`` (not a package) as a module for tests."""
import importlib.util
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load_tasks(name: str = "tasks_under_test") -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "tasks.py")
    tasks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tasks)
    return tasks
