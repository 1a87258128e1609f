"""Print a Markdown table of finished runs from their run directories (config.yaml, metrics.json,
environment.json): what the README's result tables are generated from.

For each run: the experiment (from the recorded command line), the test value of the metric its
task monitors, the task's baseline (``test/baseline_<metric>``) and the gain over it when the
task has one, SSIM for restoration, the scoring protocol the run recorded, and the run time
(from environment.json, written when the run starts, to metrics.json, written when it ends:
model building and data preparation included, Python start-up not).

    .venv/bin/python scripts/results_table.py outputs/photos_edsr_x2/* outputs/photos_unet_*/*

Exit status 1 when a directory holds no finished run (no metrics.json).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml


def run_row(run_dir: Path) -> dict[str, str]:
    """The table cells of one run directory."""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    command = json.loads((run_dir / "environment.json").read_text())["command"]
    experiment = next((a.split("=", 1)[1] for a in command if a.startswith("experiment=")), "-")
    metric = config["task"]["monitor"].split("/", 1)[1]
    seconds = (run_dir / "metrics.json").stat().st_mtime - (
        run_dir / "environment.json"
    ).stat().st_mtime
    row = {
        "experiment": f"`{experiment}`",
        "task": config["task"]["name"],
        f"test {metric}": f"{metrics[f'test/{metric}']:.2f}",
    }
    baseline = metrics.get(f"test/baseline_{metric}")
    if baseline is not None:
        row["baseline"] = f"{baseline:.2f}"
        row["gain"] = f"{metrics[f'test/{metric}'] - baseline:+.2f}"
    if "test/ssim" in metrics:
        row["test ssim (baseline)"] = (
            f"{metrics['test/ssim']:.4f} ({metrics.get('test/baseline_ssim', float('nan')):.4f})"
        )
    protocol = [f"{k.split('/', 1)[1]} {v}" for k, v in sorted(metrics.items())
                if k.startswith("test/") and isinstance(v, str)]  # fmt: skip
    if "test/crop_border" in metrics:
        protocol.append(f"crop {int(metrics['test/crop_border'])}")
    row["protocol"] = ", ".join(protocol) or "-"
    row["images"] = str(int(metrics.get("test/num_images", 0)))
    row["run time"] = f"{int(seconds // 60)} min {int(seconds % 60)} s"
    return row


def markdown(rows: list[dict[str, str]]) -> str:
    """Rows as a Markdown table; the columns of the first row, in order, blanks where missing."""
    columns = list(dict.fromkeys(c for row in rows for c in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(row.get(c, "") for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories")
    args = parser.parse_args(argv)
    missing = [str(r) for r in args.runs if not (r / "metrics.json").is_file()]
    if missing:
        print(f"error: no finished run (metrics.json) in {', '.join(missing)}", file=sys.stderr)
        return 1
    print(markdown([run_row(r) for r in args.runs]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
