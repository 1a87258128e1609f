"""Checkpoints written whole or not at all, also on a full disk.

Lightning's :class:`~lightning_fabric.plugins.io.torch_io.TorchCheckpointIO` writes through
fsspec's local transaction, whose temporary file lives in the system temp folder: when the run
directory is on another file system, the final move is a copy, and a full disk there leaves a
truncated ``epoch_NNN.ckpt`` beside the good ones (and an ``OSError`` without a file name).
:class:`AtomicCheckpointIO` writes into a temporary file in the checkpoint's own folder, flushes
it to the disk (``fsync``) and renames it over the checkpoint (``os.replace``, atomic on POSIX
and Windows): a reader sees the old file or the new one, never a part. On failure the temporary
file is removed and the error names the checkpoint, so the CLI prints ``cannot use FILE: No
space left on device``. Remote paths (``s3://``) are left to Lightning.

The strategies call ``checkpoint_io.save_checkpoint`` on the main process only (single device
and DDP alike), so the rename never races another rank.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from fsspec.implementations.local import LocalFileSystem
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning_fabric.utilities.cloud_io import get_filesystem

from cvbench.files import FILE_MODE


class AtomicCheckpointIO(TorchCheckpointIO):
    """:class:`TorchCheckpointIO` that never leaves a partly written checkpoint.

    Given to the trainer as ``pl.Trainer(plugins=[AtomicCheckpointIO()])``.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None
    ) -> None:
        """Write ``checkpoint`` to ``path`` whole, or leave ``path`` as it was.

        Raises:
            OSError: the checkpoint could not be written (full disk, quota, file-size limit,
                read-only folder), with ``filename`` the checkpoint's path; the temporary file
                is gone and an earlier checkpoint at ``path`` is intact.
            TypeError: ``storage_options`` given (as Lightning's).
        """
        if not isinstance(get_filesystem(path), LocalFileSystem):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        target = Path(path)
        # Serialized first, as Lightning does: torch's zip writer reports a failed write as a
        # RuntimeError without errno, Python's file objects as an OSError with it.
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(target, buffer.getbuffer())
        except OSError as err:
            if err.filename == str(target):
                raise
            raise OSError(err.errno, err.strerror or str(err), str(target)) from err


def write_atomically(path: Path, data: bytes | memoryview) -> None:
    """Write ``data`` to ``path`` through a temporary file in its folder, flushed to the disk
    and renamed over it; on failure the temporary file is removed and ``path`` left as it was.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # the rename itself durable (POSIX; no-op elsewhere)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
