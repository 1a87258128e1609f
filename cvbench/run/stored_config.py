"""A config stored in a checkpoint is data: build only what the installed config tree builds.

``cvbench eval ckpt_path=...`` rebuilds a run from the config its checkpoint carries, and
building means ``hydra.utils.instantiate``: importing and calling whatever ``_target_`` says.
A checkpoint that loads safely (:mod:`cvbench.run.checkpoints`) could still name
``torch.load``, ``os.system`` or ``builtins.exec`` there (Hydra's own blocklist stops a few
of them, not ``torch.load``). :func:`check_stored_config` refuses such a config before
anything is built, with one line naming the file, the key and the target.

What is trusted: every ``_target_`` written in the YAML files of the installed tree
(:data:`cvbench.conf.CONF_DIR`) and of the config folders the user named on this command
line (``--config-dir``, ``hydra.searchpath``), and whatever this command line sets itself
(the run's own keys and every overridden key come from it, not from the checkpoint).

The other doors, and why they are shut:

- ``_target_`` anywhere: the walk goes through dicts and lists at every depth, also below
  ``_recursive_: false`` and inside ``contract:`` nodes; a ``_target_`` that is not a string
  is refused too (Hydra would try to locate it).
- Interpolations: the walk checks the *resolved* config, so ``_target_: ${data.x}`` and
  nodes made at resolve time (``${oc.create:...}``, ``${oc.decode:...}``) are checked as
  instantiate sees them. Resolving runs resolvers, so first every ``${name:...}`` is checked
  against :data:`READ_ONLY_RESOLVERS`. cvbench registers no resolver of its own
  (no ``register_new_resolver`` anywhere); OmegaConf's and Hydra's read the config or the
  clock, except ``oc.env``, which would copy the environment (tokens, keys) into the run's
  config, its W&B log and the arguments of what is built (a download URL): refused.
  A resolver some other library registered in the process is refused too: it is code.
- Locators: a target that turns a string argument into a class or function
  (``hydra.utils.get_class``, in the tree as ``norm_layer``) is as wide as ``_target_``
  itself, so the strings given to it must be ones the tree gives it (:data:`LOCATORS`).
- ``_args_``, ``_partial_``, ``_convert_``, ``_recursive_``: they change how an allowed
  target is called (positional arguments, a ``functools.partial``), not which; nested
  configs in ``_args_`` are walked like any other.
- Arguments of allowed targets: they stay the stored values, as for any config. None of
  them is code in the installed libraries: the data readers read files (CIFAR through a
  restricted unpickler), ``timm.create_model(checkpoint_path=...)`` and cvbench's
  perceptual loss load weights with ``weights_only=True``; ``pretrained=True`` or
  ``weights=...`` fetch the library's own published weights.
"""

from __future__ import annotations

import importlib.resources
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from cvbench.conf import CONF_DIR, TARGET_KEY

LOCATORS = frozenset(
    {
        "hydra.utils.get_class",
        "hydra.utils.get_method",
        "hydra.utils.get_object",
        "hydra.utils.get_static_method",
        "hydra._internal.utils._locate",
    }
)
READ_ONLY_RESOLVERS = frozenset(
    {
        "oc.select",
        "oc.dict.keys",
        "oc.dict.values",
        "oc.create",
        "oc.decode",
        "oc.deprecated",
        "hydra",
        "now",
    }
)
# ``${name:`` opens a resolver call; ``${key}`` (no colon) is a plain reference.
_RESOLVER_CALL = re.compile(r"\$\{\s*([A-Za-z_][\w.\-]*)\s*:")
# Hydra's config sources the user chose: the primary tree and this command line's folders.
_USER_PROVIDERS = ("main", "command-line", "hydra.searchpath")

KeyPath = tuple[str, ...]  # a key path: ("data", "transforms", "2", "_target_")


class UntrustedConfig(ValueError):
    """A checkpoint's stored config would build something the installed tree does not."""


@dataclass(frozen=True)
class Trusted:
    """What may be built: targets, and the names given to :data:`LOCATORS`."""

    targets: frozenset[str]
    located: frozenset[str]


