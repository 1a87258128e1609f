"""``cvbench stylize``: apply a trained style-transfer network to an image or a folder of images,
writing each result under the output folder with its input's relative file name.

The checkpoint is untrusted input, read as ``cvbench eval`` reads it: without unpickling code
(:func:`cvbench.run.checkpoints.read_checkpoint`), its stored config checked against what the
installed config tree builds (:func:`cvbench.run.stored_config.check_stored_config`) before
anything is built. Only the network is built, from the stored ``model`` node, and its ``net.*``
weights loaded strictly; it runs in eval mode without gradients.

Conventions (the command's ``--help`` repeats them):

- Each image runs at its own size, or with its short side resized to ``size`` (bicubic,
  antialiased, as PIL resizes); the result has the size the network saw.
- Any size is run as it is: the networks upsample to the sizes their encoders saw, so an
  output has its input's size whether or not the sides are multiples of their downsampling
  (Johnson's 4, AdaIN's 8); below a network's least size (Johnson 5 px, AdaIN 16 px) the
  network's error is reported naming the file.
- The style image (networks with ``takes_style``) is read once, RGB only, its short side
  resized to ``style_size`` (default: the training's ``data.style_size``).
- A result keeps its input's relative path and file name exactly; PIL picks the format from the
  suffix (``.png`` PNG, ``.jpg`` JPEG at quality :data:`JPEG_QUALITY`, ...). Files are written
  whole or not at all (a temporary file, then a rename), and existing ones are replaced only
  with ``overwrite``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from PIL import Image
from torch import Tensor, nn

from cvbench.conf import CONF_DIR
from cvbench.data.formats.images import read_rgb
from cvbench.data.formats.masks import IMAGE_SUFFIXES, list_files
from cvbench.data.formats.style_images import read_style_rgb
from cvbench.data.style import resize_short_side as resize_to_short_side
from cvbench.files import FILE_MODE
from cvbench.models.gatys import GatysImage
from cvbench.run.build import build_networks
from cvbench.run.checkpoints import read_checkpoint
from cvbench.run.evaluate import OWN_KEYS, stored_config_of
from cvbench.run.stored_config import check_stored_config, trusted_targets
from cvbench.tasks.base import SINGLE_NETWORK

STYLE_TASK = "style_transfer"  # task.name of the runs stylize applies
JPEG_QUALITY = 95  # PIL's default, 75, blocks fine stylized textures visibly


@dataclass(frozen=True)
class Job:
    """One image to stylize: read ``source``, write ``destination``."""

    source: Path
    destination: Path


# ------------------------------------------------------------------------------ the network


def _with_own_keys(stored: DictConfig, output_dir: Path) -> DictConfig:
    """The stored config with this command's own values for :data:`OWN_KEYS`: the installed
    tree's ``paths`` (``output_dir``: this command's output), no loggers or callbacks."""
    cfg = stored.copy()
    OmegaConf.set_struct(cfg, False)
    paths = OmegaConf.load(CONF_DIR / "paths" / "default.yaml")
    paths.output_dir = str(output_dir)
    own = {"paths": paths, "logger": None, "callbacks": None, "run_name": "stylize"}
    own |= {"run_id": None, "ckpt_path": None}
    for key in OWN_KEYS:
        OmegaConf.update(cfg, key, own.get(key), merge=False, force_add=True)
    return cfg


def _run_directory(ckpt_path: Path) -> str:
    """Where the run of ``ckpt_path`` wrote its files: ``<run>/checkpoints/<file>.ckpt``."""
    return str(ckpt_path.resolve().parent.parent)


def _net_weights(checkpoint: dict, ckpt_path: Path) -> dict[str, Tensor]:
    """The ``net.*`` entries of the checkpoint's state_dict, prefix removed."""
    state = checkpoint.get("state_dict")
    prefix = f"{SINGLE_NETWORK}."
    weights = {
        k[len(prefix) :]: v
        for k, v in (state.items() if isinstance(state, dict) else ())
        if isinstance(k, str) and k.startswith(prefix)
    }
    if not weights:
        raise ValueError(
            f"ckpt_path={ckpt_path} holds no weights of the network (state_dict keys "
            f"'{prefix}*'): it was not written by `cvbench train` of a style-transfer run"
        )
    return weights


def _load_weights(net: nn.Module, weights: dict[str, Tensor], ckpt_path: Path) -> None:
    """``net.load_state_dict(weights)``, strict; a mismatch is one line naming the file."""
    where = f"ckpt_path={ckpt_path}: its {SINGLE_NETWORK}.* weights do not fit the network its"
    try:
        missing, unexpected = net.load_state_dict(weights, strict=False)
    except (RuntimeError, TypeError, AttributeError) as err:  # a shape or type mismatch
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        raise ValueError(f"{where} config builds ({lines[-1] if lines else err})") from None
    if missing or unexpected:
        raise ValueError(
            f"{where} config builds (missing: {', '.join(missing[:3]) or 'none'}; "
            f"unexpected: {', '.join(unexpected[:3]) or 'none'})"
        )


