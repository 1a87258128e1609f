"""``cvbench sample``: images from a trained synthesis checkpoint (DCGAN, DDPM: ``num`` new
images ``000000.png``, ``000001.png``, ...) or a folder translated by a translation checkpoint
(pix2pix, CycleGAN A -> B: each input's result under its relative path and file name).

The checkpoint is untrusted input, read as ``cvbench eval`` and ``cvbench stylize`` read it:
no pickled code (:func:`cvbench.run.checkpoints.read_checkpoint`), its stored config checked
against what the installed tree builds before anything is built. The task is rebuilt from the
stored config and its weights loaded strictly; its judge is not needed to sample and is
replaced by a placeholder (no weights file is read, no judge trained). Sample j of a
generation run comes from noise seeded by (``seed``, j): ``num=8`` gives the first 8 images of
``num=100`` with the same seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from cvbench.data.formats.images import read_rgb
from cvbench.run.build import build_task
from cvbench.run.checkpoints import read_checkpoint
from cvbench.run.evaluate import OWN_KEYS, stored_config_of
from cvbench.run.stored_config import check_stored_config, trusted_targets
from cvbench.run.stylize import Job, _with_own_keys, plan_jobs, to_tensor, to_uint8, write_image

JUDGE_KEY = "task.module.judge"
PLACEHOLDER_JUDGE = "cvbench.models.feature_cnn.FeatureCNN"


def _without_judge(cfg: DictConfig) -> DictConfig:
    """``cfg`` with its judge (if any) replaced by an untrained placeholder of the same name."""
    judge = OmegaConf.select(cfg, JUDGE_KEY, default=None)
    if judge is None:
        return cfg
    name = OmegaConf.select(cfg, f"{JUDGE_KEY}.name", default="judge")
    placeholder = {"_target_": PLACEHOLDER_JUDGE, "name": str(name), "num_classes": 1}
    OmegaConf.update(cfg, JUDGE_KEY, placeholder, merge=False, force_add=True)
    return cfg


def load_task(ckpt_path: str | Path, *, output_dir: Path, config_dirs: Sequence[Path] = ()) -> Any:
    """The task of a synthesis or translation checkpoint, in eval mode, frozen, on the CPU.

    Args:
        ckpt_path: a checkpoint written by ``cvbench train``.
        output_dir: this command's output folder (``paths.output_dir`` of the config).
        config_dirs: config folders whose targets the stored config may build besides the
            installed tree's.

    Raises:
        FileNotFoundError: no file at ``ckpt_path``.
        ValueError: the checkpoint cannot be read safely, its config builds what the installed
            tree does not, its task neither generates nor translates, or its weights do not fit.
    """
    path = Path(ckpt_path)
    checkpoint = read_checkpoint(path)
    stored, _ = stored_config_of(checkpoint, path)
    cfg = _with_own_keys(stored, output_dir)
    check_stored_config(
        cfg, ckpt_path=path, trusted=trusted_targets(config_dirs), own_keys=OWN_KEYS
    )
    cfg = _without_judge(cfg)
    target = OmegaConf.select(cfg, "task.module._target_", default=None)
    task = build_task(cfg)
    if not (hasattr(task, "generate") or hasattr(task, "translate")):
        raise ValueError(
            f"ckpt_path={path} holds a {target} run: cvbench sample applies synthesis (generate) "
            "and translation (translate) checkpoints"
        )
    state = checkpoint.get("state_dict")
    if not isinstance(state, dict):
        raise ValueError(f"ckpt_path={path} holds no state_dict")
    try:
        task.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError) as err:
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        raise ValueError(
            f"ckpt_path={path}: its weights do not fit the task its config builds "
            f"({lines[-1] if lines else err})"
        ) from None
    return task.eval().requires_grad_(False)


def sample_names(num: int) -> list[str]:
    """``000000.png``, ``000001.png``, ... (at least six digits).

    >>> sample_names(2)
    ['000000.png', '000001.png']
    """
    width = max(6, len(str(max(num - 1, 0))))
    return [f"{i:0{width}d}.png" for i in range(num)]


def write_samples(
    task: Any, *, num: int, seed: int, output: Path, overwrite: bool = False, **options: Any
) -> list[Path]:
    """Generate ``num`` images with ``task.generate(num, seed, **options)`` and write them as
    ``output/000000.png`` ...

    Raises:
        ValueError: the task does not generate (a translation checkpoint needs ``input=``),
            an option it refuses, or existing files without ``overwrite``.
    """
    if not hasattr(task, "generate"):
        raise ValueError(
            "this checkpoint translates images rather than generating them: give input=DIR"
        )
    if output.exists() and not output.is_dir():
        raise ValueError(f"output={output} is a file; give a folder (made if missing)")
    paths = [output / name for name in sample_names(num)]
    existing = [p for p in paths if p.exists()]
    if existing and not overwrite:
        raise ValueError(
            f"output={output}: {len(existing)} of the {num} images exist already (first: "
            f"{existing[0]}); give overwrite=true to replace them, or another output="
        )
    options = {k: v for k, v in options.items() if v is not None}
    written = []
    for start in range(0, num, 256):
        count = min(256, num - start)
        images = task.generate(count, seed, first=start, **options)  # samples start, ...
        for offset, image in enumerate(images):
            path = paths[start + offset]
            write_image(to_uint8(image[None]), path)
            written.append(path)
    return written


def translate_folder(
    task: Any, *, input_path: Path, output: Path, overwrite: bool = False
) -> list[Job]:
    """Translate every image under ``input_path`` with ``task.translate`` (one at a time, at its
    own size) into ``output`` with its relative path and file name.

    Raises:
        FileNotFoundError: no such input.
        ValueError: the task does not translate, no image under the folder, existing results
            without ``overwrite``, or an image the network cannot take (naming the file).
    """
    if not hasattr(task, "translate"):
        raise ValueError(
            f"input={input_path}: this checkpoint generates images and translates none; leave "
            "input= out"
        )
    jobs = plan_jobs(input_path, output, overwrite=overwrite)
    for job in jobs:
        image = to_tensor(read_rgb(job.source)).to(task.device)
        try:
            with torch.no_grad():
                result = task.translate(image)
        except (RuntimeError, ValueError) as err:
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise ValueError(f"{job.source}: the network cannot translate it ({first})") from None
        write_image(to_uint8(result), job.destination)
    return jobs
