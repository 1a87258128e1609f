"""Check the types of a composed config before anything is built.

Every node with a ``_target_`` is checked against the type hints of what it names (the class's
``__init__``, followed through ``super().__init__(**kwargs)``; the function's signature), and
the entry config's own keys (``seed``, ``train``, ...) against :data:`ENTRY_KEYS`, with
pydantic (:func:`cvbench.run.type_hints.fits`). A ``_target_`` with a closed signature (no
``**kwargs``) is also checked for arguments it does not take.

What cannot be judged is skipped: a ``_target_`` that cannot be imported (Hydra reports it when
it builds the node), a hint that cannot be evaluated or names only classes, a value that is or
holds a ``_target_`` node (Hydra builds it first), a ``None`` given where the parameter's
default is ``None`` (``x: int = None`` is a common loose hint).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from typing import Annotated, Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException
from pydantic import Field

from cvbench.conf import CONTRACT_KEY, TARGET_KEY
from cvbench.run.type_hints import NO_DEFAULT, describe, fits, keyword_parameters

# Keys Hydra reads itself and never passes to the target.
HYDRA_KEYS = frozenset({"_target_", "_partial_", "_convert_", "_recursive_", "_args_"})
SEED_RANGE = (0, 2**32 - 1)  # what pytorch_lightning.seed_everything accepts (numpy's uint32)
ENTRY_KEYS: dict[str, Any] = {
    "run_name": str,
    "run_id": str | None,
    "seed": Annotated[int, Field(ge=SEED_RANGE[0], le=SEED_RANGE[1])] | None,
    "train": bool,
    "test": bool,
    "channels_last": bool,
    "ckpt_path": str | None,
    "optimized_metric": str | None,
}
"""The entry configs' (``train.yaml``, ``eval.yaml``) own keys and their types."""
ENTRY_TYPES = {"seed": f"int in [{SEED_RANGE[0]}, {SEED_RANGE[1]}] or None"}
"""How a message names the type of an entry key where :func:`describe` says too little."""


class ConfigTypeError(ValueError):
    """Values of the composed config that the objects it builds would not accept."""


class _Missing:
    """A ``???`` value (or an interpolation to one): an error only where it is passed."""

    def __repr__(self) -> str:
        return "???"


MISSING = _Missing()


def check_config_types(cfg: DictConfig) -> None:
    """Raise one :class:`ConfigTypeError` naming every key whose value has the wrong type.

    A key whose value is only a reference to another key (``T_max: ${trainer.max_epochs}``)
    is not named when that key is: the fix is there.

    Args:
        cfg: the composed config of a run (``train.yaml`` or ``eval.yaml``, with or without
            its ``hydra`` node).

    Raises:
        ConfigTypeError: ``config key trainer.max_epochs='abc': expected int or None
            (pytorch_lightning.Trainer(max_epochs))``, one such part per problem, joined by
            ``"; "``.
    """
    problems: dict[str, str] = {}
    references: dict[str, str] = {}
    raw = OmegaConf.to_container(cfg, resolve=False)
    plain = _resolved(cfg, raw, "", problems, references)
    for key, annotation in ENTRY_KEYS.items():
        wrong = _mismatch(plain[key], annotation, NO_DEFAULT) if key in plain else None
        if wrong is not None:
            expected = ENTRY_TYPES.get(key) or describe(annotation)
            problems.setdefault(key, f"config key {key}{wrong}: expected {expected}")
    for key, node in _target_nodes(plain, ""):
        for where, message in _node_problems(key, node):
            problems.setdefault(where, message)
    shown = [m for k, m in problems.items() if not _refers_to_problem(k, problems, references)]
    if shown:
        raise ConfigTypeError("; ".join(shown))


def _refers_to_problem(key: str, problems: dict[str, str], references: dict[str, str]) -> bool:
    """``key`` takes its value from another key that is named in ``problems``."""
    seen = {key}
    while key in references and references[key] not in seen:
        key = references[key]
        if key in problems:
            return True
        seen.add(key)
    return False


