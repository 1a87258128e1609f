"""Check ``group=option`` overrides against the conf/ tree before Hydra composes.

Hydra lists the valid options only for flat groups; cvbench's groups nest by task
(``model/classification/...``), so a wrong option would get no list. This check names them all.
"""

from __future__ import annotations

from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException


def group_options(conf_dir: Path, group: str) -> list[str]:
    """Every option of ``group``: YAML files below ``conf_dir/group``, without the suffix."""
    root = conf_dir / group
    return sorted(p.relative_to(root).with_suffix("").as_posix() for p in root.rglob("*.yaml"))


def invalid_choices(overrides: list[str], conf_dir: Path) -> list[str]:
    """One message per override that picks an option its group does not have.

    >>> invalid_choices(["seed=3"], Path("conf"))
    []
    """
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException:
        return []  # Hydra reports syntax errors itself
    messages = []
    for override in parsed:
        group = override.key_or_group
        if not (conf_dir / group).is_dir() or override.is_delete():
            continue
        if override.is_sweep_override():
            if not override.is_choice_sweep():
                continue
            chosen = list(override.sweep_string_iterator())
        else:
            chosen = [override.get_value_element_as_str()]
        valid = group_options(conf_dir, group)
        for option in chosen:
            if option != "null" and option not in valid:
                listing = "\n".join(f"  {group}={v}" for v in valid)
                messages.append(
                    f"no option '{option}' in config group '{group}'. Valid:\n{listing}"
                )
    return messages
