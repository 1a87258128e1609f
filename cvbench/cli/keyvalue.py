"""``key=value`` arguments for the commands that read the results store (leaderboard,
compare, reproduce): the same syntax as Hydra overrides, checked against known keys."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def parse_key_values(
    argv: Sequence[str], defaults: Mapping[str, Any], *, command: str
) -> tuple[dict[str, Any], list[str]]:
    """Split ``argv`` into ``key=value`` settings (over ``defaults``) and positional arguments.

    Raises:
        ValueError: a key that ``defaults`` does not have, naming the valid ones.

    >>> parse_key_values(["task=detection", "A"], {"task": None, "format": "md"}, command="x")
    ({'task': 'detection', 'format': 'md'}, ['A'])
    """
    settings = dict(defaults)
    positional = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep:
            positional.append(arg)
            continue
        if key not in defaults:
            valid = ", ".join(f"{k}=" for k in defaults)
            raise ValueError(f"cvbench {command}: unknown setting {key!r}; valid: {valid}")
        settings[key] = None if value in ("", "null") else value
    return settings, positional
