"""Restoration models and baselines: Bicubic equals MATLAB's imresize written here from
MATLAB's documented algorithm; the trivial baselines give known answers; EDSR's parameter
counts match the paper's. (Every restoration model YAML builds, runs and trains a step in
tests/models/test_contracts.py.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from matlab_reference import imresize_reference

from cvbench.models.edsr import EDSR
from cvbench.models.espcn import ESPCN
from cvbench.models.restoration_baselines import Bicubic, Gray, MeanFill
from cvbench.models.srcnn import SRCNN


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("size", [(12, 9), (5, 17), (2, 3)])
def test_bicubic_equals_matlab_imresize(scale: int, size: tuple[int, int]) -> None:
    generator = torch.Generator().manual_seed(scale)
    images = torch.rand(2, 3, *size, generator=generator, dtype=torch.float64)
    output = Bicubic(scale=scale, uint8=False)(images)
    assert output.shape == (2, 3, size[0] * scale, size[1] * scale)
    assert output.dtype == torch.float64
    for image, out in zip(images, output, strict=True):
        expected = imresize_reference(image.numpy().transpose(1, 2, 0), scale).transpose(2, 0, 1)
        np.testing.assert_allclose(out.numpy(), expected, rtol=0, atol=1e-10)


def test_bicubic_keeps_dtype_constants_and_scale_one() -> None:
    images = torch.full((1, 3, 6, 7), 0.25)
    output = Bicubic(scale=2, uint8=False)(images)
    assert output.dtype == torch.float32
    torch.testing.assert_close(output, torch.full((1, 3, 12, 14), 0.25))
    ramp = torch.rand(1, 3, 5, 5)
    assert torch.equal(Bicubic(scale=1, uint8=False)(ramp), ramp)
    # MATLAB overshoots at a step edge (negative cubic lobes), it does not clamp
    step = torch.zeros(1, 1, 4, 8, dtype=torch.float64)
    step[..., 4:] = 1.0
    upsampled = Bicubic(scale=4, uint8=False)(step)
    assert upsampled.min() < 0 and upsampled.max() > 1


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_on_8bit_images_is_matlab_on_uint8(scale: int) -> None:
    """8-bit images (float32 k / 255) give MATLAB's uint8 result exactly: rounded half away
    from zero, clamped, ties included (integer inputs hit them at x2)."""
    levels = np.random.default_rng(scale).integers(0, 256, size=(9, 11, 3), dtype=np.uint8)
    images = torch.from_numpy(levels).permute(2, 0, 1)[None].float() / 255
    output = Bicubic(scale=scale)(images)
    expected = imresize_reference(levels, scale)  # uint8 in, uint8 out
    got = torch.round(output[0].double() * 255).permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(got, expected)


def test_bicubic_rounds_ties_half_away_from_zero() -> None:
    """At x2 the cubic weights are multiples of 1/128: a column of 64 among zeros gives
    29 * 64 / 128 = 14.5 next to it, which MATLAB's uint8 makes 15 (half to even: 14)."""
    levels = np.zeros((4, 8), dtype=np.uint8)
    levels[:, 4] = 64
    exact = imresize_reference(levels.astype(np.float64), 2)
    assert (exact == 14.5).any()
    output = Bicubic(scale=2)(torch.from_numpy(levels)[None, None].float() / 255)
    got = torch.round(output[0, 0].double() * 255).numpy()
    np.testing.assert_array_equal(got[exact == 14.5], 15)


# --- learned super-resolution models ---


