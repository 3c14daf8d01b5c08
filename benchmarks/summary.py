"""The headline ratio of every recorded benchmark, with its goal: ``python benchmarks/summary.py [--device cpu]``.

Reads ``benchmarks/results/<topic>-<device>.json`` (what the ``bench_*.py`` scripts write) and prints one
Markdown table: the ratio each script prints, its goal where the issue set one, and whether the record
meets it. The README's Benchmarks section holds this table for the CPU records between two markers;
``--readme`` rewrites it there after a new record, and tests/test_benchmarks.py checks that they agree.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"
BEGIN, END = "<!-- benchmark-summary:begin -->", "<!-- benchmark-summary:end -->"


class Headline(NamedTuple):
    """One ratio of a results file: ``path`` into its metrics (dots; digits index lists)."""

    topic: str
    path: str
    label: str
    goal: str | float | None = None  # the goal's path in the same metrics, or the goal the script prints
    better: str = "<="  # the ratio meets the goal when ratio <= goal ("<=") or ratio >= goal (">=")
    gpu_goal: bool = False  # the goal is for a GPU: a CPU record shows it and is not judged


HEADLINES = (
    Headline("vae", "ratio_ours_over_floor", "importance-sampled NLL, ours / decoder floor (time)",
             "goal_ours_over_floor"),
    Headline("vae", "settings.0.ratio_pythae_over_ours", "importance-sampled NLL, pythae / ours (time)",
             "goal_pythae_over_ours", ">="),
    Headline("vqvae", "ratio_ours_over_theirs", "quantiser step, reference / ours (time)", "goal_cpu_ratio", ">="),
    Headline("nvae", "runs.quick.ratio_over_eager_fp32.compile",
             "NVAE step, eager / torch.compile (time; goal for compile + bf16 on a GPU)", "goal_gpu", ">=",
             gpu_goal=True),
    Headline("init_norm", "ratio_ours_over_torch_time", "Transformer block, ours / nn.TransformerEncoderLayer (time)",
             "goal_ratio"),
    Headline("integrated_gradients", "ratio_ours_over_captum", "integrated gradients, ours / captum (time)", 1.0),
    Headline("integrated_gradients", "ratio_ours_over_floor", "integrated gradients, ours / gradient floor (time)"),
    Headline("capsules", "full.ratio_ours_over_reference", "capsule routing, ours / broadcast reference (time)", 1.0),
)


def _get(metrics: dict, path: str):
    value = metrics
    for key in path.split("."):
        value = value[int(key)] if isinstance(value, list) else value[key]
    return value


def rows(device: str = "cpu", results: Path = RESULTS) -> list[list[str]]:
    """One row per headline whose results file exists: benchmark, ratio, goal, verdict, file, commit."""
    out = []
    for h in HEADLINES:
        path = results / f"{h.topic}-{device}.json"
        if not path.exists():
            continue
        record = json.loads(path.read_text())
        ratio = float(_get(record["metrics"], h.path))
        goal = verdict = "—"
        if h.goal is not None:
            target = float(h.goal if isinstance(h.goal, float) else _get(record["metrics"], h.goal))
            goal = f"{h.better} {target:g}" + (" (GPU)" if h.gpu_goal else "")
            if h.gpu_goal and device != "cuda":
                verdict = "not judged on a CPU"
            else:
                met = ratio <= target if h.better == "<=" else ratio >= target
                verdict = "met" if met else "**missed**"
        out.append([h.label, f"{ratio:.2f}", goal, verdict, f"`{path.name}`", record.get("commit", "?")])
    return out


def table(device: str = "cpu", results: Path = RESULTS) -> str:
    """The Markdown table of :func:`rows`."""
    head = ["benchmark", "ratio", "goal", "record", "file", "commit"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows(device, results)]
    return "\n".join(lines)


def readme_block(text: str) -> str:
    """What the README holds between the two markers (ValueError if they are missing)."""
    if text.count(BEGIN) != 1 or text.count(END) != 1:
        raise ValueError(f"README must hold the markers {BEGIN} and {END} once each")
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="the records of this device type (default: cpu)")
    parser.add_argument("--readme", action="store_true", help="rewrite the README's table (CPU records)")
    args = parser.parse_args(argv)
    if not args.readme:
        print(table(args.device))
        return 0
    text = README.read_text()
    readme_block(text)  # both markers, once each
    before, rest = text.split(BEGIN, 1)
    README.write_text(f"{before}{BEGIN}\n{table('cpu')}\n{END}{rest.split(END, 1)[1]}")
    print(f"README.md: table of {len(rows('cpu'))} CPU headlines written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
