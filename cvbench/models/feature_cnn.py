"""A small CNN classifier that serves as the judge (feature network) of ``fid@<net>`` and
``kid@<net>`` where the standard TF-Inception is not available (the embedded sets): trained by
cvbench on the run's own train split (``cvbench.tasks.judges``), its penultimate layer gives the
features and its last layer the class logits (for IS). Heusel et al.'s FID formula on another
network's features is not an FID: its numbers are comparable only under the same judge name.
"""

from __future__ import annotations

from torch import Tensor, nn


def _block(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    """3x3 convolution (no bias), batch norm, ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class FeatureCNN(nn.Module):
    """Three conv stages (width, 2 width, 4 width channels; the first with stride 2, max
    pooling after the second, global average pooling after the third), a ``feature_dim``
    fully connected ReLU layer (the features) and the class logits. Input RGB in [0, 1], any
    size >= 4 px (mapped to [-1, 1] inside).

    Implements the judge protocol: ``name``, ``feature_dim``, ``num_logits``, ``protocol`` and
    ``forward(images) -> (features, logits)``. The training recipe rides along (``cache_path``,
    ``train_*``): ``cvbench.tasks.judges.prepare_judge`` trains it once on a run's train split
    and caches the weights at ``cache_path``.

    Args:
        name: the judge's name in metric keys (``fid@<name>``); must name its data and recipe.
        num_classes: the class logits.
        width: channels of the first stage.
        feature_dim: the penultimate layer's width (D).
        cache_path: where its trained weights are cached (None: used as built).
        train_epochs: epochs of its training.
        train_lr: peak learning rate of its training (Adam, one-cycle).
        train_seed: seed of its training (data order).
        train_batch_size: batch size of its training (not the run's).
    """

    def __init__(
        self,
        *,
        name: str,
        num_classes: int,
        width: int = 32,
        feature_dim: int = 128,
        cache_path: str | None = None,
        train_epochs: int = 5,
        train_lr: float = 3e-3,
        train_seed: int = 0,
        train_batch_size: int = 64,
    ) -> None:
        super().__init__()
        self.name = name
        self.feature_dim, self.num_logits = feature_dim, num_classes
        self.cache_path = cache_path
        self.train_epochs, self.train_lr, self.train_seed = train_epochs, train_lr, train_seed
        self.train_batch_size = train_batch_size
        self.body = nn.Sequential(
            _block(3, width, stride=2),
            _block(width, 2 * width),
            nn.MaxPool2d(2),
            _block(2 * width, 4 * width),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(4 * width, feature_dim),
            nn.ReLU(inplace=True),
        )
        self.classifier = nn.Linear(feature_dim, num_classes)
        self.protocol = (
            f"{name}: FeatureCNN (width {width}), features of its {feature_dim}-d penultimate "
            f"layer, {num_classes} class logits, images as given (no resize), trained by cvbench "
            f"on the run's train split ({train_epochs} epochs, seed {train_seed})"
        )

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Features and class logits.

        Args:
            images: (B, 3, H, W) float in [0, 1].

        Returns:
            features (B, feature_dim) float32 (>= 0) and logits (B, num_classes) float32.
        """
        features = self.body(images * 2 - 1)
        return features.float(), self.classifier(features).float()
