"""The characters a text recognizer reads, and their CTC codes (Graves et al., 2006).

Code 0 is CTC's blank; the ``V`` characters of a charset are codes ``1..V`` in the order given,
so a classifier over them has ``num_classes = V + 1`` outputs (as clovaai's
deep-text-recognition-benchmark ``CTCLabelConverter``, whose ``[CTCblank]`` is class 0).

The config group ``conf/charset/`` names the usual ones (``digits``, ``lower_alnum``: the 36
characters of the benchmarks' lowercase alphanumeric protocol, ``cased_alnum``, ``printable``)
and reads one from a file (:func:`charset_from_file`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class Charset:
    """An ordered set of characters and their codes (1..V; 0 is the CTC blank).

    Args:
        chars: the characters, each once, in code order (``"0123456789"``: "0" is code 1).
        name: what messages and reports call it.
        num_classes: when given, checked to be ``len(chars) + 1`` (the config declares it so
            that a model reads ``${data.charset.num_classes}``).

    >>> charset = Charset("abc")
    >>> charset.encode("cab"), charset.decode([3, 0, 1, 2]), charset.num_classes
    ([3, 1, 2], 'cab', 4)
    """

    def __init__(self, chars: str, *, name: str = "custom", num_classes: int | None = None) -> None:
        if not chars:
            raise ValueError(f"charset '{name}': no characters")
        seen: dict[str, int] = {}
        for position, char in enumerate(chars):
            if char in seen:
                raise ValueError(
                    f"charset '{name}': character {char!r} appears twice (positions "
                    f"{seen[char]} and {position}); give each character once"
                )
            seen[char] = position
        if num_classes is not None and num_classes != len(chars) + 1:
            raise ValueError(
                f"charset '{name}': num_classes={num_classes} but it has {len(chars)} characters: "
                f"set charset.num_classes={len(chars) + 1} (the characters + the CTC blank)"
            )
        self.chars = chars
        self.name = name
        self._codes = {char: position + 1 for position, char in enumerate(chars)}

    def __len__(self) -> int:
        return len(self.chars)

    def __repr__(self) -> str:
        return f"Charset(name={self.name!r}, {len(self)} characters)"

    @property
    def num_classes(self) -> int:
        """Classes of a CTC classifier over the charset: its characters + the blank (0)."""
        return len(self.chars) + 1

    def describe(self) -> str:
        """The charset in a message: its name and characters, cut when long."""
        chars = self.chars if len(self.chars) <= 40 else self.chars[:37] + "..."
        return f"charset '{self.name}' ({len(self)} characters: {chars!r})"

    def unknown(self, text: str) -> tuple[int, str] | None:
        """The first character of ``text`` outside the charset as ``(position, char)``, or
        None when every one is in it."""
        for position, char in enumerate(text):
            if char not in self._codes:
                return position, char
        return None

    def encode(self, text: str) -> list[int]:
        """``text`` as codes in 1..V.

        Raises:
            ValueError: a character outside the charset, named with its position.
        """
        try:
            return [self._codes[char] for char in text]
        except KeyError:
            position, char = self.unknown(text)
            raise ValueError(
                f"character {char!r} (U+{ord(char):04X}) at position {position} of {text!r} is "
                f"not in the {self.describe()}"
            ) from None

    def decode(self, codes: Sequence[int]) -> str:
        """The characters of ``codes``; 0 (the blank) is skipped. Nothing is collapsed: CTC's
        merging of repeats is the decoder's.

        Raises:
            ValueError: a code outside 0..V.
        """
        chars = []
        for code in codes:
            code = int(code)
            if code == 0:
                continue
            if not 1 <= code <= len(self.chars):
                raise ValueError(f"code {code} is outside 0..{len(self)} of the {self.describe()}")
            chars.append(self.chars[code - 1])
        return "".join(chars)


def charset_from_file(path: str, *, name: str = "file", num_classes: int) -> Charset:
    """A charset read from a UTF-8 file: one line holding every character, or one character
    per line (a line of one space is the space; empty lines and a trailing newline are
    skipped).

    Args:
        path: the file.
        name: what messages call it.
        num_classes: what the config declares (the characters + 1), checked against the file.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not UTF-8, no characters, a line of several characters among single ones,
            a repeated character, or ``num_classes`` not the file's count + 1.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"charset file {file} does not exist")
    try:
        text = file.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ValueError(
            f"charset file {file}: not UTF-8 ({err.reason} at byte {err.start})"
        ) from None
    numbered = [
        (n, line) for n, line in enumerate(text.replace("\r\n", "\n").split("\n"), 1) if line
    ]
    if len(numbered) == 1:
        chars = numbered[0][1]
    else:
        long = [(n, line) for n, line in numbered if len(line) != 1]
        if long:
            raise ValueError(
                f"charset file {file}: line {long[0][0]} holds {long[0][1]!r}; expected one "
                "line of characters, or one character per line"
            )
        chars = "".join(line for _, line in numbered)
    try:
        return Charset(chars, name=name, num_classes=num_classes)
    except ValueError as err:
        raise ValueError(f"charset file {file}: {err}") from None
