"""Checkpoints on a disk that refuses the write: no truncated file is left beside the good ones,
an earlier checkpoint of the same name is kept, and the error names the checkpoint.

The refusal is real: a file-size limit (``RLIMIT_FSIZE``, with ``SIGXFSZ`` ignored, makes the
kernel fail the write with ``EFBIG``) set in a child process, so the test process is unaffected;
and, where this process may mount (root on Linux), a full tmpfs in a private mount namespace.
"""

from __future__ import annotations

import errno
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import unshare_works

from cvbench.run.checkpoint_io import AtomicCheckpointIO

LIMIT = 4096  # bytes; the checkpoints written after the limit are larger


def run_script(script: str, *args: str) -> dict:
    """Run ``script`` in a child Python with ``args``; the JSON it printed last."""
    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


SAVE_PAST_A_FILE_SIZE_LIMIT = """
import json, resource, signal, sys, torch
from pathlib import Path
from cvbench.cli.errors import one_line
from cvbench.run.checkpoint_io import AtomicCheckpointIO
folder, limit = Path(sys.argv[1]), int(sys.argv[2])
io = AtomicCheckpointIO()
io.save_checkpoint({"epoch": 0, "w": torch.arange(10.0)}, folder / "epoch_000.ckpt")
io.save_checkpoint({"epoch": 0, "w": torch.arange(10.0)}, folder / "last.ckpt")
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
errors = []
for name in ("epoch_001.ckpt", "last.ckpt"):
    try:
        io.save_checkpoint({"epoch": 1, "w": torch.arange(100_000.0)}, folder / name)
    except OSError as err:
        errors.append({"errno": err.errno, "filename": err.filename, "line": one_line(err)})
print(json.dumps(errors))
"""


@pytest.mark.slow
def test_a_checkpoint_refused_by_the_disk_leaves_no_part_and_names_the_file(
    tmp_path: Path,
) -> None:
    errors = run_script(SAVE_PAST_A_FILE_SIZE_LIMIT, str(tmp_path), str(LIMIT))
    assert [e["errno"] for e in errors] == [errno.EFBIG, errno.EFBIG]
    for error, name in zip(errors, ("epoch_001.ckpt", "last.ckpt"), strict=True):
        assert error["filename"] == str(tmp_path / name)
        assert error["line"] == f"cannot use {tmp_path / name}: File too large"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch_000.ckpt", "last.ckpt"]
    for name in ("epoch_000.ckpt", "last.ckpt"):  # the good ones, the old last.ckpt included
        good = torch.load(tmp_path / name, weights_only=True)
        assert good["epoch"] == 0 and torch.equal(good["w"], torch.arange(10.0))


