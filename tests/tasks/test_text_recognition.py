"""The text-recognition task through the real config: a tiny run_train writes the metrics of the
test split and of the unseen-font split, the protocol, the per-word CSVs and prediction files;
a tiny CRNN overfits a handful of words to 100% word accuracy (greedy and beam decoding);
configuration errors name their key."""

from __future__ import annotations

import csv
import json
from functools import partial
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from cvbench.data.batches import TextBatch
from cvbench.data.charset import Charset
from cvbench.data.formats.transcriptions import read_transcriptions
from cvbench.metrics.text_recognition import TextRecognitionMetric
from cvbench.models.crnn import CRNN
from cvbench.run.build import build_datamodule, build_task
from cvbench.run.train import run_train
from cvbench.tasks.optimization import Optimization
from cvbench.tasks.text_recognition import TextRecognitionTask

TINY = (
    "experiment=ocr/crnn_synth",
    "data.records.num_images={train: 16, val: 8, test: 8, test_unseen_font: 6}",
    "data.batch_size=8",
    "model.width=4",
    "model.hidden=16",
    "model.head_layers=1",
    "trainer.max_epochs=1",
    "task.callbacks.report.num_samples=4",
)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


@pytest.mark.slow
def test_tiny_run_writes_every_split_and_the_protocol(make_cfg) -> None:
    cfg = make_cfg(*TINY)
    metrics = run_train(cfg)
    run_dir = Path(cfg.paths.output_dir)
    recorded = json.loads((run_dir / "metrics.json").read_text())
    for prefix, words in (("", 8), ("unseen_font_", 6)):
        for key in ("word_acc", "cer", "one_minus_ned", "wer"):
            assert f"test/{prefix}{key}" in recorded, key
        assert 0 <= metrics[f"test/{prefix}word_acc"] <= 100
        assert metrics[f"test/{prefix}num_words"] == words
    for stage in ("val", "test"):
        assert metrics[f"{stage}/text_protocol"].startswith("lower_alnum: lowercase")
        assert metrics[f"{stage}/loss"] > 0
    assert recorded["test/text_protocol"] == metrics["test/text_protocol"]
    for split, words in (("test", 8), ("test_unseen_font", 6)):
        rows = read_csv(run_dir / f"{split}_per_image.csv")
        assert list(rows[0]) == [
            "index",
            "name",
            "truth",
            "prediction",
            "word_acc",
            "one_minus_ned",
        ]
        assert [int(r["index"]) for r in rows] == list(range(words))
        prefix = "" if split == "test" else "unseen_font_"
        for column in ("word_acc", "one_minus_ned"):
            mean = sum(float(r[column]) for r in rows) / words
            assert mean == pytest.approx(metrics[f"test/{prefix}{column}"], abs=1e-5)
        predictions = read_transcriptions(run_dir / f"{split}_predictions.txt", allow_empty=True)
        assert predictions == [(r["name"], r["prediction"]) for r in rows]
        with Image.open(run_dir / f"{split}_samples.png") as grid:  # 4 words, one per row
            assert grid.width > 0 and grid.height > 4 * 50  # 4 words, a row each


def overfit(task: TextRecognitionTask, batch: TextBatch, max_steps: int) -> int:
    """Train on one batch until every word is read right (checked every 10 steps) or
    ``max_steps``; the steps taken."""
    optimizer = torch.optim.Adam(task.net.parameters(), lr=5e-3)
    for step in range(1, max_steps + 1):
        task.train()
        optimizer.zero_grad()
        task.ctc_losses(task(batch.images), batch).mean().backward()
        optimizer.step()
        if step % 10 == 0 and task.eval().read(batch.images, batch.widths) == batch.texts:
            break
    task.eval()
    return step


@pytest.mark.slow
def test_a_tiny_crnn_overfits_a_handful_of_words(make_cfg) -> None:
    """Trained on 8 words alone, it reads each of them right, greedily and by beam search."""
    cfg = make_cfg(*TINY, "model.width=8", "model.hidden=32", "data.records.num_images.val=8")
    datamodule = build_datamodule(cfg)
    datamodule.setup("validate")
    batch = next(iter(datamodule.val_dataloader()))
    torch.manual_seed(0)
    task = build_task(cfg)
    assert task.read(batch.images, batch.widths) != batch.texts  # not by chance
    overfit(task, batch, max_steps=300)
    assert task.read(batch.images, batch.widths) == batch.texts
    task.decoder, task.beam_width = "beam", 5
    assert task.read(batch.images, batch.widths) == batch.texts


def test_the_charset_and_the_model_must_agree(make_cfg) -> None:
    cfg = make_cfg(*TINY, "model.num_classes=20")
    with pytest.raises(ValueError, match=r"model.num_classes=20 .*data.charset.num_classes"):
        build_task(cfg)


def test_the_decoder_is_checked(make_cfg) -> None:
    with pytest.raises(ValueError, match="task.module.decoder"):
        build_task(make_cfg(*TINY, "task.module.decoder=viterbi"))


def test_the_loss_counts_each_words_own_time_steps() -> None:
    """A word 20 px wide in a batch padded to 64 px is scored over its ceil(20 / 4) = 5 time
    steps, not the batch's 16, and divided by its length."""
    torch.manual_seed(0)
    net = CRNN(num_classes=5, width=4, head="conv", hidden=8, head_layers=1).eval()
    task = TextRecognitionTask(
        charset=Charset("abcd"),
        nets={"net": net},
        optimization={"net": Optimization(optimizer=partial(torch.optim.Adam, lr=1e-3))},
        metrics={"text": TextRecognitionMetric()},
    )
    batch = TextBatch(
        images=torch.rand(2, 1, 32, 64),
        widths=torch.tensor([64, 20]),
        texts=["abca", "db"],
        targets=torch.tensor([[1, 2, 3, 1], [4, 2, 0, 0]]),
        lengths=torch.tensor([4, 2]),
        names=["a.png", "b.png"],
        indices=torch.tensor([0, 1]),
    )
    logits = task(batch.images)
    losses = task.ctc_losses(logits, batch)
    log_probs = logits.log_softmax(-1)
    for i, steps in enumerate((16, 5)):
        alone = F.ctc_loss(
            log_probs[i : i + 1, :steps].transpose(0, 1),
            batch.targets[i : i + 1, : batch.lengths[i]],
            torch.tensor([steps]),
            batch.lengths[i : i + 1],
            reduction="sum",
        )
        assert losses[i].item() == pytest.approx(alone.item() / int(batch.lengths[i]), rel=1e-5)
