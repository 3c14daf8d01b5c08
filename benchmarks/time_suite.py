"""Time the README's test command: ``python benchmarks/time_suite.py --write``.

Runs ``python3 tasks.py test`` (arguments after ``--`` go to it) exactly as CI does, shows its
output as it goes, and with ``--write`` records the wall time, pytest's summary line, the machine's
cores and its load when the run started in ``benchmarks/results/test-suite-<device type>.json``, so
the time the README quotes is measured, not guessed. A failing run records nothing.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from _cli import RESULTS, ROOT

from dlnotes.results import write_results  # noqa: E402
from dlnotes.runtime import pick_device  # noqa: E402

SUMMARY = re.compile(r"^=+ (?P<summary>.*\d+ passed.*) in [\d.]+s.*=+$")


def summary_counts(summary: str) -> dict[str, int]:
    """``"900 passed, 2 skipped, 1 warning"`` -> ``{"passed": 900, "skipped": 2, "warning": 1}``."""
    return {word: int(n) for n, word in re.findall(r"(\d+) (\w+)", summary)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="record the time in benchmarks/results")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder of the results file")
    parser.add_argument("pytest_args", nargs="*", help="passed on to `python3 tasks.py test`")
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "tasks.py", "test", *args.pytest_args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    summary = ""
    for line in proc.stdout:
        print(line, end="", flush=True)
        match = SUMMARY.match(line.strip())
        summary = match["summary"] if match else summary
    code = proc.wait()
    seconds = time.perf_counter() - start
    print(f"the test command took {seconds / 60:.1f} min and exited with {code}")
    if args.write:
        if code != 0 or not summary:
            print("nothing recorded: the run failed")
            return code or 1
        device = pick_device()
        out = write_results(args.out / f"test-suite-{device.type}.json", "the README's test command",
                            {"seconds": round(seconds), "minutes": round(seconds / 60, 1),
                             **summary_counts(summary)},
                            device=device, config={"command": "python3 tasks.py test", "args": args.pytest_args,
                                                  "cores": os.cpu_count(), "load_at_start": round(load, 2)},
                            notes="written by benchmarks/time_suite.py; includes creating the environment "
                                  "when it did not exist")
        print(f"wrote {out}")
    return code


if __name__ == "__main__":
    sys.exit(main())
