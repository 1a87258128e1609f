"""One command-line syntax for the commands that are not Hydra apps (``score``, ``leaderboard``,
``compare``, ``reproduce``): Hydra's ``key=value`` override grammar, read by Hydra's own
``OverridesParser``, checked against declared, typed and documented settings.

A command declares its settings once (:class:`Setting`); :func:`parse` turns an argument list
into typed values or raises :class:`UsageError` with one line naming the key and what was
expected; :func:`help_text` writes ``--help`` from the same declarations. The old spellings
(``--task detection``, positional arguments) are refused with the new form spelled out.
"""

from __future__ import annotations

import difflib
import re
import shlex
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException

from cvbench.cli.errors import EXIT_BAD_INPUT

REQUIRED = "???"  # the default of a setting that must be given (as a ``???`` YAML value)
HELP_FLAGS = ("-h", "--help")
_PLAIN = re.compile(r"[\w./:@+,-]*")  # a value that needs no quotes in the shown new form


class UsageError(ValueError):
    """A wrong command line; the message is one line naming the key and what was expected."""


@dataclass(frozen=True)
class Setting:
    """One ``key=value`` setting of a command.

    Attributes:
        key: the name on the command line.
        help: one sentence for ``--help``.
        type: ``str``, ``int``, ``float``, ``bool``, ``Path`` or ``list`` (of names: ``a,b``
            or ``[a,b]``).
        default: the value when not given; ``REQUIRED`` when it must be given.
        choices: the values allowed (empty: any of the type).
        minimum: the least value of an ``int`` or ``float``.
        metavar: how ``--help`` shows the value (default: from the type or choices).
    """

    key: str
    help: str
    type: type = str
    default: Any = None
    choices: tuple[Any, ...] = ()
    minimum: float | None = None
    metavar: str | None = None

    @property
    def required(self) -> bool:
        return isinstance(self.default, str) and self.default == REQUIRED

    def shown(self) -> str:
        """``key=VALUE`` as usage lines show it."""
        if self.metavar:
            return f"{self.key}={self.metavar}"
        if self.choices:
            return f"{self.key}={'|'.join(_text(c) for c in self.choices)}"
        names = {int: "INT", float: "FLOAT", bool: "true|false", Path: "PATH", list: "A,B"}
        return f"{self.key}={names.get(self.type, 'VALUE')}"


@dataclass(frozen=True)
class Command:
    """A command's settings and its ``--help``.

    Attributes:
        name: as the user types it (``leaderboard``; ``score task=detection``).
        summary: what the command does, one sentence.
        settings: its settings, in the order ``--help`` lists them.
        details: paragraphs after the settings in ``--help``.
        examples: command lines ``--help`` shows.
        overrides: when set, keys it does not declare are passed on as Hydra overrides of
            ``cvbench train`` (``reproduce``); the text says so in ``--help``.
        positional: the keys that the old positional arguments became, in order, to show a
            refused old command line in the new form.
    """

    name: str
    summary: str
    settings: tuple[Setting, ...]
    details: str = ""
    examples: tuple[str, ...] = ()
    overrides: str | None = None
    positional: tuple[str, ...] = field(default=())

    def setting(self, key: str) -> Setting | None:
        return next((s for s in self.settings if s.key == key), None)

    def usage(self) -> str:
        parts = [s.shown() if s.required else f"[{s.shown()}]" for s in self.settings]
        if self.overrides:
            parts.append("[overrides]")
        return f"usage: cvbench {self.name} " + " ".join(parts)


@dataclass(frozen=True)
class Parsed:
    """A parsed command line: ``values`` for every setting (defaults filled in) and, for a
    command with ``overrides``, the other ``key=value`` arguments as typed."""

    values: dict[str, Any]
    overrides: list[str]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return "null" if value is None else str(value)


