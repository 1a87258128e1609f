"""The leaderboard's HTML page rendered by headless Chromium (``chromium --headless
--dump-dom``): the tables and their rows are in the DOM, the URL hash sorts a table by any
column with the page's own script, and the page loads nothing from elsewhere.

Without Chromium the browser tests are skipped, except in CI (``CI`` set), where they fail:
``.ci/run`` installs Debian's ``chromium``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

from cvbench.bench.render_html import html_page
from cvbench.bench.tables import build_tables
from cvbench.cli import leaderboard as cli
from cvbench.store.database import ResultsStore
from cvbench.store.record import RunRecord

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
# experiment: (top1_error per seed, params, train images/s). Best error: b, c, a, d; most
# params: c, a, b (d records none); fastest: a, b, c.
CLASSIFICATION = {
    "classification/a": ([9.0, 11.0], 21_000_000, 900.0),
    "classification/b": ([4.0, 5.0], 500_000, 400.0),
    "classification/c": ([6.0], 60_000_000, 100.0),
    "classification/d": ([30.0], None, None),
}


def browser() -> str:
    """The Chromium executable; skips the test when there is none, unless in CI."""
    found = next((path for name in BROWSERS if (path := shutil.which(name))), None)
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("no chromium in CI: .ci/run installs Debian's chromium package")
    pytest.skip("chromium is not installed (apt-get install chromium); CI always runs this test")


def dump_dom(page: Path, fragment: str, profile: Path) -> str:
    """The DOM of ``page#fragment`` after its scripts ran, as headless Chromium serializes it."""
    done = subprocess.run(
        [
            browser(),
            "--headless",
            "--no-sandbox",  # needed as root (CI containers)
            "--disable-gpu",
            f"--user-data-dir={profile}",
            "--dump-dom",
            page.resolve().as_uri() + fragment,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "<table" in done.stdout, done.stderr[-2000:]
    return done.stdout


class Tables(HTMLParser):
    """Per ``data-table``: the ``data-value`` of each body row's experiment cell, in DOM order,
    and the header sorted (``aria-sort``), as ``(data-key, direction)``."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.rows: dict[str, list[str]] = {}
        self.sorted: dict[str, tuple[str, str]] = {}
        self._table: str | None = None
        self._cell = 0
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table" and "leaderboard" in (a.get("class") or ""):
            self._table = a["data-table"]
            self.rows[self._table] = []
        elif self._table and tag == "th" and a.get("aria-sort"):
            self.sorted[self._table] = (a["data-key"], a["aria-sort"])
        elif self._table and tag == "tr":
            self._cell = 0
        elif self._table and tag == "td":
            self._cell += 1
            if self._cell == 2:  # the experiment column
                self.rows[self._table].append(a["data-value"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None


def record(
    store: ResultsStore,
    run_id: str,
    experiment: str,
    top1: float,
    seed: int,
    params: int | None,
    speed: float | None,
    task: str = "classification",
) -> None:
    """Record one completed run of ``task`` on digits with its primary metric = ``top1``."""
    primary = "test/top1_error" if task == "classification" else "test/miou"
    direction = "min" if task == "classification" else "max"
    store.start(
        RunRecord(run_id=run_id, run_name=run_id, experiment=experiment, task=task,
                  dataset="digits", model=f"{task}/net", seed=seed, primary_metric=primary,
                  direction=direction, config={"task": {"leaderboard": [primary]}})
    )  # fmt: skip
    store.end(run_id, "completed", metrics={primary: top1}, params=params,
              train_images_per_s=speed, flops_per_image=2e6)  # fmt: skip


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Path]:
    """A page written by ``cvbench leaderboard format=html``: classification (4 rows, one
    failed run left out) and segmentation (2 rows) on digits."""
    with ResultsStore(tmp_path / "cvbench.db") as store:
        for experiment, (errors, params, speed) in CLASSIFICATION.items():
            for seed, error in enumerate(errors):
                record(store, f"{experiment[-1]}{seed}", experiment, error, seed, params, speed)
        store.start(RunRecord(run_id="dead", run_name="dead", task="classification",
                              dataset="digits", experiment="classification/dead"))  # fmt: skip
        store.end("dead", "failed", error="RuntimeError: boom")
        for name, miou in (("segmentation/x", 40.0), ("segmentation/y", 55.0)):
            record(store, name, name, miou, 0, 1000, 10.0, task="segmentation")
    out = tmp_path / "site" / "leaderboard.html"
    cli.main([f"db={tmp_path / 'cvbench.db'}", "format=html", f"out={out}"])
    yield out


@pytest.mark.slow
def test_tables_rows_and_plots_are_in_the_rendered_dom(page: Path, tmp_path: Path) -> None:
    dom = dump_dom(page, "", tmp_path / "profile")
    tables = Tables(dom)
    assert tables.rows == {
        "classification-digits": [f"classification/{x}" for x in "bcad"],  # by top1_error
        "segmentation-digits": ["segmentation/y", "segmentation/x"],  # by miou, higher first
    }
    assert tables.sorted == {}
    assert "Left out: 1 failed run(s)." in dom and "classification/dead" not in dom
    assert "4.50 ± 0.71" in dom  # b: mean and sample std of 4.0 and 5.0
    for slug in ("classification-digits", "segmentation-digits"):
        section = dom[dom.index(f'<section id="{slug}"') :]
        section = section[: section.index("</section>")]
        assert section.count("<svg") == 2  # primary metric vs params and vs throughput


@pytest.mark.slow
@pytest.mark.parametrize(
    ("column", "order"),
    [
        ("params", "bacd"),  # d records no params: last
        ("train_images_per_s:desc", "abcd"),
        ("test/top1_error:desc", "dacb"),
        ("experiment:desc", "dcba"),
        ("rank", "bcad"),
    ],
)
def test_the_url_hash_sorts_a_table_in_the_browser(
    page: Path, tmp_path: Path, column: str, order: str
) -> None:
    fragment = f"#sort=classification-digits:{column}"
    tables = Tables(dump_dom(page, fragment, tmp_path / "profile"))
    assert tables.rows["classification-digits"] == [f"classification/{x}" for x in order]
    key, _, direction = column.partition(":")
    expected = (key, "descending" if direction == "desc" else "ascending")
    assert tables.sorted == {"classification-digits": expected}
    assert tables.rows["segmentation-digits"] == ["segmentation/y", "segmentation/x"]


def test_the_page_is_self_contained(page: Path) -> None:
    text = page.read_text()
    assert not re.search(r"<(link|img|iframe)\b|\bsrc=|@import|url\((?!#)", text)  # url(#id): SVG
    assert not re.search(r"https?://(?!www\.w3\.org/)", text)  # only the SVG / XLink namespaces
    assert text.count("<svg") == 4 and text.count("<script>") == 1


def test_a_table_without_costs_says_there_is_no_plot(tmp_path: Path) -> None:
    with ResultsStore(tmp_path / "cvbench.db") as store:
        record(store, "r", "classification/a", 5.0, 0, None, None)
        text = html_page(build_tables(store.runs()))
    assert "No row records parameters: no plot." in text
    assert "No row records training throughput (img/s): no plot." in text
    assert "<svg" not in text


def test_the_page_is_the_same_for_the_same_runs(page: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.html"
    cli.main([f"db={tmp_path / 'cvbench.db'}", "format=html", f"out={again}"])
    assert again.read_text() == page.read_text()