def load_style_network(
    ckpt_path: str | Path, *, output_dir: Path, config_dirs: Sequence[Path] = ()
) -> tuple[nn.Module, DictConfig]:
    """The trained network of a style-transfer checkpoint, in eval mode, frozen, on the CPU.

    Args:
        ckpt_path: a checkpoint written by ``cvbench train`` of a ``style_transfer`` task.
        output_dir: this command's output folder (``paths.output_dir`` of the config).
        config_dirs: config folders whose targets the stored config may build besides the
            installed tree's (``--config-dir`` of ``cvbench eval``).

    Returns:
        the network (``forward(content, style=None, alpha=1.0)``, ``takes_style``) and the
        stored config the network was built from (checked, this command's keys set).

    Raises:
        FileNotFoundError: no file at ``ckpt_path``.
        ValueError: the checkpoint cannot be read safely, its config builds what the installed
            tree does not, it is not a style-transfer run, its network is one optimized image
            (Gatys), or its weights do not fit.
    """
    path = Path(ckpt_path)
    checkpoint = read_checkpoint(path)  # once: the config and the weights come from it
    stored, _ = stored_config_of(checkpoint, path)
    cfg = _with_own_keys(stored, output_dir)
    trusted = trusted_targets(config_dirs)
    check_stored_config(cfg, ckpt_path=path, trusted=trusted, own_keys=OWN_KEYS)
    task = OmegaConf.select(cfg, "task.name", default=None)
    if task != STYLE_TASK:
        raise ValueError(
            f"ckpt_path={path} holds a {task or 'unnamed'} run (task.name={task}); cvbench "
            f"stylize applies {STYLE_TASK} checkpoints"
        )
    if OmegaConf.select(cfg, "model._target_", default=None) is None:
        raise ValueError(f"ckpt_path={path}: its stored config has no model._target_")
    if cfg.model._target_ == f"{GatysImage.__module__}.{GatysImage.__qualname__}":
        raise ValueError(
            f"ckpt_path={path} holds a GatysImage: Gatys et al.'s method optimizes one image for "
            f"one content and one style, so there is no network to apply; its result image is "
            f"in the run directory {_run_directory(path)}"
        )
    net = build_networks(cfg)[SINGLE_NETWORK]
    _load_weights(net, _net_weights(checkpoint, path), path)
    return net.eval().requires_grad_(False), cfg


def trained_style_size(cfg: DictConfig) -> int | None:
    """The short side the training resized style images to (``data.style_size``), if any."""
    size = OmegaConf.select(cfg, "data.style_size", default=None)
    return size if isinstance(size, int) and not isinstance(size, bool) and size > 0 else None


def check_style_arguments(
    net: nn.Module, *, style: Path | None, alpha: float | None, ckpt_path: Path
) -> None:
    """Refuse a ``style`` or ``alpha`` the network does not take, or a missing style.

    Raises:
        ValueError: one line naming the setting and the network.
    """
    name = type(net).__name__
    takes_style = bool(getattr(net, "takes_style", False))
    if takes_style and style is None:
        raise ValueError(
            f"ckpt_path={ckpt_path}: its network, {name}, transfers the style of any image: "
            f"give style=IMAGE"
        )
    if not takes_style and style is not None:
        raise ValueError(
            f"style={style}: ckpt_path={ckpt_path}: its network, {name}, was trained for the "
            f"style of its training run and takes no style image; leave style= out"
        )
    if alpha is None:
        return
    if not takes_style:
        raise ValueError(
            f"alpha={alpha:g}: only networks that take a style image blend content and style; "
            f"the network of ckpt_path={ckpt_path}, {name}, takes none; leave alpha= out"
        )
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(
            f"alpha={alpha:g}: expected a number in [0, 1] (0: the content's own features, "
            f"1: the full style)"
        )


# ------------------------------------------------------------------------------- the images


def read_style(path: Path) -> np.ndarray:
    """The style image at ``path`` as (H, W, 3) uint8 RGB (the data's strict reader: a gray or
    unreadable file is refused); alpha dropped.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a gray image or an unreadable file, naming it.
    """
    if not path.is_file():
        raise FileNotFoundError(f"style={path}: no such image file")
    return read_style_rgb(path)


def resize_short_side(image: np.ndarray, size: int | None) -> np.ndarray:
    """``image`` (H, W, 3) uint8 with its short side resized to ``size`` px as the style data
    resizes (PIL bicubic, antialiased); unchanged when ``size`` is None.

    >>> resize_short_side(np.zeros((20, 40, 3), np.uint8), 10).shape
    (10, 20, 3)
    """
    return image if size is None else resize_to_short_side(image, size)


