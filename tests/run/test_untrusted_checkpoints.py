"""A checkpoint from someone else is data: `cvbench eval` and resume never run code from it.

Each hostile checkpoint is built here from a real one: a pickle payload that would write a
marker file, a stored config that names a harmful ``_target_``, a file cut in half.
"""

from __future__ import annotations

import copy
import functools
import http.server
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
import yaml
from conftest import CONF, HELPERS, compose_config, options, run_cli
from omegaconf import OmegaConf

from cvbench.run.checkpoints import read_checkpoint
from cvbench.run.evaluate import OWN_KEYS, run_eval
from cvbench.run.stored_config import UntrustedConfig, check_stored_config, trusted_targets
from cvbench.run.train import run_train

TINY = (
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=2",
    "trainer.limit_test_batches=2",
)


class Payload:
    """Unpickled by an unrestricted unpickler, it writes ``marker`` (via ``builtins.exec``)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Callable, tuple[str]]:
        return exec, (f"open({str(self.marker)!r}, 'w').close()",)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The best checkpoint of a tiny real `cvbench train` run (digits, small_cnn)."""
    root = tmp_path_factory.mktemp("trained")
    run_train(compose_config("train", TINY, root / "run", root / "data"))
    return next((root / "run" / "checkpoints").glob("epoch_*.ckpt"))


def with_payload(real: Path, to: Path, marker: Path) -> Path:
    """``real``'s content plus an object whose unpickling writes ``marker``."""
    checkpoint = torch.load(real, map_location="cpu", weights_only=True)
    checkpoint["payload"] = Payload(marker)
    torch.save(checkpoint, to)
    return to


def with_stored_config(real: Path, to: Path, edit: Callable[[dict], None]) -> Path:
    """``real`` (no pickled objects) with its stored config changed by ``edit``."""
    checkpoint = torch.load(real, map_location="cpu", weights_only=True)
    edit(checkpoint["cvbench"]["config"])
    torch.save(checkpoint, to)
    return to


