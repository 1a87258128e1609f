"""Data YAML contracts: what a data YAML's ``contract:`` node tells the tests, and the config it
asks for, with its fake files written.

A data node's ``contract:`` (never passed to the datamodule; see
``cvbench.run.build.build_component``)::

    contract:
      batch: MaskBatch                # the cvbench.data.batches type of its batches
      records: LabelMapRecords        # the cvbench.data.records Protocol of its records
      fake:                           # writers of tiny files in the real layout, in order
        - writer: tests.fakes_segmentation.write_cityscapes  # a function in tests/
          root: ${data.records.root}  # its first argument: where the YAML reads
          splits: [train, val]        # optional: called once per split, as split=...
          # every other key: a keyword argument of the writer
      overrides: [data.crop_size=32]  # what the fake files need (optional)
      shapes: {images: [3, 32, 32], masks: [32, 32]}  # per sample, training batch; null: any

Data that cvbench generates itself (digits, shapes, photos) says ``embedded: true`` instead of
``fake``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

TINY = ("data.num_workers=0", "data.batch_size=2")
"""What every contract test runs with: no worker processes, batches of two."""

TESTS = "tests."


def fake_writer(name: str) -> Callable[..., object]:
    """The function ``tests.<module>.<function>`` names (``tests/<module>.py``)."""
    module, _, function = name.rpartition(".")
    if not module.startswith(TESTS):
        raise ValueError(f"fake writer {name!r}: expected tests.<module>.<function>")
    found = getattr(importlib.import_module(module.removeprefix(TESTS)), function, None)
    if not callable(found):
        raise ValueError(f"fake writer {name!r}: no function {function} in tests/{module[6:]}.py")
    return found


def write_fakes(contract: DictConfig) -> None:
    """Run the contract's fake writers (resolved against the whole config)."""
    for call in OmegaConf.to_container(contract.fake, resolve=True):
        writer = fake_writer(call.pop("writer"))
        root = Path(call.pop("root"))
        splits = call.pop("splits", None)
        if splits is None:
            writer(root, **call)
        for split in splits or ():
            writer(root, split=split, **call)


def data_config(make_cfg: Callable[..., DictConfig], option: str, *overrides: str) -> DictConfig:
    """The config of ``data=<option>`` with :data:`TINY`, the contract's overrides and then
    ``overrides``; unless the data is embedded, its fake files are written under
    ``paths.data_dir``."""
    contract = make_cfg(f"data={option}").data.get("contract")
    if contract is None:
        raise ValueError(f"cvbench/conf/data/{option}.yaml has no contract: node")
    extra = list(contract.get("overrides") or ())
    cfg = make_cfg(f"data={option}", *TINY, *extra, *overrides)
    if not cfg.data.contract.get("embedded", False):
        write_fakes(cfg.data.contract)
    return cfg