@pytest.mark.parametrize("scale", [1, 2, 3, 4, 8])
def test_edsr_output_size_for_each_scale(scale: int) -> None:
    net = EDSR(scale=scale, num_blocks=1, num_features=8)
    assert net(torch.rand(1, 3, 5, 7)).shape == (1, 3, 5 * scale, 7 * scale)


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: EDSR(scale=5), "power of 2"),
        (lambda: EDSR(scale=2, channels=1), "rgb_mean"),
        (lambda: SRCNN(scale=0), "data.scale"),
        (lambda: SRCNN(scale=2, kernel_sizes=(9, 4, 5)), "odd"),
        (lambda: ESPCN(scale=2, activation="gelu"), "activation"),
        (lambda: Bicubic(scale=2.5), "data.scale"),
    ],
)
def test_bad_arguments_are_named(build, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


def test_edsr_parameter_counts_match_the_paper() -> None:
    """Counted by hand: head 3x3 conv 3 -> F, 2 convs F -> F per block, body conv, upsampler
    convs F -> 4F (one per x2 step) or F -> 9F (x3), tail conv F -> 3; all with biases."""

    def conv(c_in: int, c_out: int) -> int:
        return 9 * c_in * c_out + c_out

    def expected(blocks: int, feats: int, up: list[int]) -> int:
        return (
            conv(3, feats)
            + (2 * blocks + 1) * conv(feats, feats)
            + sum(conv(feats, s * s * feats) for s in up)
            + conv(feats, 3)
        )

    def count(**kwargs) -> int:
        with torch.device("meta"):
            return sum(p.numel() for p in EDSR(**kwargs).parameters())

    baseline_x2 = count(scale=2)
    assert baseline_x2 == expected(16, 64, [2]) == 1_369_859  # paper's baseline: ~1.4-1.5 M
    assert count(scale=4) == expected(16, 64, [2, 2])
    assert count(scale=3) == expected(16, 64, [3])
    full = {"num_blocks": 32, "num_features": 256, "res_scale": 0.1}
    assert count(scale=4, **full) == expected(32, 256, [2, 2])
    assert 42.5e6 < count(scale=4, **full) < 43.5e6  # the paper: 43 M


def test_srcnn_and_espcn_parameter_counts() -> None:
    assert sum(p.numel() for p in SRCNN(scale=3).parameters()) == (
        (3 * 81 * 64 + 64) + (64 * 25 * 32 + 32) + (32 * 25 * 3 + 3)
    )
    for scale in (2, 3, 4):
        assert sum(p.numel() for p in ESPCN(scale=scale).parameters()) == (
            (3 * 25 * 64 + 64) + (64 * 9 * 32 + 32) + (32 * 9 * 3 * scale**2 + 3 * scale**2)
        )


def zero_last_conv(net: torch.nn.Module) -> None:
    conv = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    torch.nn.init.zeros_(conv.weight)
    torch.nn.init.zeros_(conv.bias)


def test_skips_add_what_they_say() -> None:
    """With the last conv zeroed, the skip alone is the output: torch's bicubic upsampling
    (SRCNN residual, EDSR bicubic_skip) or EDSR's mean."""
    images = torch.rand(2, 3, 6, 5)
    bicubic = F.interpolate(images, size=(18, 15), mode="bicubic", align_corners=False)
    for net in (SRCNN(scale=3, residual=True), EDSR(scale=3, num_blocks=2, bicubic_skip=True)):
        zero_last_conv(net)
        torch.testing.assert_close(net(images), bicubic)
    net = EDSR(scale=3, num_blocks=2, rgb_mean=(0.1, 0.2, 0.3))
    zero_last_conv(net)
    expected = torch.tensor([0.1, 0.2, 0.3]).view(1, 3, 1, 1).expand(2, 3, 18, 15)
    torch.testing.assert_close(net(images), expected)


def test_espcn_pixel_shuffle_places_subpixels() -> None:
    """Channel c * s^2 + i * s + j of the last conv lands at sub-pixel (i, j) of channel c."""
    net = ESPCN(scale=2, channels=1)
    last = net.body[4]
    torch.nn.init.zeros_(last.weight)
    last.bias.data = torch.tensor([1.0, 2.0, 3.0, 4.0])
    output = net(torch.rand(1, 1, 3, 3))
    assert torch.equal(output[0, 0, :2, :2], torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    assert torch.equal(output[0, 0, 4:, 2:4], torch.tensor([[1.0, 2.0], [3.0, 4.0]]))


def test_small_edsr_learns_to_beat_bicubic() -> None:
    """A tiny EDSR overfits one x2 pair (a sharp checkerboard) past bicubic's error."""
    torch.manual_seed(0)
    yy, xx = torch.meshgrid(torch.arange(16), torch.arange(16), indexing="ij")
    target = (((yy // 4 + xx // 4) % 2).float() * 0.8 + 0.1).expand(1, 3, 16, 16)
    low = F.avg_pool2d(target, 2)
    net = EDSR(scale=2, num_blocks=2, num_features=16, bicubic_skip=True)
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-3)
    for _ in range(25):
        optimizer.zero_grad()
        loss = F.l1_loss(net(low), target)
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        learned = F.l1_loss(net(low), target).item()
    assert learned < 0.5 * F.l1_loss(Bicubic(scale=2)(low), target).item()


# --- colorization and inpainting baselines ---


def test_gray_predicts_zero_chrominance() -> None:
    lightness = torch.rand(3, 1, 5, 7, dtype=torch.float64) * 100
    ab = Gray()(lightness)
    assert ab.shape == (3, 2, 5, 7) and ab.dtype == torch.float64
    assert torch.equal(ab, torch.zeros(3, 2, 5, 7, dtype=torch.float64))
    with pytest.raises(ValueError, match="L channel"):
        Gray()(torch.rand(1, 3, 5, 7))


def test_mean_fill_known_answers() -> None:
    rgb = torch.tensor(
        [[[0.2, 0.4], [0.6, 0.8]], [[1.0, 0.0], [0.5, 0.5]], [[0.1, 0.1], [0.1, 0.7]]]
    )
    mask = torch.tensor([[0.0, 1.0], [0.0, 1.0]])  # right column missing
    holed = rgb * (1 - mask)
    # image 2: nothing missing; image 3: everything missing
    inputs = torch.stack(
        [
            torch.cat([holed, mask[None]]),
            torch.cat([rgb, torch.zeros(1, 2, 2)]),
            torch.cat([torch.zeros(3, 2, 2), torch.ones(1, 2, 2)]),
        ]
    )
    output = MeanFill()(inputs)
    means = torch.tensor([0.4, 0.75, 0.1])  # of the left column, per channel
    expected = torch.where(mask.bool(), means.view(3, 1, 1), rgb)
    torch.testing.assert_close(output[0], expected)
    assert torch.equal(output[1], rgb)
    assert torch.equal(output[2], torch.full((3, 2, 2), 0.5))
    with pytest.raises(ValueError, match="RGB \\+ mask"):
        MeanFill()(torch.rand(1, 3, 4, 4))


def test_residual_starts_as_its_base_and_learns_from_there() -> None:
    from cvbench.models.residual import Residual
    from cvbench.models.unet import UNet

    torch.manual_seed(0)
    model = Residual(net=UNet(in_channels=4, out_channels=3, depth=2), base=MeanFill())
    inputs = torch.rand(2, 4, 16, 16)
    inputs[:, 3] = (inputs[:, 3] > 0.6).float()
    inputs[:, :3] *= 1 - inputs[:, 3:]
    torch.testing.assert_close(model(inputs), MeanFill()(inputs), rtol=0, atol=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    F.l1_loss(model(inputs), torch.rand(2, 3, 16, 16)).backward()
    optimizer.step()
    assert not torch.equal(model(inputs), MeanFill()(inputs))
    with pytest.raises(ValueError, match="no Conv2d"):
        Residual(net=torch.nn.Identity(), base=MeanFill())
