"""Repository-wide pytest set-up.

nbval's lax mode fails a notebook cell only when it raises; a chapter must also write
nothing to stderr (no warnings, no stray log lines), as in the book build. This hook fails
a cell whose outputs contain a stderr stream, showing what was written.
"""
from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]  # tests/test_nbval_stderr.py runs pytest on a probe notebook


def stderr_text(outputs) -> str:
    """The text a list of notebook outputs wrote to stderr ('' when none)."""
    return "".join(
        "".join(o.get("text", "")) for o in outputs or []
        if o.get("output_type") == "stream" and o.get("name") == "stderr"
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    result = yield  # re-raises when the cell itself failed
    written = stderr_text(getattr(item, "test_outputs", None))
    if written:
        pytest.fail(f"cell {getattr(item, 'cell_num', '?')} wrote to stderr:\n{written}", pytrace=False)
    return result
