"""The shared ``key=value`` parser of the non-Hydra commands: typed values from Hydra's
override grammar, one-line errors naming the key, ``--help`` from the declarations."""

from __future__ import annotations

from pathlib import Path

import pytest

from cvbench.cli.options import (
    REQUIRED,
    Command,
    Setting,
    UsageError,
    help_text,
    old_form,
    parse,
)

DEMO = Command(
    "demo",
    "A demonstration command.",
    (
        Setting("name", "what to call it", str, REQUIRED),
        Setting("n", "how many", int, 3, minimum=1),
        Setting("ratio", "a fraction", float, 0.5),
        Setting("fast", "skip the slow part", bool, False),
        Setting("path", "where it goes", Path),
        Setting("tags", "which ones", list),
        Setting("mode", "how", str, "md", ("md", "csv")),
    ),
    examples=("demo name=x",),
    positional=("name",),
)


def test_values_are_typed_and_defaults_filled() -> None:
    argv = ["name=0012", "n=7", "ratio=1", "fast=true", "path=out/a b.json", "tags=a,b"]
    assert parse(DEMO, argv).values == {
        "name": "0012",  # as typed, not the integer 12
        "n": 7,
        "ratio": 1,
        "fast": True,
        "path": Path("out/a b.json"),
        "tags": ["a", "b"],
        "mode": "md",
    }
    values = parse(DEMO, ["name='1e3'", "tags=[x]", "mode=csv", "path=null"]).values
    assert values["name"] == "1e3" and values["tags"] == ["x"] and values["mode"] == "csv"
    assert values["path"] is None
    assert parse(DEMO, ["name=1e3", "tags="]).values["name"] == "1e3"
    assert parse(DEMO, ["name=x", "tags="]).values["tags"] is None  # empty: no filter


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["n=2"], "cvbench demo: name= is required: what to call it"),
        (["name=x", "n=0"], "cvbench demo: n must be an integer >= 1, got '0'"),
        (["name=x", "n=2.5"], "cvbench demo: n must be an integer >= 1, got '2.5'"),
        (["name=x", "ratio=half"], "cvbench demo: ratio must be a number, got 'half'"),
        (["name=x", "fast=1"], "cvbench demo: fast=1: expected true or false"),
        (["name=x", "mode=pdf"], "cvbench demo: mode=pdf is not one of md, csv"),
        (["name=x", "nn=2"], "cvbench demo: unknown setting 'nn' (did you mean n=?); valid: name="),
        (["name=x", "name=y"], "cvbench demo: name= is given twice"),
        (["name=a,b"], "cvbench demo: name=a,b: expected one value; quote a value with commas"),
        (["name=x", "n=range(1,3)"], "cvbench demo: n=range(1,3): expected one value, not a"),
        (["++name=x"], "cvbench demo: '++name=x': write name=... (no +, ++ or ~"),
        (["name=x", "a=b=c"], "cvbench demo: cannot read 'a=b=c'"),
        (
            ["x"],
            "cvbench demo takes key=value settings only, not positional argument 'x'; "
            "write: cvbench demo name=x (cvbench demo --help)",
        ),  # fmt: skip
        (["--n", "3", "--fast"], "not '--n'; write: cvbench demo n=3 fast=true"),
    ],
)
def test_errors_name_the_key_and_what_was_expected(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError) as info:
        parse(DEMO, argv)
    assert message in str(info.value), str(info.value)
    assert "\n" not in str(info.value)


def test_undeclared_keys_pass_on_as_overrides_when_the_command_takes_them() -> None:
    command = Command("run", "Run.", (Setting("db", "store", Path),), overrides="any override")
    parsed = parse(command, ["db=x.db", "trainer.devices=4", "+a.b=1", "~c", "data=x/y"])
    assert parsed.values == {"db": Path("x.db")}
    assert parsed.overrides == ["trainer.devices=4", "+a.b=1", "~c", "data=x/y"]


def test_help_lists_every_setting_with_its_default() -> None:
    text = help_text(DEMO)
    assert text.startswith(
        "usage: cvbench demo name=VALUE [n=INT] [ratio=FLOAT] [fast=true|false] [path=PATH] "
        "[tags=A,B]\n        [mode=md|csv]\n\nA demonstration command.\n"
    )
    for line in (
        "  name=VALUE       what to call it (required)",
        "  n=INT            how many (default: 3)",
        "  fast=true|false  skip the slow part (default: false)",
        "  mode=md|csv      how (default: md)",
        "  cvbench demo name=x",
    ):
        assert line in text.splitlines(), line


def test_old_form_quotes_what_the_shell_and_hydra_need() -> None:
    shown = old_form(DEMO, ["my name", "--path", "a,b"])
    assert shown == "cvbench demo \"name='my name'\" \"path='a,b'\""
    assert old_form(DEMO, ["--tags=x", "--n", "-1"]) == "cvbench demo tags=x n=-1"
