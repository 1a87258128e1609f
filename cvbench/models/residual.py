"""Residual learning over a fixed restoration: ``base(x) + net(x)``, the network learning only
what the base misses (as VDSR, Kim et al. 2016, learns the residual over bicubic upsampling).

With ``zero_init`` the network's last convolution starts at zero, so the model starts exactly
as the base (the task's trivial baseline) and training moves it from there: a short CPU run
cannot end below the baseline by starting from noise.
"""

from __future__ import annotations

from torch import Tensor, nn


def zero_last_conv(net: nn.Module) -> None:
    """Zero the weight and bias of the last ``nn.Conv2d`` that ``net.modules()`` yields."""
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError(f"{type(net).__name__} has no Conv2d to zero (model.zero_init)")
    nn.init.zeros_(convs[-1].weight)
    if convs[-1].bias is not None:
        nn.init.zeros_(convs[-1].bias)


class Residual(nn.Module):
    """``base(inputs) + net(inputs)``.

    Args:
        net: the trained network, inputs (B, C_in, h, w) -> (B, C_out, H, W); its last
            ``Conv2d`` must produce the output (zeroed when ``zero_init``).
        base: a fixed restoration of the same shapes (e.g.
            ``cvbench.models.restoration_baselines.MeanFill``); it gets no gradient.
        zero_init: start the network's output at zero.
    """

    def __init__(self, *, net: nn.Module, base: nn.Module, zero_init: bool = True) -> None:
        super().__init__()
        self.net = net
        self.base = base
        if zero_init:
            zero_last_conv(net)

    def forward(self, inputs: Tensor) -> Tensor:
        """(B, C_in, h, w) -> (B, C_out, H, W): the base's output plus the network's."""
        return self.base(inputs).detach() + self.net(inputs)
