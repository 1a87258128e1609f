"""Leaderboard tables as text: Markdown (what the README embeds: stable, no timestamps) and CSV
(every number at full precision, for other tools).

Precision in Markdown and HTML: metrics with 2 decimals (percent, dB), SSIM-like metrics in
[0, 1] (a name containing ``ssim``) with 4; parameters and FLOPs with 3 significant digits and a
unit (``11.2M``, ``1.82G``); throughput in whole images per second.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Sequence

from cvbench.bench.tables import COSTS, Row, Stat, Table

FORMATS = ("md", "csv", "html")
COST_TITLES = {
    "params": "params",
    "flops_per_image": "FLOPs/img",
    "train_images_per_s": "img/s",
    "wall_time_s": "time",
}
UNIT_PREFIXES = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))
MISSING = "-"
# What can start Markdown syntax inside a heading or table cell (CommonMark and GitHub's GFM:
# escapes, code, emphasis, links and images, HTML and entities, cell separators, a heading's
# closing #s, strikethrough, math). ``_`` between two letters or digits can neither open nor
# close emphasis, so ``small_cnn`` stays as it is. Hand-written: markdown-it-py parses Markdown
# but writes none.
MD_SPECIAL = re.compile(r"[\\`*\[\]<>&|#~$!]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
MD_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # a newline would end the heading or the row


def decimals(metric: str) -> int:
    """Decimals of a metric: 4 for SSIM-like values in [0, 1], 2 for percent and dB.

    >>> decimals("test/ssim"), decimals("test/baseline_ssim"), decimals("test/psnr")
    (4, 4, 2)
    """
    return 4 if "ssim" in metric.rsplit("/", 1)[-1] else 2


def column_title(metric: str) -> str:
    """A metric's column title: the key without its ``test/`` stage."""
    return metric.removeprefix("test/")


def format_number(value: float, digits: int) -> str:
    return "nan" if math.isnan(value) else f"{value:.{digits}f}"


def format_stat(stat: Stat, digits: int, n: int) -> str:
    """``mean ± std``; the mean alone for one run; ``(k/n)`` when only k of the row's n runs
    recorded the metric; ``-`` when none did.

    >>> format_stat(Stat(12.0, 2.0, 3), 2, 3), format_stat(Stat(0.91234, None, 1), 4, 2)
    ('12.00 ± 2.00', '0.9123 (1/2)')
    """
    if stat.mean is None:
        return MISSING
    text = format_number(stat.mean, digits)
    if stat.std is not None:
        text += f" ± {format_number(stat.std, digits)}"
    if stat.count < n:
        text += f" ({stat.count}/{n})"
    return text


def format_si(value: float | None) -> str:
    """A count with 3 significant digits and a unit prefix.

    >>> format_si(11_689_512), format_si(1.8186e9), format_si(999_960), format_si(512)
    ('11.7M', '1.82G', '1M', '512')
    """
    if value is None:
        return MISSING
    if math.isnan(value):
        return "nan"
    rounded = float(f"{value:.3g}")
    for scale, prefix in UNIT_PREFIXES:
        if abs(rounded) >= scale:
            return f"{rounded / scale:.3g}{prefix}"
    return f"{rounded:.3g}"


def format_cost(name: str, stat: Stat) -> str:
    """A cost cell: the mean over the row's runs (params and FLOPs are the same for every seed;
    throughput varies and is rounded to whole images per second)."""
    if stat.mean is None:
        return MISSING
    if name == "train_images_per_s":
        return "nan" if math.isnan(stat.mean) else str(round(stat.mean))
    if name == "wall_time_s":
        return format_duration(stat.mean)
    return format_si(stat.mean)


def format_duration(seconds: float) -> str:
    """A run's wall time, to the second.

    >>> format_duration(77.4), format_duration(9.6), format_duration(3725)
    ('1 min 17 s', '10 s', '62 min 5 s')
    """
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


def cells(table: Table, row: Row) -> list[str]:
    """The formatted cells of ``row`` after its rank and label: metrics, n, costs."""
    metrics = [format_stat(row.metrics[c], decimals(c), row.n) for c in table.columns]
    return [*metrics, str(row.n), *(format_cost(c, row.costs[c]) for c in COSTS)]


def headers(table: Table) -> list[str]:
    return [
        "#",
        "experiment",
        "model",
        *(column_title(c) for c in table.columns),
        "n",
        *(COST_TITLES[c] for c in COSTS),
    ]


def caption(table: Table) -> str:
    """What the numbers are, under a table's title."""
    better = "lower" if table.direction == "min" else "higher"
    return (
        f"Sorted by {table.primary} ({better} is better). Metrics: mean ± sample std over the "
        f"n completed runs (seeds). FLOPs/img: FLOPs per image (a multiply-add counts 2); "
        f"img/s: training throughput; time: wall time of a run (mean)."
    )