def help_text(command: Command) -> str:
    """``--help``: usage, summary, one line per setting (default, help), details, examples.

    >>> print(help_text(Command("demo", "Demo.", (Setting("n", "how many", int, 3),))))
    usage: cvbench demo [n=INT]
    <BLANKLINE>
    Demo.
    <BLANKLINE>
    settings (key=value, Hydra's override syntax; quote special characters: key='a,b=c'):
      n=INT  how many (default: 3)
    """
    usage = textwrap.wrap(command.usage(), 100, subsequent_indent=" " * 8, break_on_hyphens=False)
    lines = [*usage, "", *textwrap.wrap(command.summary, 96), ""]
    lines.append(
        "settings (key=value, Hydra's override syntax; quote special characters: key='a,b=c'):"
    )
    width = min(max(len(s.shown()) for s in command.settings), 24)
    for s in command.settings:
        default = "required" if s.required else f"default:\0{_text(s.default)}"
        text = f"{s.help} ({default})"  # \0: "(default: x)" is not split across lines
        first = f"  {s.shown():{width}}  "
        wrapped = textwrap.wrap(text, 100 - len(first) if len(first) < 40 else 70)
        wrapped = [w.replace("\0", " ") for w in wrapped]
        if len(first) > width + 4:  # a long key=VALUE: text on the next lines
            lines.append(first.rstrip())
            lines += [" " * (width + 4) + w for w in wrapped]
        else:
            lines.append(first + wrapped[0])
            lines += [" " * len(first) + w for w in wrapped[1:]]
    if command.overrides:
        lines += ["", *textwrap.wrap(command.overrides, 96)]
    if command.details:
        for paragraph in command.details.strip().split("\n\n"):
            lines += ["", *textwrap.wrap(" ".join(paragraph.split()), 96)]
    if command.examples:
        lines += ["", "examples:", *(f"  cvbench {e}" for e in command.examples)]
    return "\n".join(lines)


def _shown_arg(key: str, value: str) -> str:
    """``key=value`` as a shell and Hydra both read it.

    >>> print(_shown_arg("gt", "a b"), _shown_arg("n", "3"))
    "gt='a b'" n=3
    """
    if _PLAIN.fullmatch(value) and "," not in value:
        return f"{key}={value}"
    if not set(value) & set("\"'$`\\!"):
        return f"\"{key}='{value}'\""
    return shlex.quote(f"{key}='{value}'")


def old_form(command: Command, argv: Sequence[str]) -> str:
    """The new spelling of an old command line: ``--flag-name V`` -> ``flag_name=V``, a lone
    ``--flag`` -> ``flag=true``, positional arguments -> ``command.positional`` keys.

    >>> cmd = Command("score", "", (), positional=())
    >>> old_form(cmd, ["--task", "segmentation", "--num-classes", "3", "--reduce-zero-label"])
    'cvbench score task=segmentation num_classes=3 reduce_zero_label=true'
    """
    words, position, i = [], 0, 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("--") and len(arg) > 2:
            key, sep, value = arg[2:].partition("=")
            key = key.replace("-", "_")
            if not sep:
                has_value = i + 1 < len(argv) and not argv[i + 1].startswith("--")
                value = argv[i + 1] if has_value else "true"
                i += has_value
            words.append(_shown_arg(key, value))
        elif "=" not in arg and position < len(command.positional):
            words.append(_shown_arg(command.positional[position], arg))
            position += 1
        else:
            words.append(arg if "=" in arg else shlex.quote(arg))
        i += 1
    return " ".join([f"cvbench {command.name.split()[0]}", *words])


def _refuse_old_form(command: Command, argv: Sequence[str]) -> None:
    """UsageError for ``--flag`` or positional arguments, showing the new form."""
    flags = [a for a in argv if a.startswith("-")]
    loose = [a for a in argv if "=" not in a and not a.startswith(("-", "~"))]
    if not flags and not loose:
        return
    what = f"{flags[0]!r}" if flags else f"positional argument {loose[0]!r}"
    raise UsageError(
        f"cvbench {command.name} takes key=value settings only, not {what}; "
        f"write: {old_form(command, argv)} (cvbench {command.name.split()[0]} --help)"
    )


def _unknown(command: Command, key: str) -> UsageError:
    keys = [s.key for s in command.settings]
    near = difflib.get_close_matches(key, keys, n=1)
    hint = f" (did you mean {near[0]}=?)" if near else ""
    return UsageError(
        f"cvbench {command.name}: unknown setting {key!r}{hint}; valid: "
        + ", ".join(f"{k}=" for k in keys)
    )


def _raw(override: Override) -> str:
    """The value as typed, without quotes (``a=0012`` stays ``0012``, ``a=1e3`` ``1e3``)."""
    value = override.value()
    return value if isinstance(value, str) else override.input_line.split("=", 1)[1]


