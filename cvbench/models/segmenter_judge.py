"""A segmenter as a judge: cvbench's small U-Net (:mod:`cvbench.models.unet`) trained by cvbench
to segment the target domain's images, for pix2pix's "FCN-score" (Isola et al., CVPR 2017,
section 4.2: an off-the-shelf segmenter of real photos applied to generated ones, its pixel
accuracy and IoU against the input label maps) and, through the global average of its deepest
encoder features, the features of ``fid@<name>`` / ``kid@<name>``.

It follows the judge protocol of :mod:`cvbench.models.judge` (``name``, ``feature_dim``,
``num_logits`` 0, ``protocol``, ``forward(images) -> (features, None)``) and adds
``segment(images) -> logits``. Its training recipe rides along (``cache_path``, ``train_*``):
``cvbench.tasks.translation_judges`` trains it once on a run's train split (target image,
label map) and caches the weights.
"""

from __future__ import annotations

from torch import Tensor, nn

from cvbench.models.unet import UNet


class SegmenterJudge(nn.Module):
    """A U-Net segmenter (batch norm) of RGB images in [0, 1] (normalized to [-1, 1] inside).

    Args:
        name: the judge's name in metric keys (``fid@<name>``); must name its data and recipe.
        num_classes: K, the segmentation classes (the data's ``num_classes``; None, data
            without label maps, is refused: such a run has no FCN-score).
        base_channels: width of the U-Net's first stage.
        depth: its poolings; the features are ``base_channels * 2**depth`` wide.
        cache_path: where its trained weights are cached (None: used as built).
        train_epochs: epochs of its training.
        train_lr: peak learning rate of its training (Adam, one-cycle).
        train_seed: seed of its training (initial weights, data order).
    """

    def __init__(
        self,
        *,
        name: str,
        num_classes: int | None,
        base_channels: int = 16,
        depth: int = 3,
        cache_path: str | None = None,
        train_epochs: int = 10,
        train_lr: float = 3e-3,
        train_seed: int = 0,
    ) -> None:
        super().__init__()
        if num_classes is None:
            raise ValueError(
                f"task.module.judge: {name} is a segmenter of the sources' label maps, but the "
                "data has none (data.num_classes=null): give data.palette or "
                "data.records.labels_dir with data.num_classes, or score PSNR / SSIM only with "
                "task.module.judge=null"
            )
        self.name = name
        self.num_classes = num_classes
        self.feature_dim, self.num_logits = base_channels * 2**depth, 0
        self.cache_path = cache_path
        self.train_epochs, self.train_lr, self.train_seed = train_epochs, train_lr, train_seed
        self.unet = UNet(
            in_channels=3, out_channels=num_classes, base_channels=base_channels, depth=depth
        )
        self.protocol = (
            f"{name}: U-Net segmenter (base {base_channels}, depth {depth}), features the "
            f"global average of its {self.feature_dim}-d deepest encoder stage, no logits, "
            f"images as given (no resize), trained by cvbench on the run's train split "
            f"(target images, label maps; {train_epochs} epochs, seed {train_seed})"
        )

    def segment(self, images: Tensor) -> Tensor:
        """Class logits (B, K, H, W) of images (B, 3, H, W) in [0, 1]."""
        return self.unet(images * 2 - 1)

    def forward(self, images: Tensor) -> tuple[Tensor, None]:
        """Judge features.

        Args:
            images: (B, 3, H, W) float in [0, 1].

        Returns:
            features (B, feature_dim) float32 (>= 0: after ReLU) and None (no class logits).
        """
        x = self.unet.stem(images * 2 - 1)
        for down in self.unet.down:
            x = down(x)
        return x.mean(dim=(2, 3)).float(), None
