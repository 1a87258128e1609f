"""Terminal output of the CLI: the result table and the run directory."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table


def format_value(key: str, value: float | str | None) -> str:
    """A metric as the table shows it: counts whole, other numbers to 4 decimals, None as
    "-" (nothing to score), protocol strings as they are."""
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return f"{value:.0f}" if key.endswith(("num_images", "num_detections")) else f"{value:.4f}"


def print_results(metrics: dict[str, float | str | None], run_dir: Path, title: str) -> None:
    """Print ``metrics`` as a table (test metrics first), then where the run lives."""
    console = Console()
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    order = {"test": 0, "val": 1, "train": 2}
    for key in sorted(metrics, key=lambda k: (order.get(k.split("/")[0], 3), k)):
        table.add_row(key, format_value(key, metrics[key]))
    console.print(table)
    console.print(f"run directory: [bold]{run_dir}[/bold]")
