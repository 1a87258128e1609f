"""CIFAR pickles are read by an unpickler that builds only what the official files hold: a
poisoned file is refused with its name and never runs; files as the official archives
have them (Python 2, NumPy 1) and copies re-saved by Python 3 still read."""

from __future__ import annotations

import os
import pickle
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from fakes import write_cifar10, write_cifar100

from cvbench.data.formats.cifar import cifar

BATCHES = [f"data_batch_{k}" for k in range(1, 6)]


class Payload:
    """Unpickled by an unrestricted unpickler, it runs ``call(argument)``."""

    def __init__(self, call: Callable, argument: str) -> None:
        self.call, self.argument = call, argument

    def __reduce__(self) -> tuple[Callable, tuple[str]]:
        return self.call, (self.argument,)


def _payloads(marker: Path) -> dict[str, Payload]:
    return {
        "os.system": Payload(os.system, f"touch {marker}"),
        "builtins.exec": Payload(exec, f"open({str(marker)!r}, 'w').close()"),
    }


@pytest.mark.parametrize("call", ["os.system", "builtins.exec"])
@pytest.mark.parametrize("file", ["batches.meta", "data_batch_3"])
def test_poisoned_cifar_pickle_is_refused(tmp_path: Path, file: str, call: str) -> None:
    write_cifar10(tmp_path)
    marker = tmp_path / "marker"
    path = tmp_path / "cifar-10-batches-py" / file
    entry = pickle.loads(path.read_bytes(), encoding="bytes")  # the writer's own file
    entry[b"label_names" if file == "batches.meta" else b"labels"] = _payloads(marker)[call]
    path.write_bytes(pickle.dumps(entry, protocol=2))

    with pytest.raises(ValueError) as refused:
        cifar("train", root=str(tmp_path))
    assert not marker.exists()  # checked first: the payload never ran
    message = str(refused.value)
    assert message.startswith(f"{path} is not an official CIFAR pickle: it names ")
    # protocol 2 writes them as Python 2 names: posix.system, __builtin__.exec
    assert f".{call.split('.')[-1]}, which a CIFAR file never holds" in message
    assert "\n" not in message


def test_a_codec_other_than_latin1_is_refused(tmp_path: Path) -> None:
    """``_codecs.encode`` is allowed only as Python 3 uses it for bytes (latin-1)."""
    write_cifar10(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "batches.meta"
    data = path.read_bytes().replace(b"latin1", b"rot_13")
    path.write_bytes(data)
    with pytest.raises(ValueError, match=f"{path} is not a readable CIFAR pickle"):
        cifar("test", root=str(tmp_path))


# ------------------------------------------------- files written as the official ones are


def _int(value: int) -> bytes:
    if 0 <= value < 256:
        return b"K" + bytes([value])  # BININT1
    if 0 <= value < 65536:
        return b"M" + struct.pack("<H", value)  # BININT2
    return b"J" + struct.pack("<i", value)  # BININT


def _str(value: bytes) -> bytes:
    """A Python 2 ``str``: SHORT_BINSTRING or BINSTRING (bytes under encoding="bytes")."""
    if len(value) < 256:
        return b"U" + bytes([len(value)]) + value
    return b"T" + struct.pack("<i", len(value)) + value


def _py2(value: object) -> bytes:
    """``value`` as Python 2's cPickle (protocol 2) with NumPy 1 writes it."""
    if isinstance(value, bytes):
        return _str(value)
    if isinstance(value, int):
        return _int(value)
    if isinstance(value, list):
        return b"](" + b"".join(map(_py2, value)) + b"e"
    if isinstance(value, dict):
        return b"}(" + b"".join(_py2(k) + _py2(v) for k, v in value.items()) + b"u"
    assert isinstance(value, np.ndarray) and value.dtype == np.uint8
    dtype = (
        b"cnumpy\ndtype\n" + _str(b"u1") + _int(0) + _int(1) + b"\x87R"
        b"(" + _int(3) + _str(b"|") + b"NNN" + b"J\xff\xff\xff\xff" * 2 + _int(0) + b"tb"
    )
    shape = b"(" + b"".join(_int(n) for n in value.shape) + b"t"
    return (
        b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n"
        + (_int(0) + b"\x85" + _str(b"b") + b"\x87R")
        + (b"(" + _int(1) + shape + dtype + b"\x89" + _str(value.tobytes()) + b"tb")
    )


def _rewrite_as_python2(folder: Path, names: list[str]) -> None:
    for name in names:
        entry = pickle.loads((folder / name).read_bytes(), encoding="bytes")
        (folder / name).write_bytes(b"\x80\x02" + _py2(entry) + b".")


def test_official_python2_layout_reads(tmp_path: Path) -> None:
    truth = write_cifar10(tmp_path)
    folder = tmp_path / "cifar-10-batches-py"
    _rewrite_as_python2(folder, [*BATCHES, "test_batch", "batches.meta"])
    assert b"numpy.core.multiarray" in (folder / "test_batch").read_bytes()
    assert b"_codecs" not in (folder / "test_batch").read_bytes()

    train = cifar("train", root=str(tmp_path), val_size=0)
    test = cifar("test", root=str(tmp_path))
    official = truth["train_data"].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(train.images, official)
    np.testing.assert_array_equal(train.targets, truth["train_labels"])
    np.testing.assert_array_equal(test.targets, truth["test_labels"])
    assert test.classes[:2] == ["airplane", "automobile"]


def test_python3_protocol2_copies_read(tmp_path: Path) -> None:
    """The fakes are Python 3 pickles (protocol 2, ``numpy._core``, ``_codecs.encode``)."""
    truth = write_cifar100(tmp_path)
    test = cifar("test", root=str(tmp_path), variant="cifar100")
    np.testing.assert_array_equal(test.targets, truth["test_labels"])
    assert len(test.classes) == 100
