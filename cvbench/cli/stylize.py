"""``cvbench stylize ckpt_path=... input=IMAGE_OR_DIR output=DIR [style=IMAGE] [alpha=...]``:
apply a trained style-transfer network to an image or a folder, keeping file names.

The logic is :mod:`cvbench.run.stylize`; this module parses the command line, shows the
progress and prints the summary. Exit status: 0 on success; 1 for a wrong command line or a
user error (one line ``error: ...`` on stderr), as the other commands.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tqdm import tqdm

from cvbench.cli.errors import reported_errors
from cvbench.cli.options import REQUIRED, Command, Setting, parse_or_exit
from cvbench.run.stylize import (
    Stylizer,
    check_style_arguments,
    load_style_network,
    pick_device,
    plan_jobs,
    read_style,
    resize_short_side,
    trained_style_size,
    write_image,
)

COMMAND = Command(
    "stylize",
    "Apply a trained style-transfer network (a checkpoint of cvbench train "
    "experiment=style_transfer/...) to an image or to every image under a folder, writing "
    "each result under output/ with the input's relative path and file name.",
    (
        Setting("ckpt_path", "the checkpoint", Path, REQUIRED, metavar="PATH"),
        Setting(
            "input", "an image, or a folder read recursively", Path, REQUIRED, metavar="IMAGE|DIR"
        ),
        Setting(
            "output",
            "the folder the results go to (made if missing)",
            Path,
            REQUIRED,
            metavar="DIR",
        ),
        Setting(
            "style",
            "the style image (RGB), for networks that take one (AdaIN); "
            "refused for those trained for one style (Johnson)",
            Path,
            metavar="IMAGE",
        ),
        Setting(
            "alpha",
            "content-style trade-off in [0, 1] of networks that take a style "
            "image (null: 1, the full style)",
            float,
            None,
            minimum=0,
        ),
        Setting(
            "size",
            "resize each image's short side to this many pixels (default: each image's own size)",
            int,
            None,
            minimum=1,
        ),
        Setting(
            "style_size",
            "resize the style image's short side to this many pixels "
            "(null: the training's data.style_size)",
            int,
            None,
            minimum=1,
        ),
        Setting(
            "config_dir",
            "a config folder whose targets the checkpoint's config may build besides the "
            "installed tree's (as --config-dir of cvbench eval)",
            Path,
            metavar="DIR",
        ),
        Setting("overwrite", "replace results that exist already", bool, False),
        Setting(
            "device",
            "where the network runs (auto: cuda when available)",
            str,
            "auto",
            ("auto", "cpu", "cuda"),
        ),
    ),
    details="""
        The checkpoint is read as cvbench eval reads it: no pickled code is run, and its stored
        config may build only what the installed config tree builds. Gatys et al.'s runs
        optimize one image and hold no network to apply: their result is in the run directory.

        Each result has its input's size (or the size= one): the networks run at any size
        (Johnson's from 5 px, AdaIN's from 16 px a side). The format follows the file name's
        suffix, as PIL reads it (PNG, JPEG at quality 95, ...); a folder's results keep its
        sub-folders. Existing results are replaced only with overwrite=true.
    """,
    examples=(
        "stylize ckpt_path=outputs/johnson/checkpoints/last.ckpt input=photos/ output=styled/",
        "stylize ckpt_path=adain.ckpt input=me.jpg style=starry.jpg output=out/ alpha=0.6",
    ),
)


def main(argv: list[str]) -> None:
    """Stylize the input's images and print how many were written where."""
    settings = parse_or_exit(COMMAND, argv).values
    output = settings["output"]
    with reported_errors():
        jobs = plan_jobs(settings["input"], output, overwrite=settings["overwrite"])
        ckpt_path, style, alpha = settings["ckpt_path"], settings["style"], settings["alpha"]
        dirs = [settings["config_dir"]] if settings["config_dir"] else []
        net, cfg = load_style_network(ckpt_path, output_dir=output, config_dirs=dirs)
        check_style_arguments(net, style=style, alpha=alpha, ckpt_path=ckpt_path)
        style_image = None
        if style is not None:
            style_size = settings["style_size"] or trained_style_size(cfg)
            style_image = resize_short_side(read_style(style), style_size)
        stylizer = Stylizer(
            net, style=style_image, alpha=1.0 if alpha is None else alpha,
            size=settings["size"], device=pick_device(settings["device"]),
        )  # fmt: skip
        folder = settings["input"].is_dir()
        for job in tqdm(jobs, desc="stylize", unit="image", disable=not folder, file=sys.stderr):
            write_image(stylizer(job.source), job.destination)
    noun = "image" if len(jobs) == 1 else "images"
    print(f"{len(jobs)} {noun} written to {output}")
