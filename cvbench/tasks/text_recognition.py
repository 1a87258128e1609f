"""Text recognition trained with CTC (Graves et al., ICML 2006), as CRNN (Shi et al., 2015):
the network gives per-time-step class scores (B, T, K), class 0 the blank; training minimises
the CTC loss of each word's codes (``torch.nn.CTCLoss``, over each image's own time steps, not
those of its right padding; divided by the word's length and averaged, as clovaai's
deep-text-recognition-benchmark), and evaluation decodes greedily (best path) or by prefix
beam search (:mod:`cvbench.tasks.ctc`), then scores the words with the task's
:class:`~cvbench.metrics.text_recognition.TextRecognitionMetric` under its named protocol
(``{stage}/word_acc``, ``cer``, ``one_minus_ned``, ``wer``; ``{stage}/text_protocol`` records
the protocol).

Each extra test split of the data (``test_split_names``: ``test_unseen_font``) is scored by its
own copy of the metric, its keys prefixed with the split's name less ``test_``:
``test/unseen_font_word_acc``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.distributed as dist
from torch import Tensor, nn

from cvbench.data.batches import TextBatch
from cvbench.data.charset import Charset
from cvbench.metrics.text_recognition import TextRecognitionMetric
from cvbench.tasks.base import EVAL_STAGES, STAGES, TaskModule
from cvbench.tasks.ctc import beam_search_decode, greedy_decode

DECODERS = ("greedy", "beam")
MAIN_SPLIT = "test"


def split_prefix(split: str) -> str:
    """The key prefix of a test split's metrics: "" for the test split itself.

    >>> split_prefix("test"), split_prefix("test_unseen_font"), split_prefix("ic13")
    ('', 'unseen_font_', 'ic13_')
    """
    if split == MAIN_SPLIT:
        return ""
    return f"{split.removeprefix(MAIN_SPLIT + '_')}_"


@dataclass
class TextRecognitionTestOutput:
    """What the last test leaves for the report.

    Attributes:
        splits: the test splits in the data's order (``test`` first).
        words: per split, one dict per word in dataset-index order: ``index``, ``name``,
            ``truth``, ``prediction``, ``right`` (1/0), ``one_minus_ned``.
        samples: per split, the first images this process saw: (H, W) or (H, W, 3) uint8 crops
            without their padding, with their dataset index.
        protocol: the protocol the words are scored under.
    """

    splits: list[str]
    words: dict[str, list[dict[str, Any]]]
    samples: dict[str, list[tuple[int, Any]]] = field(default_factory=dict)
    protocol: str = "lower_alnum"


class TextRecognitionTask(TaskModule):
    """Trains ``net`` (images (B, C, 32, W) -> (B, T, K) logits, with a static
    ``output_lengths(widths, T)`` giving each image's valid time steps; without it every step
    counts) on :class:`~cvbench.data.batches.TextBatch` batches (module docstring).

    Args:
        charset: the data's characters (codes 1..K-1).
        decoder: "greedy" (best path) or "beam" (prefix beam search).
        beam_width: prefixes the beam search keeps.
        num_samples: images per test split kept for the report's sample grid.
        **base: ``nets`` (one, ``net``), ``optimization`` and ``metrics`` (one
            ``TextRecognitionMetric``), see :class:`~cvbench.tasks.base.TaskModule`.
    """

    metric_stages = EVAL_STAGES
    loss_stages = STAGES
    progress_bar_key = "val/word_acc"

    def __init__(
        self,
        *,
        charset: Charset,
        decoder: Literal["greedy", "beam"] = "greedy",
        beam_width: int = 10,
        num_samples: int = 16,
        **base: Any,
    ) -> None:
        super().__init__(**base)
        if decoder not in DECODERS:
            raise ValueError(
                f"task.module.decoder must be one of {list(DECODERS)}, got {decoder!r}"
            )
        if beam_width < 1:
            raise ValueError(f"task.module.beam_width must be >= 1, got {beam_width}")
        num_classes = getattr(self.net, "num_classes", charset.num_classes)
        if num_classes != charset.num_classes:
            raise ValueError(
                f"model.num_classes={num_classes} but the {charset.describe()} needs "
                f"{charset.num_classes} (its characters + the CTC blank): set it to "
                "${data.charset.num_classes}"
            )
        self.charset, self.decoder, self.beam_width = charset, decoder, beam_width
        self.num_samples = num_samples
        self.ctc = nn.CTCLoss(blank=0, reduction="none", zero_infinity=True)
        self.metric("test", TextRecognitionMetric)  # declared, else a clear error now
        self.extra_metrics = nn.ModuleDict()
        self.test_splits: list[str] = [MAIN_SPLIT]
        self._names: dict[str, dict[int, str]] = {}
        self._samples: dict[str, list[tuple[int, Any]]] = {}

    # --- inference ---------------------------------------------------------------------------

    def forward(self, images: Tensor) -> Tensor:
        """(B, T, K) logits of images (B, C, 32, W) in [0, 1]."""
        return self.net(images)

    def time_steps(self, widths: Tensor, steps: int) -> Tensor:
        """(B,) int64 valid time steps of images ``widths`` pixels wide, in [1, ``steps``]."""
        lengths = getattr(self.net, "output_lengths", None)
        if lengths is None:
            return torch.full_like(widths, steps, dtype=torch.int64)
        return lengths(widths, steps).to(torch.int64)

    def decode(self, logits: Tensor, lengths: Tensor) -> list[str]:
        """The words read from logits (B, T, K) over ``lengths`` (B,) time steps."""
        log_probs = logits.detach().float().log_softmax(-1)
        if self.decoder == "beam":
            codes = beam_search_decode(log_probs, lengths, self.beam_width)
        else:
            codes = greedy_decode(log_probs, lengths)
        return [self.charset.decode(c) for c in codes]

    @torch.no_grad()
    def read(self, images: Tensor, widths: Tensor) -> list[str]:
        """The words in images (B, C, 32, W) in [0, 1], each ``widths`` (B,) pixels wide."""
        logits = self(images)
        return self.decode(logits, self.time_steps(widths, logits.shape[1]))

    # --- training ----------------------------------------------------------------------------

    def ctc_losses(self, logits: Tensor, batch: TextBatch) -> Tensor:
        """(B,) CTC loss of each word, divided by its length (at least 1)."""
        steps = self.time_steps(batch.widths, logits.shape[1])
        log_probs = logits.float().log_softmax(-1).transpose(0, 1)  # (T, B, K)
        loss = self.ctc(log_probs, batch.targets, steps, batch.lengths)
        return loss / batch.lengths.clamp(min=1).to(loss.dtype)

    def training_step(self, batch: TextBatch, batch_idx: int) -> Tensor:
        losses = self.ctc_losses(self(batch.images), batch)
        loss = losses.mean()
        self.update_loss("train", losses)
        self.log_step(batch_idx, {"loss_step": loss}, batch_size=len(losses))
        return loss

    # --- evaluation --------------------------------------------------------------------------

    def _eval_step(self, batch: TextBatch, stage: str, split: str) -> None:
        logits = self(batch.images)
        if split == MAIN_SPLIT or stage == "val":
            self.update_loss(stage, self.ctc_losses(logits, batch))
        preds = self.decode(logits, self.time_steps(batch.widths, logits.shape[1]))
        self._split_metric(stage, split).update(preds, batch.texts, batch.indices)
        if stage != "test":
            return
        names = self._names.setdefault(split, {})
        names.update(zip(batch.indices.tolist(), batch.names, strict=True))
        samples = self._samples.setdefault(split, [])
        for i in range(min(len(preds), self.num_samples - len(samples))):
            crop = batch.images[i, :, :, : int(batch.widths[i])]
            image = (crop.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu()
            samples.append((int(batch.indices[i]), image.squeeze(-1).numpy()))

    def _split_metric(self, stage: str, split: str) -> TextRecognitionMetric:
        if split == MAIN_SPLIT or stage != "test":
            return self.metric(stage, TextRecognitionMetric)
        return self.extra_metrics[split]

    def validation_step(self, batch: TextBatch, batch_idx: int) -> None:
        with torch.no_grad():
            self._eval_step(batch, "val", "val")

    def test_step(self, batch: TextBatch, batch_idx: int, dataloader_idx: int = 0) -> None:
        with torch.no_grad():
            self._eval_step(batch, "test", self.test_splits[dataloader_idx])

    def on_test_start(self) -> None:
        """One metric per extra test split the data names (``test_split_names``)."""
        datamodule = getattr(self.trainer, "datamodule", None)
        self.test_splits = list(getattr(datamodule, "test_split_names", None) or [MAIN_SPLIT])
        if self.test_splits[0] != MAIN_SPLIT:
            raise ValueError(
                f"the data's test_split_names {self.test_splits} must start with {MAIN_SPLIT!r}"
            )
        base = self.metric("test", TextRecognitionMetric)
        self.extra_metrics = nn.ModuleDict(
            {split: base.clone() for split in self.test_splits[1:]}
        ).to(self.device)
        for metric in self.extra_metrics.values():
            metric.reset()
        self._names, self._samples = {}, {}

    def epoch_extras(self, stage: str) -> dict[str, float | str | None]:
        """The protocol of ``stage``; at test, also every extra split's scores and the words
        for the report (``test_output``)."""
        if stage == "train":
            return {}
        metric = self.metric(stage, TextRecognitionMetric)
        values: dict[str, float | str | None] = {f"{stage}/text_protocol": metric.protocol_line}
        if stage != "test":
            return values
        words = {MAIN_SPLIT: self._words(MAIN_SPLIT, metric)}
        for split, extra in self.extra_metrics.items():
            for key, value in extra.compute().items():
                number = float(value) if isinstance(value, Tensor) else value
                values[f"test/{split_prefix(split)}{key}"] = number
            words[split] = self._words(split, extra)
            extra.reset()
        self.test_output = TextRecognitionTestOutput(
            splits=list(self.test_splits),
            words=words,
            samples=self._samples,
            protocol=metric.protocol,
        )
        return values

    def _words(self, split: str, metric: TextRecognitionMetric) -> list[dict[str, Any]]:
        """The words ``metric`` scored last (every process's, each dataset index once, in
        index order) with their image names."""
        names = self._names.get(split, {})
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            gathered: list[Any] = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, names)
            names = {k: v for part in reversed(gathered) for k, v in part.items()}
        return [
            {
                "index": row["index"],
                "name": names.get(row["index"], str(row["index"])),
                "truth": row["target"],
                "prediction": row["prediction"],
                "right": int(row["correct"]),
                "one_minus_ned": row["one_minus_ned"],
            }
            for row in metric.last_per_image
        ]
