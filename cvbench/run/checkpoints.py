"""Read a checkpoint as data: ``torch.load(weights_only=True)``, one error line naming the file.

A checkpoint is a pickle, and an unrestricted unpickler runs whatever the file tells it to
(``os.system`` included) before anything can be checked. PyTorch's ``weights_only`` unpickler
(https://pytorch.org/docs/stable/generated/torch.load.html) accepts only tensors, plain
containers and a short list of types, so a checkpoint from a colleague or a model zoo is
read as safely as a weights file. Everything ``cvbench train`` writes loads this way (the
tests load real checkpoints of every task); Lightning's own load is told the same
(``trainer.fit/test(..., weights_only=True)``).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

# Lines of torch's weights_only refusal that explain the option rather than the file.
_BOILERPLATE = ("Weights only load failed", "Please file an issue", "Check the documentation")
# ``trainer.fit(ckpt_path=...)`` also takes these names, and Lightning finds the file itself.
LIGHTNING_CKPT_NAMES = ("last", "best", "hpc")


class UnsafeCheckpoint(ValueError):
    """The checkpoint holds objects that only an unrestricted unpickler would build."""


class UnreadableCheckpoint(ValueError):
    """The checkpoint is truncated or corrupt."""


def _reason(err: BaseException) -> str:
    """The line of torch's message that says what was wrong (the refused global, the
    unsupported opcode), without the advice around it."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith(_BOILERPLATE)]
    if not useful:  # EOFError() of a file cut short says nothing more
        return (
            f"{type(err).__name__}: it ends early"
            if isinstance(err, EOFError)
            else (type(err).__name__)
        )
    first = useful[0].split(". ")[0].rstrip(".")  # torch's zip errors go on with advice
    return (
        first
        if isinstance(err, (RuntimeError, pickle.UnpicklingError))
        else (f"{type(err).__name__}: {first}")
    )


def _refused_globals(path: Path, err: pickle.UnpicklingError) -> str:
    """What torch refused: the globals the file names (read from its pickle without running
    it), else the ``WeightsUnpickler error`` of torch's message."""
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # a legacy (non-zip) file or a URL: torch's message must do
        names = []
    if names:
        return f"it names {', '.join(names)}"
    marker = "WeightsUnpickler error:"
    if marker in str(err):
        after = str(err).split(marker, 1)[1].strip()
        return after.splitlines()[0].split(". ")[0].rstrip(".") if after else _reason(err)
    return _reason(err)


def refused(path: str | Path, err: pickle.UnpicklingError) -> ValueError:
    """The error to raise for an ``UnpicklingError`` of ``torch.load(path, weights_only=True)``:
    :class:`UnsafeCheckpoint` when torch refused what the file holds, else
    :class:`UnreadableCheckpoint` (a legacy pickle cut short)."""
    if not str(err).startswith(_BOILERPLATE[0]):
        return UnreadableCheckpoint(
            f"ckpt_path={path} is not a readable checkpoint (truncated or corrupt: {_reason(err)})"
        )
    local = Path(path) if "://" not in str(path) else None
    what = _refused_globals(local, err) if local is not None else _reason(err)
    return UnsafeCheckpoint(
        f"ckpt_path={path}: refused: it holds objects that are not plain tensors and "
        f"containers ({what}); cvbench does not unpickle code from a checkpoint"
    )


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint at ``path``, loaded on the CPU without running any pickled code.

    Raises:
        FileNotFoundError: no file at ``path``.
        UnsafeCheckpoint: it holds objects that are not tensors and plain containers (a
            pickle payload); nothing of it was run.
        UnreadableCheckpoint: it is truncated or corrupt (a copy cut short by a full disk).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ckpt_path={path}: no such checkpoint file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise refused(path, err) from None
    except OSError:
        raise  # the disk, not the file's content: reported by the CLI as `cannot use FILE`
    except Exception as err:
        # torch.load raises RuntimeError (zip reader), EOFError, KeyError, ValueError, ... on
        # a damaged file, depending on where it is cut; none of them names the file.
        raise UnreadableCheckpoint(
            f"ckpt_path={path} is not a readable checkpoint (truncated or corrupt: {_reason(err)})"
        ) from None
    if not isinstance(checkpoint, dict):
        raise UnreadableCheckpoint(
            f"ckpt_path={path} holds a {type(checkpoint).__name__}, not a Lightning checkpoint "
            f"(a dict)"
        )
    return checkpoint


def is_lightning_name(ckpt_path: str | Path) -> bool:
    """``ckpt_path`` is one of Lightning's names (``last``, ``best``, ``hpc``, ``registry:...``)
    or a URL, which Lightning resolves itself, rather than a local file."""
    text = str(ckpt_path)
    return text in LIGHTNING_CKPT_NAMES or text.startswith("registry") or "://" in text
