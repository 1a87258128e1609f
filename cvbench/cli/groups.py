"""Check ``group=option`` overrides against the config search path before Hydra composes.

Hydra lists the valid options only for flat groups; cvbench's groups nest by task
(``model/classification/...``), so a wrong option would get no list. This check names them all,
from cvbench's own tree and from the user's folders added by ``--config-dir DIR`` or
``hydra.searchpath=[file://DIR,pkg://module]``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
from collections.abc import Sequence
from pathlib import Path

from hydra._internal.utils import get_args_parser
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException

SEARCHPATH = "hydra.searchpath"


def group_options(conf_dir: Path, group: str) -> list[str]:
    """Every option of ``group``: YAML files below ``conf_dir/group``, without the suffix."""
    root = conf_dir / group
    return sorted(p.relative_to(root).with_suffix("").as_posix() for p in root.rglob("*.yaml"))


def search_dir(entry: str) -> Path | None:
    """The folder of one ``hydra.searchpath`` entry (``file://DIR``, ``pkg://module`` or a
    plain path), or None for a package that cannot be found.

    >>> search_dir("file:///tmp/my_conf").as_posix()
    '/tmp/my_conf'
    """
    if entry.startswith("pkg://"):
        name = entry.removeprefix("pkg://").replace("/", ".")
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            return None
        locations = list(spec.submodule_search_locations or []) if spec else []
        return Path(locations[0]) if locations else None
    return Path(entry.removeprefix("file://"))


def hydra_arguments(argv: Sequence[str]) -> tuple[list[str], list[Path]] | None:
    """The overrides and the user's config folders of a Hydra command line, read by Hydra's
    own argument parser: ``--config-dir`` first, then the ``hydra.searchpath`` entries; None
    when Hydra's parser refuses the line (Hydra reports it)."""
    with contextlib.redirect_stderr(io.StringIO()):
        try:
            args = get_args_parser().parse_args(list(argv))
        except SystemExit:
            return None
    dirs = [Path(args.config_dir)] if args.config_dir else []
    try:
        parsed = OverridesParser.create().parse_overrides(args.overrides)
    except HydraException:
        return args.overrides, dirs
    for override in parsed:
        if override.key_or_group == SEARCHPATH and isinstance(override.value(), list):
            found = (search_dir(str(entry)) for entry in override.value())
            dirs += [d for d in found if d is not None]
    return args.overrides, dirs


def invalid_choices(overrides: list[str], conf_dirs: Sequence[Path]) -> list[str]:
    """One message per override that picks an option no folder of ``conf_dirs`` has for its
    group (the options of a group are the union over the folders).

    >>> invalid_choices(["seed=3", "hydra/launcher=submitit_local"], [Path("conf")])
    []
    """
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException:
        return []  # Hydra reports syntax errors itself
    messages = []
    for override in parsed:
        group = override.key_or_group
        if group.startswith("hydra/"):
            continue  # flat groups that Hydra plugins also fill; Hydra lists their options
        roots = [d for d in conf_dirs if (d / group).is_dir()]
        if not roots or override.is_delete():
            continue
        if override.is_sweep_override():
            if not override.is_choice_sweep():
                continue
            chosen = list(override.sweep_string_iterator())
        else:
            chosen = [override.get_value_element_as_str()]
        valid = sorted({option for root in roots for option in group_options(root, group)})
        for option in chosen:
            if option != "null" and option not in valid:
                listing = "\n".join(f"  {group}={v}" for v in valid)
                where = f" (in {' or '.join(map(str, roots))})" if len(conf_dirs) > 1 else ""
                messages.append(
                    f"no option '{option}' in config group '{group}'{where}. Valid:\n{listing}"
                )
    return messages
