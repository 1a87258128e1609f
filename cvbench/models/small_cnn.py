"""A small VGG-style CNN (conv-BN-ReLU blocks, global average pooling), cvbench's default model.

Sized for tiny images (scikit-learn's 8x8 digits, MNIST, CIFAR); works for any input of at
least 2x2 pixels.
"""

from __future__ import annotations

from torch import Tensor, nn


def conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    """3x3 convolution (padding 1, no bias), batch norm, ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class SmallCNN(nn.Module):
    """Two stages of two conv blocks (width, 2 x width channels), 2x2 max pooling between.

    Args:
        in_channels: channels of the input image.
        num_classes: number of output logits.
        width: channels of the first stage.
        dropout: dropout before the classifier.
    """

    def __init__(
        self, in_channels: int, num_classes: int, width: int = 32, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.features = nn.Sequential(
            conv_bn_relu(in_channels, width),
            conv_bn_relu(width, width),
            nn.MaxPool2d(2),
            conv_bn_relu(width, 2 * width),
            conv_bn_relu(2 * width, 2 * width),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * width, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        """Logits.

        Args:
            x: (B, in_channels, H, W) float, normalized.

        Returns:
            (B, num_classes) float logits.
        """
        return self.classifier(self.features(x))