def _walk(node: Any, path: KeyPath = ()) -> Iterator[tuple[KeyPath, Any]]:
    """Every (key path, value) below ``node``, containers included, depth first."""
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, (*path, str(key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, (*path, str(index)))


def _located_names(node: dict) -> Iterator[Any]:
    """The arguments of a locator node: its keyword values and ``_args_`` items."""
    for key, value in node.items():
        if key == "_args_" and isinstance(value, list):
            yield from value
        elif not str(key).startswith("_"):
            yield value


def _trusted_in(documents: Iterable[Any]) -> Trusted:
    targets: set[str] = set()
    located: set[str] = set()
    for document in documents:
        for _, node in _walk(document):
            if isinstance(node, dict) and isinstance(node.get(TARGET_KEY), str):
                targets.add(node[TARGET_KEY])
                if node[TARGET_KEY] in LOCATORS:
                    located.update(v for v in _located_names(node) if isinstance(v, str))
    return Trusted(frozenset(targets), frozenset(located))


@lru_cache(maxsize=16)
def trusted_in_folder(folder: Path) -> Trusted:
    """The targets written in the YAML files below ``folder`` (a config tree)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    documents = []
    for file in sorted(folder.rglob("*.yaml")):
        try:
            documents.append(yaml.load(file.read_text(encoding="utf-8"), Loader=loader))
        except (yaml.YAMLError, UnicodeDecodeError, OSError):
            continue  # Hydra cannot compose it either: it builds nothing
    return _trusted_in(documents)


def command_line_config_dirs() -> list[Path]:
    """The config folders of this Hydra run (the primary tree, ``--config-dir``,
    ``hydra.searchpath``); none when Hydra is not running."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return []
    sources = HydraConfig.get().runtime.get("config_sources") or []
    folders = []
    for source in sources:
        if not str(source.provider).startswith(_USER_PROVIDERS):
            continue  # Hydra's own and its plugins' configs: the hydra node, never stored
        if source.schema == "file":
            folders.append(Path(source.path))
        elif source.schema == "pkg":
            try:
                folders.append(Path(str(importlib.resources.files(source.path))))
            except (ModuleNotFoundError, TypeError):
                continue
    return [folder for folder in folders if folder.is_dir()]


def trusted_targets(config_dirs: Iterable[Path] = ()) -> Trusted:
    """What the installed tree and ``config_dirs`` build."""
    parts = [trusted_in_folder(Path(CONF_DIR).resolve())]
    parts += [trusted_in_folder(Path(folder).resolve()) for folder in config_dirs]
    return Trusted(
        frozenset().union(*(p.targets for p in parts)),
        frozenset().union(*(p.located for p in parts)),
    )


def _shown(path: KeyPath) -> str:
    """``data.transforms[2]._target_``."""
    text = ""
    for part in path:
        text += f"[{part}]" if part.isdigit() else (f".{part}" if text else part)
    return text


def _from_command_line(path: KeyPath, own: list[KeyPath]) -> bool:
    return any(path[: len(prefix)] == prefix for prefix in own)


def _interpolated(value: Any) -> bool:
    return isinstance(value, str) and "${" in value


def _check_resolvers(raw: Any, own: list[KeyPath], where: str) -> None:
    for path, value in _walk(raw):
        if isinstance(value, str) and not _from_command_line(path, own):
            for name in _RESOLVER_CALL.findall(value):
                if name not in READ_ONLY_RESOLVERS:
                    raise UntrustedConfig(
                        f"{where} {_shown(path)}={value}, which calls the resolver {name}; "
                        f"only {', '.join(sorted(READ_ONLY_RESOLVERS))} are run from a "
                        f"checkpoint; refusing to run it"
                    )


def _check_targets(
    tree: Any, own: list[KeyPath], where: str, trusted: Trusted, *, raw: bool
) -> None:
    """Refuse a target (or a name given to a locator) ``trusted`` does not hold; in the
    ``raw`` tree, interpolations are left to the check of the resolved one."""
    for path, node in _walk(tree):
        if not isinstance(node, dict) or TARGET_KEY not in node:
            continue
        if _from_command_line((*path, TARGET_KEY), own):  # ``model._target_=...`` given here
            continue
        target = node[TARGET_KEY]
        if raw and _interpolated(target):
            continue
        key = _shown((*path, TARGET_KEY))
        if not isinstance(target, str) or target not in trusted.targets:
            shown = target if isinstance(target, str) else repr(target)
            raise UntrustedConfig(
                f"{where} {key}={shown}, which the installed config tree does not build; "
                f"refusing to run it (if you trust it, give {key}=... on the command line or "
                f"its YAML in a --config-dir)"
            )
        if target not in LOCATORS:
            continue
        for name in _located_names(node):
            if raw and _interpolated(name):
                continue
            if not isinstance(name, str) or name not in trusted.located:
                raise UntrustedConfig(
                    f"{where} {key}={target} given {name!r}, which the installed config "
                    f"tree never gives it; refusing to run it"
                )


def check_stored_config(
    cfg: DictConfig, *, ckpt_path: str | Path, trusted: Trusted, own_keys: Iterable[str]
) -> None:
    """Refuse a config that would build, or resolve with, what ``trusted`` does not hold.

    Checks the config as stored (resolvers, then targets), then resolved (targets reached
    through interpolations or made by ``oc.create``); nothing is built or imported.

    Args:
        cfg: the config about to be built: the checkpoint's, with this command's keys set.
        ckpt_path: the checkpoint, named in the error.
        trusted: what the installed tree and this command line's config folders build.
        own_keys: dotted keys whose values this command line set (``paths``,
            ``data.batch_size``): not the checkpoint's, so not checked.

    Raises:
        UntrustedConfig: naming the file, the key path and the refused target or resolver.
    """
    own = [tuple(key.split(".")) for key in own_keys]
    where = f"ckpt_path={ckpt_path}: its stored config has"
    raw = OmegaConf.to_container(cfg, resolve=False)
    _check_resolvers(raw, own, where)
    _check_targets(raw, own, where, trusted, raw=True)
    try:
        resolved = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    except OmegaConfBaseException as err:
        first = str(err).splitlines()[0]
        raise UntrustedConfig(
            f"ckpt_path={ckpt_path}: its stored config does not resolve: {first}"
        ) from None
    _check_targets(resolved, own, where, trusted, raw=False)