TRAIN_PAST_A_FILE_SIZE_LIMIT = """
import json, os, resource, signal, sys
from pathlib import Path
import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.demos.boring_classes import BoringModel
from cvbench.cli.errors import one_line
from cvbench.run.checkpoint_io import AtomicCheckpointIO

folder, limit, strategy = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]

class LimitFileSize(pl.Callback):
    # From the third epoch on, no file may grow past `limit` bytes (a disk that fills).
    def on_train_epoch_start(self, trainer, module):
        if trainer.current_epoch == 2:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

io = AtomicCheckpointIO()
trainer = pl.Trainer(
    accelerator="cpu", devices=1, strategy=strategy, plugins=[io], max_epochs=4,
    limit_train_batches=2, limit_val_batches=0, logger=False, enable_progress_bar=False,
    enable_model_summary=False,
    callbacks=[
        LimitFileSize(),
        ModelCheckpoint(dirpath=folder, filename="epoch_{epoch:03d}", save_top_k=-1,
                        auto_insert_metric_name=False),
    ],
)
result = {
    "plugin": trainer.strategy.checkpoint_io is io,
    "strategy": type(trainer.strategy).__name__,
}
try:
    trainer.fit(BoringModel())
except OSError as err:
    result.update(errno=err.errno, filename=err.filename, line=one_line(err))
print(json.dumps(result))
"""


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["auto", "ddp"])
def test_training_on_a_full_disk_keeps_the_good_checkpoints(tmp_path: Path, strategy: str) -> None:
    """A trainer given the plugin (single device, and DDP whose main process writes): the
    epoch refused by the disk leaves no epoch_002.ckpt, epochs 0 and 1 load intact."""
    folder = tmp_path / "checkpoints"
    result = run_script(TRAIN_PAST_A_FILE_SIZE_LIMIT, str(folder), str(LIMIT), strategy)
    assert result["plugin"] is True
    assert result["strategy"] == ("DDPStrategy" if strategy == "ddp" else "SingleDeviceStrategy")
    refused = folder / "epoch_002.ckpt"
    assert (result["errno"], result["filename"]) == (errno.EFBIG, str(refused))
    assert result["line"] == f"cannot use {refused}: File too large"
    assert sorted(p.name for p in folder.iterdir()) == ["epoch_000.ckpt", "epoch_001.ckpt"]
    for epoch in (0, 1):
        good = torch.load(folder / f"epoch_{epoch:03d}.ckpt", weights_only=True)
        assert good["epoch"] == epoch and set(good["state_dict"]) == {"layer.weight", "layer.bias"}


def test_a_checkpoint_is_written_whole_with_the_permissions_of_any_file(tmp_path: Path) -> None:
    io = AtomicCheckpointIO()
    path = tmp_path / "new" / "last.ckpt"
    io.save_checkpoint({"w": torch.ones(3)}, path)
    io.save_checkpoint({"w": torch.zeros(3)}, path)  # replaced, not appended to
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.zeros(3))
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt"]
    plain = tmp_path / "plain"
    plain.write_bytes(b"")
    assert path.stat().st_mode == plain.stat().st_mode  # not mkstemp's 0600


SAVE_ON_A_FULL_DISK = """
import json, os, sys, torch
from pathlib import Path
from cvbench.run.checkpoint_io import AtomicCheckpointIO
folder = Path(sys.argv[1])
io = AtomicCheckpointIO()
io.save_checkpoint({"epoch": 0, "w": torch.arange(10.0)}, folder / "epoch_000.ckpt")
with open(folder / "filler", "wb", buffering=0) as filler:  # the rest of the disk taken
    try:
        while filler.write(b"x" * 4096):
            pass
    except OSError:
        pass
result = {}
try:
    io.save_checkpoint({"epoch": 1, "w": torch.arange(100_000.0)}, folder / "epoch_001.ckpt")
except OSError as err:
    result.update(errno=err.errno, filename=err.filename)
os.unlink(folder / "filler")
good = torch.load(folder / "epoch_000.ckpt", weights_only=True)
result.update(files=sorted(os.listdir(folder)), good=good["w"].tolist())
print(json.dumps(result))
"""


@pytest.mark.slow
@pytest.mark.skipif(not unshare_works(), reason="mounting a small file system needs root")
def test_a_checkpoint_on_a_full_file_system_leaves_no_truncated_file(tmp_path: Path) -> None:
    """A real full disk: the run directory on a 1 MiB tmpfs (private to the child), the system
    temp folder elsewhere, where Lightning's own writer would leave a truncated file."""
    folder = tmp_path / "disk"
    folder.mkdir()
    mount = f"mount -t tmpfs -o size=1m tmpfs {folder}"
    script = f'{mount} && exec "$0" -c "$1" {folder}'
    done = subprocess.run(
        ["unshare", "-m", "sh", "-c", script, sys.executable, SAVE_ON_A_FULL_DISK],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert (result["errno"], result["filename"]) == (errno.ENOSPC, str(folder / "epoch_001.ckpt"))
    assert result["files"] == ["epoch_000.ckpt"]
    assert result["good"] == list(range(10))