def to_tensor(image: np.ndarray) -> Tensor:
    """(H, W, 3) uint8 -> (1, 3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1)[None].float() / 255


def to_uint8(image: Tensor) -> np.ndarray:
    """(1, 3, H, W) float (unclamped) -> (H, W, 3) uint8, clamped to [0, 1] and rounded."""
    return (image[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()


def apply_network(
    net: nn.Module, content: Tensor, style: Tensor | None = None, alpha: float = 1.0
) -> Tensor:
    """The network's output for one image, without autograd.

    Args:
        net: a style network (``forward(content, style, alpha)``); those without
            ``takes_style`` are given the content alone.
        content: (1, 3, H, W) float in [0, 1].
        style: (1, 3, H', W') float in [0, 1], for networks with ``takes_style``.
        alpha: content-style trade-off of those networks.

    Returns:
        (1, 3, H, W) float, unclamped.
    """
    with torch.no_grad():
        if getattr(net, "takes_style", False):
            return net(content, style, alpha=alpha)
        return net(content)


class Stylizer:
    """Stylize image files with one network (and one style image, for those that take one).

    Args:
        net: the network, in eval mode.
        style: (H', W', 3) uint8 RGB, already resized, or None.
        alpha: content-style trade-off (networks with ``takes_style``).
        size: the short side each content image is resized to; None: its own size.
        device: where the network runs.
    """

    def __init__(
        self,
        net: nn.Module,
        *,
        style: np.ndarray | None,
        alpha: float = 1.0,
        size: int | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        self.device = torch.device(device)
        self.net = net.to(self.device)
        self.style = None if style is None else to_tensor(style).to(self.device)
        self.alpha, self.size = alpha, size

    def __call__(self, path: Path) -> np.ndarray:
        """The stylized image of the file at ``path``: (H, W, 3) uint8 (its size, or resized)."""
        content = to_tensor(resize_short_side(read_rgb(path), self.size)).to(self.device)
        try:
            out = apply_network(self.net, content, self.style, self.alpha)
        except ValueError as err:  # the network's size check: name the file
            raise ValueError(f"{path}: {err}") from None
        return to_uint8(out)


def pick_device(name: str) -> torch.device:
    """``auto`` (cuda when available), ``cpu`` or ``cuda``.

    Raises:
        ValueError: ``cuda`` asked for where torch sees no CUDA device.
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device=cuda: torch sees no CUDA device here; give device=cpu")
    return torch.device(name)


# -------------------------------------------------------------------------------- the files


def plan_jobs(input_path: Path, output: Path, *, overwrite: bool = False) -> list[Job]:
    """The image files of ``input_path`` (a file, or a folder read recursively, leaving out
    ``output`` when it is inside) and where each result goes: ``output/<path relative to the
    folder>`` (``output/<name>`` for a file).

    Raises:
        FileNotFoundError: ``input_path`` does not exist.
        ValueError: the folder holds no image, ``output`` is a file, a result would replace its
            own input, or results exist already and ``overwrite`` is false.
    """
    if input_path.is_dir():
        # Results of an earlier run into a folder inside the input are not inputs again.
        inside = output.resolve()
        sources = [
            s for s in list_files(input_path, IMAGE_SUFFIXES) if inside not in s.resolve().parents
        ]
        if not sources:
            raise ValueError(
                f"input={input_path}: no image files ({', '.join(IMAGE_SUFFIXES)}) under it"
            )
        jobs = [Job(s, output / s.relative_to(input_path)) for s in sources]
    elif input_path.is_file():
        jobs = [Job(input_path, output / input_path.name)]
    else:
        raise FileNotFoundError(f"input={input_path}: no such image file or folder")
    if output.exists() and not output.is_dir():
        raise ValueError(f"output={output} is a file; give a folder (made if missing)")
    for job in jobs:
        if job.destination.exists() and job.destination.samefile(job.source):
            raise ValueError(
                f"output={output}: the result of {job.source} would replace the image itself; "
                "give another output= folder"
            )
        if job.destination.suffix.lower() not in Image.registered_extensions():
            raise ValueError(f"{job.source}: PIL writes no format with the suffix of its name")
    existing = [job.destination for job in jobs if job.destination.exists()]
    if existing and not overwrite:
        raise ValueError(
            f"output={output}: {len(existing)} of the {len(jobs)} results exist already "
            f"(first: {existing[0]}); give overwrite=true to replace them, or another output="
        )
    return jobs


def write_image(image: np.ndarray, path: Path) -> None:
    """Write (H, W, 3) uint8 ``image`` to ``path`` in the format its suffix names (PIL's
    table), through a temporary file and a rename: never half written."""
    fmt = Image.registered_extensions()[path.suffix.lower()]
    options = {"quality": JPEG_QUALITY} if fmt in ("JPEG", "WEBP") else {}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            Image.fromarray(image).save(f, format=fmt, **options)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