def convert(setting: Setting, override: Override, *, command: str) -> Any:
    """The override's value as ``setting.type``.

    Raises:
        UsageError: the value is not of the type, not a choice, or below the minimum.
    """
    key, raw = setting.key, override.input_line.split("=", 1)[1]
    where = f"cvbench {command}: {key}={raw}"
    value = override.value()
    if override.is_sweep_override() and not override.is_choice_sweep():
        raise UsageError(f"{where}: expected one value, not a sweep")
    if setting.type is list:
        if override.is_choice_sweep():
            names = list(override.sweep_string_iterator())
        elif isinstance(value, list):
            names = [_text(v) for v in value]
        elif value is None:
            return None
        else:
            names = [_raw(override)]
        return [n for n in names if n] or None  # empty (``task=``): no filter
    if override.is_sweep_override() or isinstance(value, (list, dict)):
        raise UsageError(f"{where}: expected one value; quote a value with commas: {key}='{raw}'")
    if value is None or value == "":
        if setting.required:
            raise UsageError(f"{where}: expected a value; {key} is required")
        return None
    if setting.type is bool:
        if not isinstance(value, bool):
            raise UsageError(f"{where}: expected true or false")
        converted: Any = value
    elif setting.type in (int, float):
        kind = "an integer" if setting.type is int else "a number"
        at_least = "" if setting.minimum is None else f" >= {setting.minimum:g}"
        allowed = (int,) if setting.type is int else (int, float)
        if (
            isinstance(value, bool)
            or not isinstance(value, allowed)
            or (setting.minimum is not None and value < setting.minimum)
        ):
            raise UsageError(f"cvbench {command}: {key} must be {kind}{at_least}, got {raw!r}")
        converted = value
    else:
        converted = setting.type(_raw(override))
    if setting.choices and converted not in setting.choices:
        raise UsageError(
            f"cvbench {command}: {key}={raw} is not one of "
            + ", ".join(_text(c) for c in setting.choices)
        )
    return converted


def parse_overrides(command: Command, argv: Sequence[str]) -> list[Override]:
    """Hydra's parse of ``argv``, after refusing the old forms.

    Raises:
        UsageError: an old form, or an argument Hydra's grammar does not read.
    """
    _refuse_old_form(command, argv)
    parser = OverridesParser.create()
    parsed = []
    for arg in argv:
        try:
            parsed.append(parser.parse_override(arg))
        except HydraException as err:
            reason = str(err).splitlines()[0]
            raise UsageError(
                f"cvbench {command.name}: cannot read {arg!r} ({reason}); Hydra's override "
                "syntax: key=value, quoted when the value has spaces or special characters: "
                f"{arg.split('=', 1)[0]}='...'"
            ) from None
    return parsed


def parse(command: Command, argv: Sequence[str]) -> Parsed:
    """The typed values of ``argv`` over the defaults.

    Raises:
        UsageError: an old form, an unknown or repeated key, a wrong value, a missing
            required setting; one line naming the key and what was expected.

    >>> cmd = Command("x", "", (Setting("task", "t", list), Setting("n", "n", int, 1, minimum=1)))
    >>> parse(cmd, ["task=a,b", "n=3"]).values
    {'task': ['a', 'b'], 'n': 3}
    """
    values: dict[str, Any] = {}
    overrides: list[str] = []
    for override in parse_overrides(command, argv):
        key = override.key_or_group
        setting = command.setting(key)
        plain = override.input_line.split("=", 1)[0] == key
        if setting is None or not plain:
            if command.overrides is not None and setting is None:
                overrides.append(override.input_line)
                continue
            if setting is not None:
                raise UsageError(
                    f"cvbench {command.name}: {override.input_line!r}: write {key}=... "
                    "(no +, ++ or ~ before the settings of this command)"
                )
            raise _unknown(command, key)
        if key in values:
            raise UsageError(f"cvbench {command.name}: {key}= is given twice")
        values[key] = convert(setting, override, command=command.name)
    for setting in command.settings:
        if setting.key not in values:
            if setting.required:
                raise UsageError(
                    f"cvbench {command.name}: {setting.key}= is required: {setting.help}"
                )
            values[setting.key] = setting.default
    return Parsed({s.key: values[s.key] for s in command.settings}, overrides)


def wants_help(argv: Sequence[str]) -> bool:
    return any(arg in HELP_FLAGS for arg in argv)


def usage_exit(err: UsageError) -> NoReturn:
    """Print ``error: <message>`` and exit ``EXIT_BAD_INPUT``, as Hydra does for a bad
    override."""
    print(f"error: {err}", file=sys.stderr)
    sys.exit(EXIT_BAD_INPUT)


def parse_or_exit(command: Command, argv: Sequence[str]) -> Parsed:
    """:func:`parse`, printing ``--help`` (exit 0) or the one-line error (exit 1)."""
    if wants_help(argv):
        print(help_text(command))
        sys.exit(0)
    try:
        return parse(command, argv)
    except UsageError as err:
        usage_exit(err)
