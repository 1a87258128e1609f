"""Every ``cvbench`` subcommand has ``--help`` and ``-h``, reads ``key=value`` only, and refuses
the old spellings with the new form; ``cvbench score``'s tasks are the YAMLs of
``conf/score/``."""

from __future__ import annotations

import inspect

import pytest
from conftest import run_in_process

from cvbench.cli.main import COMMANDS, HYDRA_COMMANDS
from cvbench.cli.options import REQUIRED
from cvbench.cli.scorers import arg_docs, load_scorer, tasks
from cvbench.conf import CONF_DIR


def run(capsys, monkeypatch, *argv: str) -> tuple[int, str, str]:
    """``cvbench <argv>`` in-process."""
    return run_in_process(capsys, monkeypatch, *argv)


@pytest.mark.parametrize("flag", ["--help", "-h"])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_help(capsys, monkeypatch, command: str, flag: str) -> None:
    code, out, err = run(capsys, monkeypatch, command, flag)
    assert code == 0, err
    if command in HYDRA_COMMANDS:
        assert "== Configuration groups ==" in out and "Powered by Hydra" in out
    else:
        assert out.startswith(f"usage: cvbench {command} ")
        assert "settings (key=value, Hydra's override syntax" in out


def test_top_level_help_lists_every_command(capsys, monkeypatch) -> None:
    _, out, _ = run(capsys, monkeypatch, "--help")
    for command in COMMANDS:
        assert f"\n  {command} " in out


def test_score_help_per_task(capsys, monkeypatch) -> None:
    _, out, _ = run(capsys, monkeypatch, "score", "--help")
    for task in tasks():
        inputs = "real=PATH fake=PATH" if task == "fid" else "gt=PATH pred=PATH"
        assert f"  cvbench score task={task} {inputs}" in out
    _, out, _ = run(capsys, monkeypatch, "score", "task=segmentation", "-h")
    assert out.startswith(
        "usage: cvbench score task=segmentation gt=PATH pred=PATH num_classes=INT"
    )
    assert "  ignore_index=INT " in out and "(default: 255)" in out


@pytest.mark.parametrize(
    ("argv", "new_form"),
    [
        (
            ["score", "--task", "detection", "--gt", "g.json", "--pred", "p.json"]
            + ["--iou-type", "segm"],
            "cvbench score task=detection gt=g.json pred=p.json iou_type=segm",
        ),
        (["compare", "run1", "sr/b", "db=x.db"], "cvbench compare a=run1 b=sr/b db=x.db"),
        (["leaderboard", "detection"], "cvbench leaderboard task=detection"),
        (
            ["reproduce", "edsr_x2_set5", "trainer.devices=4"],
            "cvbench reproduce recipe=edsr_x2_set5 trainer.devices=4",
        ),
    ],
)  # fmt: skip
def test_old_forms_are_refused_with_the_new_one(capsys, monkeypatch, argv, new_form) -> None:
    code, out, err = run(capsys, monkeypatch, *argv)
    assert code == 1 and out == ""
    assert err.startswith(f"error: cvbench {argv[0]} takes key=value settings only, not ")
    assert f"; write: {new_form} (cvbench {argv[0]} --help)\n" in err
    assert err.count("\n") == 1


def test_reproduce_listing_refuses_train_overrides(capsys, monkeypatch, tmp_path) -> None:
    code, _, err = run(capsys, monkeypatch, "reproduce", f"db={tmp_path / 'x.db'}", "seed=3")
    assert code == 1
    assert err == (
        "error: cvbench reproduce: 'seed=3' is not a setting of the listing (db=); train "
        "overrides go with a recipe: cvbench reproduce recipe=NAME seed=3\n"
    )


@pytest.mark.parametrize("task", tasks())
def test_every_scorer_yaml_matches_its_documented_function(task: str) -> None:
    """Each conf/score YAML lists exactly its function's parameters, each documented, with
    the function's own defaults (required ones as ???)."""
    scorer = load_scorer(task)
    parameters = inspect.signature(scorer.function).parameters
    assert [s.key for s in scorer.settings] == list(parameters)
    docs = arg_docs(scorer.function.__doc__)
    for setting in scorer.settings:
        assert setting.help == docs[setting.key] != ""
        default = parameters[setting.key].default
        assert setting.default == (REQUIRED if default is inspect.Parameter.empty else default)
    assert scorer.summary and scorer.function.__module__.startswith(
        ("cvbench.metrics", "cvbench.cli")
    )


def test_score_tasks_are_the_config_group() -> None:
    assert tasks() == sorted(p.stem for p in (CONF_DIR / "score").glob("*.yaml"))
    assert tasks() == [
        "classification",
        "detection",
        "fid",
        "ocr",
        "restoration",
        "segmentation",
        "text_detection",
    ]
