"""A user's own config folder, added to Hydra's search path by ``--config-dir DIR`` or
``hydra.searchpath=[file://DIR]``: its experiments compose with cvbench's tree, and the
pre-check of ``group=option`` overrides knows its options."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import run_cli

from cvbench.cli.groups import hydra_arguments, invalid_choices, search_dir
from cvbench.cli.main import main
from cvbench.conf import CONF_DIR

EXPERIMENT = """\
# @package _global_
defaults:
  - override /data: classification/digits
  - override /model: classification/small_cnn

run_name: mine_digits
seed: 7
"""


def user_folder(root: Path) -> Path:
    """``root/my_conf`` holding ``experiment/mine.yaml`` and ``experiment/team/other.yaml``."""
    folder = root / "my_conf"
    (folder / "experiment" / "team").mkdir(parents=True)
    (folder / "experiment" / "mine.yaml").write_text(EXPERIMENT)
    (folder / "experiment" / "team" / "other.yaml").write_text(EXPERIMENT)
    return folder


def test_hydra_arguments_find_the_user_folders(tmp_path: Path) -> None:
    folder = str(tmp_path)
    assert hydra_arguments(["--config-dir", folder, "experiment=x", "-m"]) == (
        ["experiment=x"],
        [tmp_path],
    )
    assert hydra_arguments([f"-cd={folder}", "seed=1"]) == (["seed=1"], [tmp_path])
    searchpath = f"hydra.searchpath=[file://{folder},pkg://cvbench.conf]"
    assert hydra_arguments([searchpath, "seed=1"]) == ([searchpath, "seed=1"], [tmp_path, CONF_DIR])
    assert hydra_arguments(["--no-such-flag"]) is None  # Hydra reports it
    assert search_dir("pkg://no_such_package.conf") is None


def test_options_are_the_union_of_the_folders(tmp_path: Path) -> None:
    folder = user_folder(tmp_path)
    dirs = [CONF_DIR, folder]
    assert invalid_choices(["experiment=mine", "experiment=team/other"], dirs) == []
    assert invalid_choices(["experiment=classification/digits_small_cnn"], dirs) == []
    assert invalid_choices(["experiment=mine"], [CONF_DIR]) != []
    [message] = invalid_choices(["experiment=mien"], dirs)
    assert message.startswith(
        f"no option 'mien' in config group 'experiment' (in {CONF_DIR} or {folder}). Valid:\n"
    )
    assert "\n  experiment=mine\n" in message and message.endswith("\n  experiment=team/other")


@pytest.mark.parametrize("how", ["config_dir", "searchpath"])
def test_a_wrong_option_lists_the_user_ones(tmp_path: Path, capsys, how: str) -> None:
    folder = user_folder(tmp_path)
    added = ["--config-dir", str(folder)] if how == "config_dir" else [
        f"hydra.searchpath=[file://{folder}]"
    ]  # fmt: skip
    with pytest.raises(SystemExit) as info:
        main(["train", *added, "experiment=mien"])
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: no option 'mien' in config group 'experiment'")
    assert "  experiment=mine\n" in err


@pytest.mark.slow
def test_train_an_experiment_from_a_user_folder(tmp_path: Path) -> None:
    """``cvbench train --config-dir DIR experiment=mine``, as a process, from another folder;
    then the same experiment through ``hydra.searchpath`` composes the same config."""
    folder = user_folder(tmp_path)
    run_dir = tmp_path / "run"
    done = run_cli(
        "train",
        "--config-dir",
        str(folder),
        "experiment=mine",
        "trainer.max_epochs=1",
        "debug=limit",
        "++callbacks.progress_bar=null",
        f"paths.results_db={tmp_path / 'cvbench.db'}",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["run_name"] == "mine_digits" and config["seed"] == 7
    assert config["trainer"]["max_epochs"] == 1
    assert config["data"]["name"] == "digits"
    assert "test/top1_error" in json.loads((run_dir / "metrics.json").read_text())

    composed = run_cli(
        "train", f"hydra.searchpath=[file://{folder}]", "experiment=mine", "--cfg", "job",
        cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert composed.returncode == 0, composed.stderr[-3000:]
    job = yaml.safe_load(composed.stdout)
    assert job["run_name"] == "mine_digits" and job["seed"] == 7
