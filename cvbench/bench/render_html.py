"""Leaderboard tables as one self-contained HTML page: inline CSS and JavaScript, plots as
inline SVG (matplotlib), no network and no server.

Clicking a header sorts its table (again: the other way). The URL hash
``#sort=<table>:<column>[:asc|:desc]`` sorts on load, e.g.
``leaderboard.html#sort=classification-digits:params:desc``; ``<table>`` is the table's
:attr:`~cvbench.bench.tables.Table.slug` and ``<column>`` a header's ``data-key``: ``rank``,
``experiment``, ``model``, a metric key (``test/top1_error``), ``n``, ``params``,
``flops_per_image`` or ``train_images_per_s``.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from html import escape

from cvbench.bench.render import (
    caption,
    cells,
    column_title,
    format_si,
    headers,
    left_out_note,
)
from cvbench.bench.tables import COSTS, Table

# Left out of the SVGs: no date or version (the page stays the same for the same runs), no RDF.
SVG_METADATA = ("Date", "Creator", "Format", "Type")
PLOT_AXES = {"params": "parameters", "train_images_per_s": "training throughput (img/s)"}

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { padding: .25em .6em; border-bottom: 1px solid #ddd; white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { cursor: pointer; user-select: none; background: #f4f4f4; }
th[aria-sort=ascending]::after { content: " \\25B2"; }
th[aria-sort=descending]::after { content: " \\25BC"; }
.caption, .left-out { color: #555; }
.plots { display: flex; flex-wrap: wrap; gap: 1em; }
.plots svg { width: 420px; height: auto; }
code { font-size: 90%; }
"""

SCRIPT = """
function cellValue(row, index, numeric) {
  const raw = row.cells[index].dataset.value;
  if (raw === undefined || raw === "") return null;
  if (!numeric) return raw;
  const value = parseFloat(raw);
  return Number.isNaN(value) ? null : value;
}
function sortTable(table, key, descending) {
  const header = Array.from(table.tHead.rows[0].cells).find(th => th.dataset.key === key);
  if (!header) return false;
  const index = header.cellIndex, numeric = header.dataset.type === "num";
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  rows.sort((a, b) => {
    const x = cellValue(a, index, numeric), y = cellValue(b, index, numeric);
    if (x === null || y === null) return (x === null) - (y === null);  // missing last
    const order = numeric ? x - y : x.localeCompare(y);
    return descending ? -order : order;
  });
  rows.forEach(row => body.appendChild(row));
  for (const th of table.tHead.rows[0].cells) th.removeAttribute("aria-sort");
  header.setAttribute("aria-sort", descending ? "descending" : "ascending");
  return true;
}
function applyHash() {
  const match = /^#sort=([^:]+):(.+?)(?::(asc|desc))?$/.exec(decodeURIComponent(location.hash));
  if (!match) return;
  const table = document.querySelector('table[data-table="' + match[1] + '"]');
  if (table) sortTable(table, match[2], match[3] === "desc");
}
for (const table of document.querySelectorAll("table.leaderboard")) {
  for (const th of table.tHead.rows[0].cells) {
    th.addEventListener("click", () =>
      sortTable(table, th.dataset.key, th.getAttribute("aria-sort") === "ascending"));
  }
}
window.addEventListener("hashchange", applyHash);
applyHash();
"""


def _data_value(value: float | str | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return repr(value) if isinstance(value, float) else str(value)


def html_table(table: Table) -> str:
    """The ``<table>``: each cell carries its raw value in ``data-value`` for sorting."""
    keys = ["rank", "experiment", "model", *table.columns, "n", *COSTS]
    numeric = {"rank", "n", *table.columns, *COSTS}
    head = "".join(
        f'<th data-key="{escape(k)}" data-type="{"num" if k in numeric else "text"}"'
        f' title="{escape(k)}">{escape(title)}</th>'
        for k, title in zip(keys, headers(table), strict=True)
    )
    body = []
    for rank, row in enumerate(table.rows, 1):
        values = [
            rank,
            row.label,
            row.model,
            *(row.metrics[c].mean for c in table.columns),
            row.n,
            *(row.costs[c].mean for c in COSTS),
        ]
        label = f"<code>{escape(row.experiment)}</code>" + "".join(
            f" <code>{escape(o)}</code>" for o in row.distinct
        )
        shown = [str(rank), label, escape(row.model or "-"), *map(escape, cells(table, row))]
        body.append(
            "<tr>"
            + "".join(
                f'<td class="{"num" if k in numeric else "text"}"'
                f' data-value="{escape(_data_value(v))}">{s}</td>'
                for k, v, s in zip(keys, values, shown, strict=True)
            )
            + "</tr>"
        )
    return (
        f'<table class="leaderboard" id="table-{table.slug}" data-table="{table.slug}">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def plot_svg(table: Table, cost: str) -> str | None:
    """An inline SVG of the primary metric (mean, std as error bar) against ``cost``, each
    point labelled with its rank; None when no row records both."""
    from matplotlib import rc_context
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    points = [
        (rank, row)
        for rank, row in enumerate(table.rows, 1)
        if _finite(row.costs[cost].mean) and _finite(row.metrics[table.primary].mean)
    ]
    if not points:
        return None
    xs = [row.costs[cost].mean for _, row in points]
    ys = [row.metrics[table.primary].mean for _, row in points]
    errors = [row.metrics[table.primary].std or 0.0 for _, row in points]
    with rc_context({"svg.hashsalt": "cvbench", "svg.fonttype": "path"}):
        figure = Figure(figsize=(5.0, 3.6))
        axes = figure.subplots()
        axes.errorbar(xs, ys, yerr=errors, fmt="o", capsize=3)
        for (rank, _), x, y in zip(points, xs, ys, strict=True):
            axes.annotate(f"#{rank}", (x, y), textcoords="offset points", xytext=(4, 4))
        if min(xs) > 0 and max(xs) / min(xs) > 20:
            axes.set_xscale("log")
        better = "lower" if table.direction == "min" else "higher"
        axes.set_xlabel(PLOT_AXES[cost])
        axes.set_ylabel(f"{column_title(table.primary)} ({better} is better)")
        axes.set_title(f"{column_title(table.primary)} vs {PLOT_AXES[cost]}")
        axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: format_si(value)))
        axes.grid(alpha=0.3)
        figure.tight_layout()
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata=dict.fromkeys(SVG_METADATA))
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def html_section(table: Table) -> str:
    """A table's title, caption, table, left-out note and plots."""
    parts = [
        f'<section id="{table.slug}"><h2>{escape(table.title)}</h2>',
        f'<p class="caption">{escape(caption(table))}</p>',
        html_table(table),
    ]
    note = left_out_note(table)
    if note:
        parts.append(f'<p class="left-out">{escape(note)}</p>')
    plots = []
    for cost in PLOT_AXES:
        svg = plot_svg(table, cost)
        plots.append(
            f'<figure class="plot" data-x="{cost}">{svg}</figure>'
            if svg
            else f'<p class="no-plot">No row records {PLOT_AXES[cost]}: no plot.</p>'
        )
    parts.append(f'<div class="plots">{"".join(plots)}</div></section>')
    return "\n".join(parts)


def html_page(tables: Sequence[Table], title: str = "cvbench leaderboard") -> str:
    """The whole page: every table with its plots, the sorting script at the end."""
    sections = "\n".join(html_section(t) for t in tables) or "<p>No runs.</p>"
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>\n'
        f"<style>{STYLE}</style></head>\n<body>\n<h1>{escape(title)}</h1>\n{sections}\n"
        f"<script>{SCRIPT}</script>\n</body></html>\n"
    )
