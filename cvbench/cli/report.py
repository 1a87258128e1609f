"""Terminal output of the CLI: the result table and the run directory."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table


def print_results(metrics: dict[str, float], run_dir: Path, title: str) -> None:
    """Print ``metrics`` as a table (test metrics first), then where the run lives."""
    console = Console()
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    order = {"test": 0, "val": 1, "train": 2}
    for key in sorted(metrics, key=lambda k: (order.get(k.split("/")[0], 3), k)):
        if key.endswith("num_images"):
            table.add_row(key, f"{metrics[key]:.0f}")
        else:
            table.add_row(key, f"{metrics[key]:.4f}")
    console.print(table)
    console.print(f"run directory: [bold]{run_dir}[/bold]")
