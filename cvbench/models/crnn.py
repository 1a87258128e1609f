"""CRNN (Shi, Bai and Yao, "An End-to-End Trainable Neural Network for Image-based Sequence
Recognition and Its Application to Scene Text Recognition", TPAMI 2017, arXiv 1507.05717): a
VGG-style CNN that collapses a 32-pixel-high text image to one row of feature columns, a
sequence head over the columns, and per-column class scores trained with CTC (class 0 is the
blank).

The CNN follows the paper's seven convolutions (64, 128, 256, 256, 512, 512, 512 channels at
``width=64``; batch norm after the fifth and sixth, and here after every one, which trains
faster from scratch), with max pooling 2x2, 2x2, 2x1, 2x1 and 2x1 (stride 1 across), so a
height of 32 becomes 1 and a width W becomes ``T = W // 4`` time steps (the paper's last 2x2
valid convolution, giving W/4 + 1, is replaced by a pooling that keeps T exactly W // 4).
Sequence heads: ``bilstm``, two bidirectional LSTM layers as in the paper, or ``conv``, a stack
of residual 1-D convolutions over the columns (no recurrence: at 128 units, about 2.5 times
faster than the two BiLSTM layers on one CPU thread, forward and backward).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

HEADS = ("bilstm", "conv")
DOWNSAMPLE = 4
"""Input pixels per time step along the width."""


def _conv(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]


class ConvHead(nn.Module):
    """Residual 1-D convolutions over the time steps (kernel 3, same length).

    Args:
        channels: features per time step, in and out.
        layers: residual blocks.
        dropout: before each block's second convolution.
    """

    def __init__(self, channels: int, layers: int = 2, dropout: float = 0.1) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.Conv1d(channels, channels, 3, padding=1, bias=False),
                nn.BatchNorm1d(channels),
                nn.ReLU(True),
                nn.Dropout(dropout),
                nn.Conv1d(channels, channels, 3, padding=1, bias=False),
                nn.BatchNorm1d(channels),
            )
            for _ in range(layers)
        )

    def forward(self, x: Tensor) -> Tensor:
        """(B, T, C) -> (B, T, C)."""
        x = x.transpose(1, 2)
        for block in self.blocks:
            x = torch.relu(x + block(x))
        return x.transpose(1, 2)


class BiLSTMHead(nn.Module):
    """Stacked bidirectional LSTMs (the paper's two layers of 256 units each way).

    Args:
        channels: features per time step in.
        hidden: units per direction.
        layers: stacked bidirectional layers.
        dropout: between layers.
    """

    def __init__(self, channels: int, hidden: int, layers: int = 2, dropout: float = 0.1) -> None:
        super().__init__()
        self.lstm = nn.LSTM(
            channels,
            hidden,
            num_layers=layers,
            bidirectional=True,
            batch_first=True,
            dropout=dropout if layers > 1 else 0.0,
        )
        self.out_channels = 2 * hidden

    def forward(self, x: Tensor) -> Tensor:
        """(B, T, C) -> (B, T, 2 * hidden)."""
        return self.lstm(x)[0]


class CRNN(nn.Module):
    """CNN + sequence head + per-step classifier (module docstring).

    Args:
        in_channels: image channels (1: grayscale, 3: RGB).
        num_classes: K = characters + 1 (the CTC blank, class 0).
        width: channels of the first convolution (the paper: 64); the others are 2, 4, 4, 8, 8
            and 8 times it.
        head: "bilstm" (the paper's) or "conv".
        hidden: the head's units: LSTM units per direction, or the conv head's channels.
        head_layers: LSTM layers or residual conv blocks.
        dropout: in the head and before the classifier.
    """

    def __init__(
        self,
        *,
        in_channels: int = 1,
        num_classes: int,
        width: int = 64,
        head: Literal["bilstm", "conv"] = "bilstm",
        hidden: int = 256,
        head_layers: int = 2,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"model.head must be one of {list(HEADS)}, got {head!r}")
        if num_classes < 2:
            raise ValueError(
                f"model.num_classes must be >= 2 (blank + a character), got {num_classes}"
            )
        c = [width * m for m in (1, 2, 4, 4, 8, 8, 8)]
        self.cnn = nn.Sequential(
            *_conv(in_channels, c[0]),
            nn.MaxPool2d(2, 2),  # 16 x W/2
            *_conv(c[0], c[1]),
            nn.MaxPool2d(2, 2),  # 8 x W/4
            *_conv(c[1], c[2]),
            *_conv(c[2], c[3]),
            nn.MaxPool2d((2, 1), (2, 1)),  # 4 x W/4
            *_conv(c[3], c[4]),
            *_conv(c[4], c[5]),
            nn.MaxPool2d((2, 1), (2, 1)),  # 2 x W/4
            *_conv(c[5], c[6]),
            nn.MaxPool2d((2, 1), (2, 1)),  # 1 x W/4
        )
        if head == "bilstm":
            self.head: nn.Module = BiLSTMHead(c[6], hidden, head_layers, dropout)
            features = 2 * hidden
        else:
            self.head = nn.Sequential(
                nn.Linear(c[6], hidden), ConvHead(hidden, head_layers, dropout)
            )
            features = hidden
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(features, num_classes)
        self.num_classes = num_classes

    def forward(self, images: Tensor) -> Tensor:
        """Per-time-step class scores.

        Args:
            images: (B, C, 32, W) float in [0, 1], W >= 4.

        Returns:
            (B, T, K) logits, T = W // 4, K = ``num_classes`` (class 0: the blank).
        """
        if images.shape[-2] != 32:
            raise ValueError(f"CRNN takes images 32 pixels high, got {tuple(images.shape)}")
        features = self.cnn(images * 2.0 - 1.0)  # (B, C, 1, T)
        sequence = features.squeeze(2).transpose(1, 2)  # (B, T, C)
        return self.classifier(self.dropout(self.head(sequence)))

    @staticmethod
    def output_lengths(widths: Tensor, time_steps: int) -> Tensor:
        """The time steps that see each image's own pixels (not the right padding).

        Args:
            widths: (B,) int64 image widths in pixels before padding.
            time_steps: T of the batch's output.

        Returns:
            (B,) int64 in [1, T]: ceil(width / 4).

        >>> CRNN.output_lengths(torch.tensor([128, 50, 2]), 32).tolist()
        [32, 13, 1]
        """
        lengths = torch.div(widths + DOWNSAMPLE - 1, DOWNSAMPLE, rounding_mode="floor")
        return lengths.clamp(1, time_steps).to(torch.int64)
