"""The scorers of ``cvbench score``, one YAML each in the config group ``conf/score/``.

A scorer YAML names a scoring function (``_target_``) and lists its parameters with their
defaults (``???``: required). The command's settings come from there: the type from the
function's annotations (``Literal[...]`` gives the choices), the help from its docstring's
``Args:``. Adding a task's scorer is one YAML (and its function); nothing else lists them.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.utils import get_method
from omegaconf import OmegaConf

from cvbench.cli.groups import group_options
from cvbench.cli.options import REQUIRED, Setting
from cvbench.conf import CONF_DIR

GROUP = "score"
TYPES = (str, int, float, bool, Path)


@dataclass(frozen=True)
class Scorer:
    """One task's scorer: its YAML, function and settings.

    Attributes:
        task: the YAML's name (``task=`` of ``cvbench score``).
        function: the ``_target_``, called with the settings as keyword arguments.
        summary: the first paragraph of the function's docstring.
        settings: one per parameter, in the YAML's order.
    """

    task: str
    function: Callable[..., dict[str, Any]]
    summary: str
    settings: tuple[Setting, ...]


def tasks(conf_dir: Path = CONF_DIR) -> list[str]:
    """The tasks with a scorer: the options of the ``score`` group."""
    return group_options(conf_dir, GROUP)


def arg_docs(doc: str | None) -> dict[str, str]:
    """The ``Args:`` section of a Google-style docstring, one joined line per argument.

    >>> arg_docs('''Do it.
    ...
    ...     Args:
    ...         gt: ground-truth
    ...             file.
    ...         n: how many.
    ...
    ...     Returns:
    ...         x.
    ...     ''')
    {'gt': 'ground-truth file.', 'n': 'how many.'}
    """
    lines = inspect.cleandoc(doc or "").splitlines()
    if "Args:" not in lines:
        return {}
    docs: dict[str, str] = {}
    indent, name = None, None
    for line in lines[lines.index("Args:") + 1 :]:
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip())
        indent = depth if indent is None else indent
        if depth < indent:
            break
        if depth == indent:
            name, _, text = line.strip().partition(":")
            docs[name] = text.strip()
        elif name is not None:
            docs[name] += " " + line.strip()
    return {k: v.replace("``", "") for k, v in docs.items()}


def _setting(key: str, default: Any, hint: Any, help_: str, where: str) -> Setting:
    """A setting of type ``hint`` (``Literal[...]``: a ``str`` with choices)."""
    choices: tuple[Any, ...] = ()
    if typing.get_origin(hint) is typing.Literal:
        choices = typing.get_args(hint)
        hint = type(choices[0])
    if hint not in TYPES:
        raise TypeError(f"{where}: parameter {key} is annotated {hint!r}; expected one of {TYPES}")
    return Setting(key, help_, hint, default, choices=choices)


def load_scorer(task: str, conf_dir: Path = CONF_DIR) -> Scorer:
    """The scorer of ``conf_dir/score/<task>.yaml``.

    Raises:
        TypeError: the YAML and its function disagree (a key that is not a parameter, a
            parameter left out, one without a docstring entry or of another type).
    """
    path = conf_dir / GROUP / f"{task}.yaml"
    cfg = OmegaConf.load(path)
    function = get_method(cfg._target_)
    where = f"{path} (_target_: {cfg._target_})"
    parameters = inspect.signature(function).parameters
    keys = [k for k in cfg if k != "_target_"]
    if sorted(keys) != sorted(parameters):
        raise TypeError(
            f"{where}: keys {sorted(keys)} are not the function's parameters {sorted(parameters)}"
        )
    hints = typing.get_type_hints(function)
    docs = arg_docs(function.__doc__)
    settings = []
    for key in keys:
        if key not in docs:
            raise TypeError(f"{where}: parameter {key} has no entry in the docstring's Args")
        default = REQUIRED if OmegaConf.is_missing(cfg, key) else cfg[key]
        settings.append(_setting(key, default, hints[key], docs[key], where))
    summary = inspect.cleandoc(function.__doc__ or "").split("\n\n")[0]
    return Scorer(task, function, " ".join(summary.split()).replace("``", ""), tuple(settings))
