"""The repository's conftest makes nbval fail a notebook cell that writes to stderr."""
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_cell_writing_to_stderr_fails_under_nbval(pytester):
    pytester.makeconftest((ROOT / "conftest.py").read_text())
    cells = ["print('fine')", "import warnings\nwarnings.warn('careful')", "x = 1"]
    nb = {"cells": [{"id": f"c{i}", "cell_type": "code", "metadata": {}, "execution_count": None,
                     "outputs": [], "source": src} for i, src in enumerate(cells)],
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    (pytester.path / "probe.ipynb").write_text(json.dumps(nb))
    result = pytester.runpytest_subprocess("--nbval-lax", "probe.ipynb", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*cell 1 wrote to stderr*", "*careful*"])
