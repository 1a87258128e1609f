"""The composed config's value types are checked before anything is built
(:mod:`cvbench.run.config_types`): a wrong-typed value is one error line naming the key, the
value and the expected type, and nothing is trained; every config of the tree passes."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CONF, HELPERS, options, run_cli
from omegaconf import OmegaConf

from cvbench.run.config_types import ConfigTypeError, check_config_types, describe

# Each model with the data config of its contract and the task of its folder (model/instance/
# is task=instance_segmentation).
CONTRACTS = {m: OmegaConf.load(CONF / "model" / f"{m}.yaml").contract for m in options("model")}
MODEL_DATA = {m: contract.data for m, contract in CONTRACTS.items()}
TASKS = options("task")


def model_run(model: str) -> list[str]:
    """The overrides that compose a run of ``model``: the task its contract names, else the
    one task of its folder."""
    folder = model.split("/")[0]
    task = CONTRACTS[model].get("task")
    if task is None:
        (task,) = [t for t in TASKS if t.startswith(folder)]
    return [f"task={task}", f"data={MODEL_DATA[model]}", f"model={model}"]


@pytest.mark.parametrize("experiment", options("experiment"))
def test_every_experiment_passes(make_cfg, experiment: str) -> None:
    check_config_types(make_cfg(f"experiment={experiment}"))


@pytest.mark.parametrize("model", sorted(MODEL_DATA))
def test_every_model_passes_with_its_data(make_cfg, model: str) -> None:
    check_config_types(make_cfg(*model_run(model)))


def data_batch(data: str) -> str:
    """The batch type a data option's contract names."""
    contract = OmegaConf.load(CONF / "data" / f"{data}.yaml").get("contract") or {}
    return str(contract.get("batch"))


def data_run(data: str) -> list[str]:
    """The overrides that compose a run of ``data``: with the model whose contract reads it,
    else with the first model of its folder whose contract reads data of the same batch type,
    else with the first model of its folder."""
    folder = data.split("/")[0]
    same_folder = [m for m, d in MODEL_DATA.items() if d.split("/")[0] == folder]
    models = [m for m, d in MODEL_DATA.items() if d == data]
    models += [m for m in same_folder if data_batch(MODEL_DATA[m]) == data_batch(data)]
    models += same_folder
    return [*model_run(models[0]), f"data={data}"]


@pytest.mark.parametrize("data", options("data"))
def test_every_data_option_passes(make_cfg, data: str) -> None:
    """An option's required values (``???``, such as image_folder's ``num_classes``) are its
    only problems, each named."""
    try:
        check_config_types(make_cfg(*data_run(data)))
    except ConfigTypeError as err:
        for problem in str(err).split("; "):
            assert ": no value given (???): expected " in problem, problem


@pytest.mark.parametrize("group", ["optim", "sched", "trainer", "callbacks", "logger", "debug"])
def test_every_option_of_the_shared_groups_passes(make_cfg, group: str) -> None:
    for option in options(group):
        check_config_types(make_cfg(f"{group}={option}"))


def test_eval_config_passes(make_cfg, tmp_path: Path) -> None:
    check_config_types(make_cfg(f"ckpt_path={tmp_path / 'last.ckpt'}", name="eval"))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "trainer.max_epochs=abc",
            "config key trainer.max_epochs='abc': expected int or None "
            "(pytorch_lightning.Trainer(max_epochs))",
        ),
        (
            "optim.lr=abc",
            "config key optim.lr='abc': expected float or Tensor (torch.optim.AdamW(lr))",
        ),
        ("seed=abc", "config key seed='abc': expected int in [0, 4294967295] or None"),
        ("seed=-1", "config key seed=-1: expected int in [0, 4294967295] or None"),
        ("train=yes", "config key train='yes': expected bool"),
        ("trainer.max_epochs=2.5", "config key trainer.max_epochs=2.5: expected int or None"),
        # lax pydantic would read "8" as 8; the datamodule would get the string
        ('data.batch_size="8"', "config key data.batch_size='8': expected int"),
        (
            "+trainer.max_epoch=3",
            "config key trainer.max_epoch: pytorch_lightning.Trainer takes no argument "
            "'max_epoch' (did you mean 'max_epochs'?)",
        ),
        (
            "sched.scheduler.T_max=${trainer.nope}",
            "config key sched.scheduler.T_max: its interpolation cannot be resolved: "
            "Interpolation key 'trainer.nope' not found",
        ),
    ],
)
def test_wrong_value_is_named(make_cfg, override: str, message: str) -> None:
    with pytest.raises(ConfigTypeError) as caught:
        check_config_types(make_cfg(override))
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_a_required_value_left_out_is_named(make_cfg) -> None:
    with pytest.raises(ConfigTypeError) as caught:
        check_config_types(make_cfg("data=classification/image_folder"))
    assert str(caught.value).startswith("config key data.num_classes: no value given (???)")


