"""Turn the errors a user can fix into one clear line and exit status 1, without a traceback."""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from collections.abc import Iterator

from hydra.errors import InstantiationException

from cvbench.run.errors import NonFiniteLossError
from cvbench.run.outputs import RunDirectoryInUse

USER_ERRORS = (
    FileNotFoundError,
    PermissionError,
    ValueError,
    NonFiniteLossError,
    RunDirectoryInUse,
)
# OS errors a user fixes outside cvbench (free space, quota, a read-only mount): reported as
# ``cannot use FILE: No space left on device``, not as a traceback.
USER_OS_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.ENOENT}
)
EXIT_BAD_INPUT = 1  # exit status of every user error, a wrong key=value included (as Hydra)
EXIT_SIGTERM = 128 + 15  # as a shell reports a process ended by SIGTERM


class RunFailed(RuntimeError):
    """A run of a multirun failed; raised instead of exiting, so the sweep goes on."""


def one_line(err: BaseException) -> str:
    """The error's message: for an OS error, the file and the reason; for one re-raised from a
    DataLoader worker (whose message carries the worker's traceback), the original last line,
    ``ValueError: cannot read image ...``."""
    if isinstance(err, OSError) and err.filename and err.strerror:
        verb = "cannot read" if isinstance(err, FileNotFoundError) else "cannot use"
        return f"{verb} {err.filename}: {err.strerror}"
    message = str(err)
    if "Original Traceback" in message:
        lines = [line for line in message.splitlines() if line.strip()]
        return lines[-1].strip()
    return message


def is_user_error(err: BaseException) -> bool:
    """One of :data:`USER_ERRORS`, or an OS error of :data:`USER_OS_ERRNOS` (a full disk)."""
    if isinstance(err, USER_ERRORS):
        return True
    return isinstance(err, OSError) and err.errno in USER_OS_ERRNOS


def root_cause(err: BaseException) -> BaseException:
    """The innermost cause of a chain of Hydra instantiation errors."""
    while isinstance(err, InstantiationException) and err.__cause__ is not None:
        err = err.__cause__
    return err


@contextlib.contextmanager
def reported_errors(*, in_sweep: bool = False) -> Iterator[None]:
    """Print user errors as ``error: <message>`` and exit ``EXIT_BAD_INPUT``;
    ``CVBENCH_TRACEBACK=1`` re-raises.

    Args:
        in_sweep: the run is one job of a multirun: raise :class:`RunFailed` instead of
            exiting, so Hydra records the job as failed and runs the next one.
    """
    try:
        yield
    except SystemExit as err:
        # Lightning stops training on SIGTERM by raising SystemExit() with no code (status 0).
        lightning = sys.modules.get("pytorch_lightning.utilities.exceptions")
        if lightning is None or not isinstance(err, lightning.SIGTERMException):
            raise
        print("error: terminated by SIGTERM", file=sys.stderr)
        sys.exit(EXIT_SIGTERM)
    except (*USER_ERRORS, OSError, InstantiationException) as err:
        cause = root_cause(err)
        if os.environ.get("CVBENCH_TRACEBACK") or not is_user_error(cause):
            raise
        print(f"error: {one_line(cause)}", file=sys.stderr)
        if in_sweep:
            raise RunFailed(one_line(cause)) from None
        sys.exit(EXIT_BAD_INPUT)
