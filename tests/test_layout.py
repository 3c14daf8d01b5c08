"""The package's layout: shared modules at the top, one subpackage per chapter.

A chapter's subpackage may import the shared modules (``dlnotes.data``, ``dlnotes.train``, ...) and
its own modules, never another chapter's subpackage: chapters stay independent, and what two chapters
need lives at the top. A subpackage that later chapters build on (``dlnotes.vae`` for NVAE) is
shared: its ``__init__`` docstring says so, and only then may other subpackages import it.
"""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "dlnotes"
SUBPACKAGES = sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py"))
SHARED_MARK = "Shared:"  # the first word of a line in a shared subpackage's docstring


def _shared(name: str) -> bool:
    doc = ast.get_docstring(ast.parse((PACKAGE / name / "__init__.py").read_text())) or ""
    return any(line.strip().startswith(SHARED_MARK) for line in doc.splitlines())


def dlnotes_imports(path: Path) -> set[str]:
    """Every ``dlnotes.*`` module a file imports, as dotted names (relative imports resolved)."""
    tree = ast.parse(path.read_text())
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "dlnotes"}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            if base.split(".")[0] == "dlnotes":
                found |= {base} | {f"{base}.{a.name}" for a in node.names}
    return found


def chapter_of(module: str) -> str | None:
    """The chapter subpackage a dotted module name lies in, or None for shared top-level code."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in SUBPACKAGES else None


def test_there_are_chapter_subpackages():
    assert {"vqvae", "capsules", "integrated_gradients"} <= set(SUBPACKAGES)


@pytest.mark.parametrize("name", SUBPACKAGES)
def test_chapter_imports_only_shared_code(name):
    offending = []
    for path in sorted((PACKAGE / name).rglob("*.py")):
        for module in dlnotes_imports(path):
            other = chapter_of(module)
            if other not in (None, name) and not _shared(other):
                offending.append(f"{path.relative_to(PACKAGE)} imports {module}")
    assert offending == [], "a chapter imports another chapter's subpackage:\n" + "\n".join(offending)


def test_shared_modules_import_no_chapter():
    offending = [f"{path.name} imports {module}" for path in sorted(PACKAGE.glob("*.py"))
                 for module in dlnotes_imports(path) if chapter_of(module) is not None]
    assert offending == [], "\n".join(offending)


def test_rule_catches_a_cross_chapter_import(tmp_path):
    probe = PACKAGE / "capsules" / "probe_cross_import.py"
    try:
        probe.write_text("from dlnotes.vqvae import VectorQuantizer\nfrom . import routing\n")
        imports = dlnotes_imports(probe)
        assert "dlnotes.vqvae" in imports and "dlnotes.capsules.routing" in imports
        assert chapter_of("dlnotes.vqvae") == "vqvae" and not _shared("vqvae")
    finally:
        probe.unlink()


@pytest.mark.parametrize("name", SUBPACKAGES)
def test_subpackage_exports_its_api(name):
    module = importlib.import_module(f"dlnotes.{name}")
    exported = getattr(module, "__all__", None)
    assert exported, f"dlnotes.{name} lists no public API in __all__"
    missing = [n for n in exported if not hasattr(module, n)]
    assert missing == [], f"dlnotes.{name}.__all__ names what it lacks: {missing}"