def test_a_reference_to_a_wrong_key_is_not_named_twice(make_cfg) -> None:
    """``sched.scheduler.T_max: ${trainer.max_epochs}`` gets the same bad value: the line
    names only the key to fix."""
    cfg = make_cfg("trainer.max_epochs=abc")
    assert cfg.sched.scheduler.T_max == "abc"
    with pytest.raises(ConfigTypeError) as caught:
        check_config_types(cfg)
    assert "T_max" not in str(caught.value)


def test_several_problems_are_one_line(make_cfg) -> None:
    with pytest.raises(ConfigTypeError) as caught:
        check_config_types(make_cfg("optim.lr=abc", "seed=abc"))
    assert str(caught.value).count("config key ") == 2 and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "overrides",
    [
        ["optim.lr=1"],  # an int is a valid float
        ["trainer.precision=16-mixed", "trainer.devices=[0]", "+trainer.max_steps=-1"],
        ["seed=null", "run_name=2024", "run_id=17"],
        ["data.records.val_fraction=0"],
        # the command line reads 2012 as an int; the reader formats it into VOC{year}
        [*data_run("detection/voc"), "data.records.year=2012"],
        # torchvision takes a weights enum by its name
        [*model_run("segmentation/deeplabv3_resnet50"), "model.weights=DEFAULT"],
    ],
)
def test_valid_values_pass(make_cfg, overrides: list[str]) -> None:
    check_config_types(make_cfg(*overrides))


def test_describe() -> None:
    from collections.abc import Mapping
    from typing import Literal

    assert describe(int | None) == "int or None"
    assert describe(Mapping[str, str] | None) == "Mapping[str, str] or None"
    assert describe(Literal[1, "a"] | Literal["b"] | None) == "one of 1, 'a', 'b' or None"


def _nothing_trained(root: Path) -> None:
    assert not list(root.rglob("*.ckpt")), "a checkpoint was written"
    assert not list(root.rglob("metrics.json")), "the run was completed"
    assert not list(root.rglob("config.yaml")) or all(
        p.parent.name == ".hydra" for p in root.rglob("config.yaml")
    ), "the run was started"


def _one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr[-3000:]
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, stderr[-3000:]
    return lines[0]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("trainer.max_epochs=abc", "config key trainer.max_epochs='abc': expected int or None"),
        ("optim.lr=abc", "config key optim.lr='abc': expected float"),
        ("seed=abc", "config key seed='abc': expected int"),
    ],
)
def test_cli_refuses_a_wrong_type_before_training(tmp_path: Path, override: str, key: str) -> None:
    """`cvbench train <key>=abc`: exit 1, one line naming the key, nothing trained. The old code
    built the run and failed with a traceback (max_epochs: an AssertionError in Lightning's
    loop; lr: a TypeError in AdamW) or with a line naming no key (seed: "invalid literal for
    int() with base 10: 'abc'")."""
    done = run_cli(
        "train",
        override,
        "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=2",
        f"paths.root_dir={tmp_path}",
        f"hydra.run.dir={tmp_path / 'run'}",
        cwd=tmp_path,
    )
    assert done.returncode == 1, done.stderr[-3000:]
    assert key in _one_error_line(done.stderr)
    _nothing_trained(tmp_path)


@pytest.mark.slow
def test_cli_dict_the_shell_split_is_named(tmp_path: Path) -> None:
    """``data.split_names={val:valid,test:valid}`` typed unquoted: bash expands the braces into
    two overrides, the last gives the string 'test:valid'. The old code failed in the
    datamodule with "dictionary update sequence element #0", naming no key."""
    command = " ".join(
        [
            shlex.quote(sys.executable),
            "-m cvbench train experiment=repro/edsr_x2_set5 trainer=cpu",
            f"paths.root_dir={shlex.quote(str(tmp_path))}",
            f"hydra.run.dir={shlex.quote(str(tmp_path / 'run'))}",
            "data.split_names={val:valid,test:valid}",  # unquoted on purpose
        ]
    )
    done = subprocess.run(
        ["bash", "-c", command],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(HELPERS)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 1, done.stderr[-3000:]
    line = _one_error_line(done.stderr)
    assert "config key data.split_names='test:valid': expected Mapping[str, str] or None" in line
    assert "dictionary update sequence" not in line
    _nothing_trained(tmp_path)
