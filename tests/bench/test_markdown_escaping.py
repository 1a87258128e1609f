"""The Markdown leaderboard shows dataset, model and run names as they are: parsed back by a
CommonMark parser with GFM's tables and strikethrough (markdown-it-py), the heading's text is
the table's title and a row's code span is the run's name, whatever Markdown characters or
backticks they hold; nothing becomes a link, HTML, emphasis or a second heading."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_leaderboard import add_run

from cvbench.bench.leaderboard import leaderboard_text
from cvbench.store.database import ResultsStore

markdown_it = pytest.importorskip("markdown_it")

HOSTILE = [
    "voc*2012*",
    "a|b",
    "[click](https://example.com)",
    "<img src=x onerror=alert(1)>",
    "ade # 20k ##",
    "&amp; &#42;",
    "back\\slash\\|pipe",
    "`tick` ``two``",
    "$x^2$ ~~gone~~",
    "_under_ __init__ small_cnn",
    "![img](x.png)",
]
CODE_NAMES = ["a`b", "``x", "y`", "`", "e`|`f", "plain", "p|q", "x\\|y", " spaced ` "]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ResultsStore]:
    with ResultsStore(tmp_path / "cvbench.db") as opened:
        yield opened


def parse(text: str) -> list:
    return markdown_it.MarkdownIt("commonmark").enable(["table", "strikethrough"]).parse(text)


def headings(tokens: list) -> list[tuple[str, list]]:
    """(tag, inline children) of every heading."""
    return [
        (token.tag, tokens[i + 1].children)
        for i, token in enumerate(tokens)
        if token.type == "heading_open"
    ]


def cells(tokens: list) -> list[list]:
    """The inline children of every body cell, row by row."""
    rows, row, in_body = [], None, False
    for i, token in enumerate(tokens):
        in_body = {"tbody_open": True, "tbody_close": False}.get(token.type, in_body)
        if in_body and token.type == "tr_open":
            row = []
            rows.append(row)
        if in_body and token.type == "td_open":
            row.append(tokens[i + 1].children)
    return rows


def plain_text(children: list) -> str:
    """The text of inline tokens that are plain text only (anything else fails the test)."""
    kinds = {child.type for child in children}
    assert kinds <= {"text"}, kinds
    return "".join(child.content for child in children)


@pytest.mark.parametrize("dataset", HOSTILE)
def test_dataset_name_is_the_heading_text(store: ResultsStore, dataset: str) -> None:
    add_run(store, "r", "classification/a", {"test/top1_error": 4.0}, dataset=dataset)
    (heading,) = headings(parse(leaderboard_text(store.runs())))
    assert heading[0] == "h3"
    assert plain_text(heading[1]) == f"classification · {dataset}"


def test_newline_in_a_dataset_name_starts_no_heading(store: ResultsStore) -> None:
    add_run(store, "r", "classification/a", {"test/top1_error": 4.0}, dataset="x\n# injected")
    (heading,) = headings(parse(leaderboard_text(store.runs())))
    assert heading[0] == "h3" and plain_text(heading[1]) == "classification · x # injected"


@pytest.mark.parametrize("model", ["m*x*|y", "<b>bold</b>", "[a](b)"])
def test_model_name_is_the_cell_text(store: ResultsStore, model: str) -> None:
    add_run(store, "r", "classification/a", {"test/top1_error": 4.0}, model=model)
    ((_, _, shown, *_),) = cells(parse(leaderboard_text(store.runs())))
    assert plain_text(shown) == model


def test_run_names_with_backticks_are_whole_code_spans(store: ResultsStore) -> None:
    for k, name in enumerate(CODE_NAMES):
        add_run(store, f"r{k}", name, {"test/top1_error": float(k)})
    rows = cells(parse(leaderboard_text(store.runs())))
    assert len(rows) == len(CODE_NAMES)  # no row split by a | in a name
    for (rank, label, *_), name in zip(rows, CODE_NAMES, strict=True):
        assert plain_text(rank) == str(CODE_NAMES.index(name) + 1)
        assert [(c.type, c.content) for c in label] == [("code_inline", name)]


def test_variant_overrides_are_code_spans_too(store: ResultsStore) -> None:
    for k, lr in enumerate(("0.1", "0.01`x")):
        add_run(store, f"r{k}", "exp", {"test/top1_error": float(k)}, overrides=(f"optim.lr={lr}",))
    rows = cells(parse(leaderboard_text(store.runs())))
    labels = [[(c.type, c.content) for c in label if c.type != "text"] for _, label, *_ in rows]
    assert labels == [
        [("code_inline", "exp"), ("code_inline", "optim.lr=0.1")],
        [("code_inline", "exp"), ("code_inline", "optim.lr=0.01`x")],
    ]
