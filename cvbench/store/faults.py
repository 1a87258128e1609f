"""What went wrong with the results store's file, in one line that names it and says what to do.

SQLite reports a full disk, a failing disk, a lock held too long, a read-only file, a file it
cannot open, corrupt pages and a file that is no database at all by their result codes
(https://www.sqlite.org/rescode.html); each gets its own message here, so a user is never told
that a store on a full disk "is not a cvbench SQLite file".
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
from pathlib import Path

# SQLite's primary result codes (https://www.sqlite.org/rescode.html); Python >= 3.11 has them
# as sqlite3.SQLITE_*, 3.10 only in the message.
SQLITE_BUSY, SQLITE_LOCKED, SQLITE_READONLY, SQLITE_IOERR = 5, 6, 8, 10
SQLITE_CORRUPT, SQLITE_FULL, SQLITE_CANTOPEN, SQLITE_NOTADB = 11, 13, 14, 26
# The message of each code, for a Python without ``sqlite_errorcode``.
MESSAGES = {
    "database is locked": SQLITE_BUSY,
    "database table is locked": SQLITE_LOCKED,
    "attempt to write a readonly database": SQLITE_READONLY,
    "disk I/O error": SQLITE_IOERR,
    "database disk image is malformed": SQLITE_CORRUPT,
    "database or disk is full": SQLITE_FULL,
    "unable to open database file": SQLITE_CANTOPEN,
    "file is not a database": SQLITE_NOTADB,
}
SIDE_FILES = ("-wal", "-shm", "-journal")  # the files SQLite keeps beside a database
ELSEWHERE = "set CVBENCH_DB or paths.results_db to another file"


class StoreError(ValueError):
    """The store file cannot be used, or a run id names no run or several."""


def result_code(err: sqlite3.Error) -> int | None:
    """SQLite's primary result code of ``err`` (extended codes reduced), or None."""
    code = getattr(err, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF
    return next((c for text, c in MESSAGES.items() if text in str(err)), None)


def writable(path: Path) -> bool:
    """Whether this process may write the store at ``path`` and the files SQLite keeps beside
    it (``-wal``, ``-shm``): the file (when it exists) and its folder are writable."""
    folder = path.parent if str(path.parent) else Path(".")
    if path.exists() and not os.access(path, os.W_OK):
        return False
    return os.access(folder, os.W_OK | os.X_OK)


def why_read_only(path: Path) -> str:
    """Why the store at ``path`` cannot be written, in a few words."""
    with contextlib.suppress(OSError):
        if os.statvfs(path.parent).f_flag & os.ST_RDONLY:
            return "its file system is mounted read-only"
    if path.exists() and not os.access(path, os.W_OK):
        return f"file mode {stat.filemode(path.stat().st_mode)}"
    if not writable(path):
        return f"the folder {path.parent} is not writable"
    return "opened for reading only"


def why_unopenable(path: Path) -> str:
    """Why SQLite could not open ``path`` (its folder, its mode, a folder in its place)."""
    folder = path.parent
    if not folder.exists():
        return f"the folder {folder} does not exist"
    if not folder.is_dir():
        return f"{folder} is not a folder"
    for candidate in (path, *(path.with_name(path.name + end) for end in SIDE_FILES)):
        if candidate.is_dir():
            return f"{candidate} is a folder"
    if not os.access(folder, os.X_OK) or (not path.exists() and not os.access(folder, os.W_OK)):
        return f"no permission to use the folder {folder} ({stat.filemode(folder.stat().st_mode)})"
    if path.exists() and not os.access(path, os.R_OK):
        return f"no permission to read it ({stat.filemode(path.stat().st_mode)})"
    if not os.access(folder, os.W_OK):
        return f"the folder {folder} is not writable, and SQLite keeps its lock files there"
    return "check the file's and its folder's permissions"


def corrupt_store(path: Path, detail: str) -> StoreError:
    """The error for a store whose pages are corrupt; ``detail`` says what SQLite found."""
    return StoreError(
        f"results store {path} is corrupt ({detail}): nothing was written to it; restore it "
        f"from a backup or recover its records with `sqlite3 {path} .recover`, and meanwhile "
        f"{ELSEWHERE}"
    )


def store_error(path: Path, err: sqlite3.Error, doing: str, *, timeout_s: float) -> StoreError:
    """The :class:`StoreError` that tells the user what ``err`` means for the store at ``path``.

    Args:
        path: the store file.
        err: what SQLite raised.
        doing: what cvbench could not do, e.g. ``"record the end of run 3f2a"``.
        timeout_s: how long a writer waits for another writer's lock.
    """
    code = result_code(err)
    where = f"results store {path}"
    if code == SQLITE_NOTADB:
        return StoreError(f"{where}: {err}. It is not a cvbench SQLite file; {ELSEWHERE}.")
    if code == SQLITE_CORRUPT:
        return corrupt_store(path, str(err))
    if code == SQLITE_CANTOPEN:
        return StoreError(f"{where}: unable to open database file: {why_unopenable(path)}")
    if code == SQLITE_READONLY:
        return StoreError(
            f"{where} is read-only ({why_read_only(path)}): cannot {doing}; make it writable "
            f"or {ELSEWHERE} (paths.results_db=null records nothing)"
        )
    if code == SQLITE_FULL:
        reason = "the disk holding it is full (database or disk is full)"
    elif code == SQLITE_IOERR:
        name = getattr(err, "sqlite_errorname", "SQLITE_IOERR")
        reason = f"disk I/O error ({name}): the disk failed or is full"
    elif code in (SQLITE_BUSY, SQLITE_LOCKED):
        reason = f"another process held its lock for more than {timeout_s:g} s ({err})"
    else:
        reason = str(err)
    return StoreError(f"{where}: cannot {doing}: {reason}")