def left_out_note(table: Table) -> str:
    """``Left out: 2 failed, 1 running, 1 repeated run(s).``, or empty when nothing was."""
    if not table.left_out:
        return ""
    counts = ", ".join(f"{count} {status}" for status, count in table.left_out.items())
    return f"Left out: {counts} run(s)."


def md_text(text: str) -> str:
    """``text`` as literal Markdown in a heading or a table cell: the characters that start
    Markdown syntax backslash-escaped, control characters (newlines) as spaces.

    >>> print(md_text("voc|*2012* [x](y) small_cnn _a_"))
    voc\\|\\*2012\\* \\[x\\](y) small_cnn \\_a\\_
    """
    return MD_SPECIAL.sub(lambda m: "\\" + m.group(), MD_CONTROL.sub(" ", text))


def md_code(text: str) -> str:
    """``text`` as a Markdown code span in a table cell, whatever backticks it holds: a fence
    one backtick longer than its longest run of them, padded with a space where it begins or
    ends with a backtick or a space (CommonMark strips one such space from each side), and
    ``|`` escaped for the table (GFM unescapes it inside code spans too).

    >>> print(md_code("exp"), md_code("a`b"), md_code("`x``"), md_code("p|q"))
    `exp` ``a`b`` ``` `x`` ``` `p\\|q`
    """
    text = MD_CONTROL.sub(" ", text)
    fence = "`" * (max(map(len, re.findall("`+", text)), default=0) + 1)
    pad = " " if text.strip(" ") and re.search(r"^[` ]|[` ]$", text) else ""
    return f"{fence}{pad}{text}{pad}{fence}".replace("|", "\\|")


def markdown_table(table: Table) -> str:
    """One table: a ``###`` title, the caption, the table and what was left out."""
    head = headers(table)
    align = ["--:", ":--", ":--", *("--:" for _ in head[3:])]
    lines = [f"### {md_text(table.title)}", "", md_text(caption(table)), ""]
    lines.append("| " + " | ".join(map(md_text, head)) + " |")
    lines.append("|" + "|".join(align) + "|")
    for rank, row in enumerate(table.rows, 1):
        label = " ".join(md_code(text) for text in (row.experiment, *row.distinct))
        line = [str(rank), label, md_text(row.model or MISSING), *cells(table, row)]
        lines.append("| " + " | ".join(line) + " |")
    if not table.rows:
        lines.append("| " + " | ".join(["-", "(no completed run)", *("" for _ in head[2:])]) + " |")
    note = left_out_note(table)
    if note:
        lines += ["", note]
    return "\n".join(lines)


def markdown(tables: Sequence[Table]) -> str:
    """All tables as Markdown, separated by blank lines, ending with a newline."""
    return "\n\n".join(markdown_table(t) for t in tables) + "\n"


def csv_text(tables: Sequence[Table]) -> str:
    """All rows of all tables as one CSV: task, dataset, judge, rank, experiment, model, variant, n,
    seeds, run ids, ``<metric>_mean`` / ``<metric>_std`` per metric of any table (blank where a
    table has no such column), the costs and the left-out counts of the row's table."""
    metrics = list(dict.fromkeys(c for t in tables for c in t.columns))
    statuses = sorted({s for t in tables for s in t.left_out})
    fields = ["task", "dataset", "judge", "rank", "experiment", "model", "variant", "n", "seeds"]
    fields += ["run_ids", *(f"{m}_{s}" for m in metrics for s in ("mean", "std")), *COSTS]
    fields += [f"left_out_{s}" for s in statuses]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for table in tables:
        for rank, row in enumerate(table.rows, 1):
            out = {
                "task": table.task,
                "dataset": table.dataset or "",
                "judge": table.judge or "",
                "rank": rank,
                "experiment": row.experiment,
                "model": row.model or "",
                "variant": " ".join(row.variant),
                "n": row.n,
                "seeds": " ".join("" if s is None else str(s) for s in row.seeds),
                "run_ids": " ".join(row.run_ids),
            }
            for metric, stat in row.metrics.items():
                out[f"{metric}_mean"] = _csv_value(stat.mean)
                out[f"{metric}_std"] = _csv_value(stat.std)
            out |= {c: _csv_value(row.costs[c].mean) for c in COSTS}
            out |= {f"left_out_{s}": table.left_out.get(s, 0) for s in statuses}
            writer.writerow(out)
    return buffer.getvalue()


def _csv_value(value: float | None) -> str:
    """Blank for None, an integer without ``.0``, else the float's shortest exact text."""
    if value is None:
        return ""
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
