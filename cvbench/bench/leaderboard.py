"""``leaderboard_text``: the leaderboard of some runs as Markdown, CSV or an HTML page, what
``cvbench leaderboard`` prints and ``cvbench bench`` ends with. The tables are built in
:mod:`cvbench.bench.tables` and written by :mod:`cvbench.bench.render` (Markdown, CSV) and
:mod:`cvbench.bench.render_html`.
"""

from __future__ import annotations

from collections.abc import Iterable

from cvbench.bench.render import FORMATS, csv_text, markdown
from cvbench.bench.render_html import html_page
from cvbench.bench.tables import build_tables
from cvbench.store.record import RunRecord


def leaderboard_text(records: Iterable[RunRecord], fmt: str = "md") -> str:
    """The leaderboard of ``records`` as Markdown (``md``), CSV (``csv``) or a self-contained
    HTML page (``html``).

    Raises:
        ValueError: an unknown format.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown leaderboard format {fmt!r}; use one of {', '.join(FORMATS)}")
    tables = build_tables(records)
    if fmt == "html":
        return html_page(tables)
    return markdown(tables) if fmt == "md" else csv_text(tables)
