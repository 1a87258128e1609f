"""Files written atomically (a temporary file, then a rename): never half written, readable by
everyone the umask allows. The lowest layer: any part of cvbench may use it."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()  # mkstemp makes 0600 files; results are meant to be shared


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON, sorted keys, through a temporary file and a rename."""
    write_text(path, json.dumps(data, indent=2, sort_keys=True, allow_nan=True) + "\n")


def write_text(path: Path, text: str) -> None:
    """Write ``text`` as UTF-8 (whatever the locale) through a temporary file and a rename:
    never half written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