def truncated(real: Path, to: Path) -> Path:
    """The first half of ``real``: a copy cut short by a full disk."""
    data = real.read_bytes()
    to.write_bytes(data[: len(data) // 2])
    return to


def the_error_line(stderr: str) -> str:
    """The one ``error:`` line a user error prints, with no traceback."""
    assert "Traceback" not in stderr, stderr[-3000:]
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr[-3000:]
    return errors[0]


# ------------------------------------------------------------------- pickle payloads


@pytest.mark.slow
def test_cli_eval_refuses_a_pickle_payload(trained: Path, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    ckpt = with_payload(trained, tmp_path / "evil.ckpt", marker)
    done = run_cli("eval", f"ckpt_path={ckpt}", f"hydra.run.dir={tmp_path / 'eval'}", cwd=tmp_path)
    assert not marker.exists()  # checked first: the payload never ran
    assert done.returncode == 1
    line = the_error_line(done.stderr)
    assert f"ckpt_path={ckpt}: refused" in line and "builtins.exec" in line
    assert not (tmp_path / "eval" / "config.yaml").exists()


@pytest.mark.slow
def test_cli_resume_refuses_a_pickle_payload(trained: Path, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    ckpt = with_payload(trained, tmp_path / "evil.ckpt", marker)
    run_dir = tmp_path / "run"
    done = run_cli("train", *TINY, f"ckpt_path={ckpt}", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert not marker.exists()  # checked first: the payload never ran
    assert done.returncode == 1
    line = the_error_line(done.stderr)
    assert f"ckpt_path={ckpt}: refused" in line and "builtins.exec" in line
    assert not (run_dir / "config.yaml").exists()  # refused before the run started


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """A web server on the loopback interface serving ``tmp_path/www``; its base URL."""
    (tmp_path / "www").mkdir()
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "www")
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
def test_cli_resume_from_a_url_never_unpickles_code(
    trained: Path, tmp_path: Path, served: str
) -> None:
    """Lightning downloads a URL itself and, unless told, loads it with weights_only=False."""
    marker = tmp_path / "marker"
    with_payload(trained, tmp_path / "www" / "evil.ckpt", marker)
    url = f"{served}/evil.ckpt"
    done = run_cli(
        "train",
        *TINY,
        f"ckpt_path={url}",
        f"hydra.run.dir={tmp_path / 'run'}",
        cwd=tmp_path,
        env={"TORCH_HOME": str(tmp_path / "torch_home")},  # its download cache
    )
    assert not marker.exists()  # checked first: the payload never ran
    assert done.returncode == 1
    line = the_error_line(done.stderr)
    assert f"ckpt_path={url}: refused" in line


def test_read_checkpoint_refuses_a_payload_and_loads_a_real_one(
    trained: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    ckpt = with_payload(trained, tmp_path / "evil.ckpt", marker)
    with pytest.raises(ValueError, match=r"evil\.ckpt: refused: .*builtins\.exec"):
        read_checkpoint(ckpt)
    assert not marker.exists()
    checkpoint = read_checkpoint(trained)  # weights_only=True holds everything cvbench writes
    assert {"state_dict", "optimizer_states", "loops", "callbacks", "cvbench"} <= set(checkpoint)


# ------------------------------------------------------------ truncated checkpoints


@pytest.mark.slow
@pytest.mark.parametrize("command", ["eval", "train"], ids=["eval", "resume"])
def test_cli_truncated_checkpoint_is_one_line_naming_it(
    trained: Path, tmp_path: Path, command: str
) -> None:
    ckpt = truncated(trained, tmp_path / "cut.ckpt")
    extra = TINY if command == "train" else ()
    done = run_cli(
        command, *extra, f"ckpt_path={ckpt}", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path
    )
    assert done.returncode == 1
    line = the_error_line(done.stderr)
    assert f"ckpt_path={ckpt} is not a readable checkpoint (truncated or corrupt" in line


def test_empty_and_missing_checkpoints_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "empty.ckpt").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.ckpt is not a readable checkpoint"):
        read_checkpoint(tmp_path / "empty.ckpt")
    with pytest.raises(FileNotFoundError, match=r"nowhere\.ckpt: no such checkpoint file"):
        read_checkpoint(tmp_path / "nowhere.ckpt")


# ---------------------------------------------------- targets of the stored config


def _torch_load(config: dict, marker: Path, payload: Path) -> None:
    """The issue's case: a loadable checkpoint whose model is ``torch.load`` of a second file
    (with a pickle payload), weights_only=False: Hydra's blocklist lets it through."""
    config["model"] = {"_target_": "torch.load", "f": str(payload), "weights_only": False}


def _exec(config: dict, marker: Path, payload: Path) -> None:
    code = f"open({str(marker)!r}, 'w').close()"
    config["model"] = {"_target_": "builtins.exec", "_args_": [code]}


def _os_system(config: dict, marker: Path, payload: Path) -> None:
    config["data"] = {"_target_": "os.system", "_args_": [f"touch {marker}"]}


def _in_a_list(config: dict, marker: Path, payload: Path) -> None:
    transforms = config["data"]["transforms"]["train"]["transforms"]
    transforms[1] = {"_target_": "os.system", "_args_": [f"touch {marker}"]}


def _made_by_oc_create(config: dict, marker: Path, payload: Path) -> None:
    config["model"] = "${oc.create:{_target_: os.system, _args_: ['touch " + str(marker) + "']}}"


def _through_an_interpolation(config: dict, marker: Path, payload: Path) -> None:
    config["data"]["evil"] = "os.system"
    config["model"] = {"_target_": "${data.evil}", "_args_": [f"touch {marker}"]}


def _located_by_get_class(config: dict, marker: Path, payload: Path) -> None:
    # hydra.utils.get_class is in the tree (norm_layer of the detection models)
    config["model"]["norm_layer"] = {"_target_": "hydra.utils.get_class", "path": "os.system"}


def _not_a_string(config: dict, marker: Path, payload: Path) -> None:
    config["model"]["_target_"] = ["os.system"]


# case -> (how the error shows the key and target, how the stored config is changed)
HARMFUL: dict[str, tuple[str, Callable[[dict, Path, Path], None]]] = {
    "torch_load": ("model._target_=torch.load", _torch_load),
    "exec": ("model._target_=builtins.exec", _exec),
    "os_system": ("data._target_=os.system", _os_system),
    "in_a_list": ("data.transforms.train.transforms[1]._target_=os.system", _in_a_list),
    "made_by_oc_create": ("model._target_=os.system", _made_by_oc_create),
    "through_an_interpolation": ("model._target_=os.system", _through_an_interpolation),
    "located_by_get_class": (
        "model.norm_layer._target_=hydra.utils.get_class given 'os.system'",
        _located_by_get_class,
    ),
    "not_a_string": ("model._target_=['os.system']", _not_a_string),
}


@pytest.mark.parametrize("case", sorted(HARMFUL))
def test_eval_refuses_a_stored_target_outside_the_tree(
    trained: Path, make_cfg, tmp_path: Path, case: str
) -> None:
    marker = tmp_path / "marker"
    payload = with_payload(trained, tmp_path / "payload.ckpt", marker)
    shown, harm = HARMFUL[case]
    ckpt = with_stored_config(
        trained, tmp_path / "harmful.ckpt", lambda config: harm(config, marker, payload)
    )
    overrides = [f"ckpt_path={ckpt}"]
    with pytest.raises(UntrustedConfig) as refused:
        run_eval(make_cfg(*overrides, name="eval", run="eval"), overrides)
    assert not marker.exists()  # checked first: the payload never ran
    message = str(refused.value)
    assert message.startswith(f"ckpt_path={ckpt}: its stored config has {shown}")
    assert "refusing to run it" in message and "\n" not in message
    assert not (tmp_path / "eval" / "config.yaml").exists()  # nothing was built


def test_eval_refuses_a_resolver_that_reads_the_environment(
    trained: Path, make_cfg, tmp_path: Path
) -> None:
    ckpt = with_stored_config(
        trained,
        tmp_path / "env.ckpt",
        lambda config: config["data"].update(name="${oc.env:HOME}"),
    )
    overrides = [f"ckpt_path={ckpt}"]
    with pytest.raises(UntrustedConfig, match=r"data\.name=\$\{oc\.env:HOME\}.*resolver oc\.env"):
        run_eval(make_cfg(*overrides, name="eval", run="eval"), overrides)


@pytest.mark.slow
def test_cli_eval_refuses_the_issues_torch_load_target(trained: Path, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    payload = with_payload(trained, tmp_path / "payload.ckpt", marker)
    ckpt = with_stored_config(
        trained, tmp_path / "harmful.ckpt", lambda config: _torch_load(config, marker, payload)
    )
    done = run_cli("eval", f"ckpt_path={ckpt}", f"hydra.run.dir={tmp_path / 'eval'}", cwd=tmp_path)
    assert not marker.exists()  # checked first: the payload never ran
    assert done.returncode == 1
    line = the_error_line(done.stderr)
    assert line.startswith(
        f"error: ckpt_path={ckpt}: its stored config has model._target_=torch.load, which the "
        f"installed config tree does not build; refusing to run it"
    )


# ------------------------------------------------ what the user trusts still evaluates


@pytest.mark.slow
def test_normal_checkpoint_still_evaluates(trained: Path, make_cfg) -> None:
    overrides = [f"ckpt_path={trained}"]
    metrics = run_eval(make_cfg(*overrides, name="eval", run="eval"), overrides)
    assert 0 <= metrics["test/top1_error"] <= 100


@pytest.fixture
def helpers_importable() -> Iterator[None]:
    """tests/helpers (``diverging.DivergingLoss``) on sys.path, as the CLI tests have it."""
    sys.path.insert(0, str(HELPERS))
    try:
        yield
    finally:
        sys.path.remove(str(HELPERS))


@pytest.mark.slow
def test_targets_the_user_names_are_trusted(
    trained: Path, make_cfg, tmp_path: Path, helpers_importable: None
) -> None:
    """A target of the user's own (a --config-dir YAML, or given on the command line) runs."""
    target = "diverging.DivergingLoss"

    def own_loss(config: dict) -> None:
        config["task"]["module"]["loss"].update({"_target_": target, "finite_calls": 10**6})

    ckpt = with_stored_config(trained, tmp_path / "own.ckpt", own_loss)
    overrides = [f"ckpt_path={ckpt}"]
    with pytest.raises(UntrustedConfig, match=f"task.module.loss._target_={target}"):
        run_eval(make_cfg(*overrides, name="eval", run="refused"), overrides)

    own_tree = tmp_path / "my_conf" / "loss"
    own_tree.mkdir(parents=True)
    (own_tree / "diverging.yaml").write_text(f"_target_: {target}\nfinite_calls: 100\n")
    searchpath = f"hydra.searchpath=[file://{tmp_path / 'my_conf'}]"  # read from Hydra
    cfg = make_cfg(*overrides, searchpath, name="eval", run="with_config_dir")
    metrics = run_eval(cfg, [*overrides, searchpath])
    assert 0 <= metrics["test/top1_error"] <= 100

    overrides = [f"ckpt_path={ckpt}", f"task.module.loss._target_={target}"]
    metrics = run_eval(make_cfg(*overrides, name="eval", run="overridden"), overrides)
    assert 0 <= metrics["test/top1_error"] <= 100


def test_stored_config_check_sees_every_depth_of_a_real_config(trained: Path) -> None:
    """Every target of a real checkpoint's config (lists of transforms included) is one the
    tree builds: the check refuses nothing that cvbench itself wrote."""
    checkpoint = read_checkpoint(trained)
    config = copy.deepcopy(checkpoint["cvbench"]["config"])
    targets = []

    def collect(node: object) -> None:
        if isinstance(node, dict):
            if "_target_" in node:
                targets.append(node["_target_"])
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    collect(config)
    assert targets and set(targets) <= trusted_targets().targets


def _embedded(experiment: str) -> bool:
    """The experiment's data is shipped inside cvbench (its ``contract: embedded: true``)."""
    spec = yaml.safe_load((CONF / "experiment" / f"{experiment}.yaml").read_text())
    data = [d["override /data"] for d in spec.get("defaults", []) if "override /data" in d]
    if not data:
        return False
    contract = yaml.safe_load((CONF / "data" / f"{data[0]}.yaml").read_text()).get("contract")
    return bool((contract or {}).get("embedded"))


def one_experiment_per_task() -> list[str]:
    """One experiment on embedded data per task folder, from the config tree."""
    first: dict[str, str] = {}
    for experiment in filter(_embedded, options("experiment")):
        first.setdefault(experiment.split("/")[0], experiment)
    return sorted(first.values())


@pytest.mark.slow
@pytest.mark.parametrize("experiment", one_experiment_per_task())
def test_every_task_writes_checkpoints_that_load_weights_only(
    make_cfg, tmp_path: Path, experiment: str
) -> None:
    """What ``cvbench train`` puts in a checkpoint (callback states, loops, optimizers, the
    config) stays within what ``torch.load(weights_only=True)`` accepts, and its config
    builds only what the installed tree builds, for every task."""
    cfg = make_cfg(
        f"experiment={experiment}",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=1",
        "trainer.limit_val_batches=1",
        "trainer.num_sanity_val_steps=0",
        "test=false",
    )
    run_train(cfg)
    checkpoint = read_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")
    assert {"state_dict", "loops", "callbacks", "cvbench"} <= set(checkpoint)
    stored = OmegaConf.create(checkpoint["cvbench"]["config"])
    check_stored_config(stored, ckpt_path="last.ckpt", trusted=trusted_targets(), own_keys=OWN_KEYS)