# ``${trainer.max_epochs}``: a value that is only an absolute reference to another key.
_REFERENCE = re.compile(r"^\$\{([A-Za-z_][\w\-]*(?:\.[\w\-]+)*)\}$")


def _resolved(
    node: Any, raw: Any, key: str, problems: dict[str, str], references: dict[str, str]
) -> Any:
    """``node`` as plain containers with its interpolations resolved; a value that cannot be
    resolved is reported in ``problems`` and left out, a ``???`` becomes :data:`MISSING`,
    and a key whose raw value (in ``raw``, the unresolved containers) only refers to another
    key is noted in ``references``. (``OmegaConf.to_container`` stops at the first failure
    and does not name the others.)"""
    if not isinstance(node, DictConfig | ListConfig):
        return node
    keys = node.keys() if isinstance(node, DictConfig) else range(len(node))
    out: dict | list = {} if isinstance(node, DictConfig) else []
    for k in keys:
        sub = f"{key}.{k}".lstrip(".") if isinstance(node, DictConfig) else f"{key}[{k}]"
        if sub == "hydra":  # Hydra's own settings, built by Hydra
            continue
        raw_value = raw[k] if isinstance(raw, dict | list) else None
        if isinstance(raw_value, str) and (match := _REFERENCE.match(raw_value)):
            references[sub] = match[1]
        try:
            value = _resolved(node[k], raw_value, sub, problems, references)
        except MissingMandatoryValue:
            value = MISSING
        except OmegaConfBaseException as err:
            reason = str(err).splitlines()[0]
            problems[sub] = f"config key {sub}: its interpolation cannot be resolved: {reason}"
            continue
        if isinstance(out, dict):
            out[k] = value
        else:
            out.append(value)
    return out


def _target_nodes(node: Any, key: str) -> Iterator[tuple[str, dict]]:
    """Every ``(key, node)`` with a ``_target_`` under ``node``, ``contract`` nodes left out."""
    if isinstance(node, dict):
        if isinstance(node.get(TARGET_KEY), str):
            yield key or "<root>", node
        for k, value in node.items():
            if k != CONTRACT_KEY:
                yield from _target_nodes(value, f"{key}.{k}" if key else str(k))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _target_nodes(value, f"{key}[{i}]")


def _holds_target(value: Any) -> bool:
    """The value is a ``_target_`` node or holds one (Hydra builds it first)."""
    if isinstance(value, dict):
        return TARGET_KEY in value or any(_holds_target(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_target(v) for v in value)
    return False


def _node_problems(key: str, node: dict) -> list[tuple[str, str]]:
    """The problems of one ``_target_`` node's arguments, as ``(key, message)``."""
    target = node[TARGET_KEY]
    parameters = keyword_parameters(target)
    if parameters is None:
        return []
    known, closed = parameters
    problems = []
    for name, value in node.items():
        if name in HYDRA_KEYS or name == CONTRACT_KEY:
            continue
        where = f"{key}.{name}".lstrip(".")
        if name not in known:
            if closed:
                message = f"config key {where}: {target} takes no argument {name!r}"
                problems.append((where, message + _suggestion(name, list(known))))
            continue
        annotation, default = known[name]
        wrong = _mismatch(value, annotation, default)
        if wrong is not None:
            expected = f"{describe(annotation)} ({target}({name}))"
            problems.append((where, f"config key {where}{wrong}: expected {expected}"))
    return problems


def _suggestion(name: str, names: list[str]) -> str:
    """`` (did you mean 'max_epochs'?)``, or the names it takes where there are few."""
    close = difflib.get_close_matches(name, names, n=1)
    if close:
        return f" (did you mean {' or '.join(repr(c) for c in close)}?)"
    return f" (it takes: {', '.join(names)})" if 0 < len(names) <= 12 else ""


def _mismatch(value: Any, annotation: Any, default: Any) -> str | None:
    """How a message shows ``value`` (``='abc'``, ``: no value given (???)``) when it does not
    fit ``annotation``; None when it fits or cannot be judged."""
    if value is MISSING:
        return ": no value given (???)"
    if _holds_target(value) or (value is None and default is None):
        return None
    return f"={_short(value)}" if fits(value, annotation) is False else None


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
