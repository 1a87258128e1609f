"""The skeleton every task's LightningModule is built on: injected networks and their
optimization, per-stage metrics cloned from those the task YAML declares, throttled step
logging, the end-of-epoch template (compute once, reset, keep ``results``, log) and the
typed ground truth a datamodule gives.

One network (``cfg.model`` has a ``_target_``) is registered as ``net`` and trained with
Lightning's automatic optimization. Several (``cfg.model`` maps names to networks: a
generator and a discriminator) are registered under their names, each with its own
optimizer (and schedule), and trained with Lightning's manual optimization: the task's
``training_step`` calls :meth:`TaskModule.optimize` once per network.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import pytorch_lightning as pl
from pytorch_lightning.core.optimizer import LightningOptimizer
from torch import Tensor, nn
from torchmetrics import MeanMetric, Metric

from cvbench.tasks.optimization import Optimization, optimizer_config

STAGES = ("train", "val", "test")
EVAL_STAGES = ("val", "test")
SINGLE_NETWORK = "net"
"""The name of a task's network when ``cfg.model`` is one network."""

MetricT = TypeVar("MetricT", bound=Metric)
SourceT = TypeVar("SourceT")


class TaskModule(pl.LightningModule):
    """Base of cvbench's task modules.

    A task implements its steps and, if it reports more than its metrics, :meth:`epoch_extras`.
    Its class attributes say which stages get a copy of the declared metrics
    (``metric_stages``), which stages the base averages the loss of (``loss_stages``: the
    task calls :meth:`update_loss`, the base reports ``{stage}/loss``), which key goes on
    the progress bar and which numeric keys are kept in ``results`` but not logged.

    Args:
        nets: the networks by name (``{"net": ...}`` for one); each is registered as a
            submodule of that name, so checkpoint keys read ``net.*`` or
            ``generator.*``, ``discriminator.*``.
        optimization: for each network, its optimizer and schedule (same names as ``nets``).
        metrics: the metrics the task YAML declares (``task.module.metrics``), by name; each
            stage of ``metric_stages`` gets its own clone. A metric's ``compute`` returns a
            dict (its keys are logged as ``{stage}/{key}``) or one value (``{stage}/{name}``).

    Attributes:
        results: the last values of each stage, full precision (Lightning keeps logged ones
            as float32): ``results["test"]["test/top1_error"]``.
        test_output: what the last test leaves for the task's report (a dataclass of the
            task family), or None.
    """

    # Whether ``forward`` takes a list of (C, H, W) images (detection) rather than a
    # (B, C, H, W) batch; read when the run's FLOPs are counted.
    takes_image_lists: bool = False
    metric_stages: tuple[str, ...] = STAGES
    loss_stages: tuple[str, ...] = ()
    progress_bar_key: str | None = None
    not_logged: tuple[str, ...] = ()  # keys without the stage, e.g. ("crop_border",)
    # State-dict key prefixes of frozen submodules built from the config (judges, loss
    # networks): left out of checkpoints, and not expected when one is loaded.
    frozen_prefixes: tuple[str, ...] = ()

    def __init__(
        self,
        *,
        nets: Mapping[str, nn.Module],
        optimization: Mapping[str, Optimization],
        metrics: Mapping[str, Metric] | None = None,
    ) -> None:
        super().__init__()
        if set(nets) != set(optimization) or not nets:
            raise ValueError(
                f"the task's networks {sorted(nets)} and optimizers {sorted(optimization)} "
                "must have the same names: give optim (and sched) one entry per network of "
                "model, or one node for all"
            )
        for name, net in nets.items():
            if hasattr(type(self), name) or name in vars(self):
                raise ValueError(
                    f"model.{name}: {name!r} is an attribute of {type(self).__name__}; name the "
                    "network otherwise (e.g. generator, discriminator)"
                )
            self.add_module(name, net)
        self.network_names = tuple(nets)
        self.optimization = {name: optimization[name] for name in self.network_names}
        self.automatic_optimization = len(nets) == 1
        declared = dict((metrics or {}).items())
        for name, metric in declared.items():
            if not isinstance(metric, Metric):
                raise TypeError(
                    f"task.module.metrics.{name} is a {type(metric).__name__}, not a "
                    "torchmetrics Metric: give it a _target_ that builds one"
                )
        self.metrics = nn.ModuleDict(
            {
                # "train" alone would clash with nn.Module.train
                f"{stage}_metrics": nn.ModuleDict({n: m.clone() for n, m in declared.items()})
                for stage in self.metric_stages
            }
        )
        self.losses = nn.ModuleDict({f"{stage}_loss": MeanMetric() for stage in self.loss_stages})
        self.results: dict[str, dict[str, float | str | None]] = {}
        self.test_output: Any = None
        self._manual_schedules: list[tuple[Any, str]] = []

    @property
    def networks(self) -> dict[str, nn.Module]:
        """The injected networks by name (``{"net": ...}`` for one), without losses or
        baselines: what a run counts the parameters of."""
        return {name: getattr(self, name) for name in self.network_names}

    # --- metrics and logging -----------------------------------------------------------------

    def stage_metrics(self, stage: str) -> Mapping[str, Metric]:
        """The metrics of ``stage`` by declared name (empty outside ``metric_stages``)."""
        key = f"{stage}_metrics"
        if key not in self.metrics:  # an nn.ModuleDict has no .get
            return {}
        return self.metrics[key]

    def metric(self, stage: str, kind: type[MetricT]) -> MetricT:
        """The one metric of type ``kind`` among those of ``stage``.

        Raises:
            ValueError: none or several, naming the config key to fix.
        """
        found = [m for m in self.stage_metrics(stage).values() if isinstance(m, kind)]
        if len(found) != 1:
            raise ValueError(
                f"{type(self).__name__} needs one {kind.__name__} in task.module.metrics (for "
                f"stage {stage}), found {len(found)}: declare it with "
                f"_target_: {kind.__module__}.{kind.__name__}"
            )
        return found[0]

    def update_loss(self, stage: str, value: Tensor, weight: float | Tensor = 1.0) -> None:
        """Add to the mean loss reported as ``{stage}/loss`` (a stage of ``loss_stages``).

        Args:
            stage: "train", "val" or "test".
            value: a scalar loss, or (N,) per-sample losses.
            weight: the scalar's weight (its batch size), or per-sample weights.
        """
        self.losses[f"{stage}_loss"].update(value.detach(), weight=weight)

    def log_step(self, batch_idx: int, values: Mapping[str, Tensor], *, batch_size: int) -> None:
        """Log ``train/{name}`` of each value every ``trainer.log_every_n_steps`` batches
        (each ``self.log`` costs ~1 ms: only as often as the loggers write); ``loss_step``
        goes on the progress bar."""
        if (batch_idx + 1) % self.trainer.log_every_n_steps:
            return
        for name, value in values.items():
            self.log(f"train/{name}", value, prog_bar=name == "loss_step", batch_size=batch_size)

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The module's state without the frozen submodules (``frozen_prefixes``)."""
        state = super().state_dict(*args, **kwargs)
        prefix = kwargs.get("prefix", "")
        for key in [k for k in state if k[len(prefix) :].startswith(self.frozen_prefixes)]:
            del state[key]
        return state

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False
    ) -> Any:
        """Load a state; the frozen submodules, built from the config, may be absent."""
        if not self.frozen_prefixes:
            return super().load_state_dict(state_dict, strict=strict, assign=assign)
        result = super().load_state_dict(state_dict, strict=False, assign=assign)
        missing = [k for k in result.missing_keys if not k.startswith(self.frozen_prefixes)]
        if strict and (missing or result.unexpected_keys):
            raise RuntimeError(
                f"{type(self).__name__}: the checkpoint's weights do not fit the task built from "
                f"its config: missing {missing[:5]}, unexpected {result.unexpected_keys[:5]}"
            )
        return result

    def epoch_extras(self, stage: str) -> dict[str, float | str | None]:
        """The task's own values of ``stage`` beyond its metrics and loss (protocol strings,
        VOC AP, a baseline's scores), read before the metrics are reset; a task sets
        ``test_output`` here. Keys carry the stage: ``{stage}/inference``."""
        return {}

    def log_epoch(self, stage: str) -> None:
        """Compute the loss and metrics of ``stage`` once (they gather every process's states
        themselves: no ``sync_dist``), add :meth:`epoch_extras`, reset, keep the values in
        ``results[stage]`` and log the numbers (None: nothing to score)."""
        values: dict[str, float | str | None] = {}
        if stage in self.loss_stages:
            loss = self.losses[f"{stage}_loss"]
            # MeanMetric syncs across processes itself; an epoch without updates gives nan.
            values[f"{stage}/loss"] = float(loss.compute())
            loss.reset()
        metrics = self.stage_metrics(stage)
        for name, metric in metrics.items():
            computed = metric.compute()
            if not isinstance(computed, Mapping):
                computed = {name: computed}
            for key, value in computed.items():
                if f"{stage}/{key}" in values:
                    raise ValueError(f"task.module.metrics: two metrics report {key!r}")
                values[f"{stage}/{key}"] = float(value) if isinstance(value, Tensor) else value
        values |= self.epoch_extras(stage)
        for metric in metrics.values():
            metric.reset()
        self.results[stage] = values
        for key, value in values.items():
            if isinstance(value, int | float) and key.split("/", 1)[-1] not in self.not_logged:
                self.log(key, value, prog_bar=key == self.progress_bar_key)

    def on_train_epoch_end(self) -> None:
        self.log_epoch("train")
        self._step_schedules("epoch")

    def on_validation_epoch_end(self) -> None:
        self.log_epoch("val")

    def on_test_epoch_end(self) -> None:
        self.log_epoch("test")

    # --- ground truth from the data ------------------------------------------------------------

    def data_source(self, protocol: type[SourceT]) -> SourceT:
        """The run's datamodule as ``protocol`` (``cvbench.data.batches``:
        ``DetectionGroundTruthSource``, ``ClassNamesSource``).

        Raises:
            TypeError: the datamodule does not give it, naming both and the fix.
        """
        datamodule = getattr(self.trainer, "datamodule", None)
        if not isinstance(datamodule, protocol):
            raise TypeError(
                f"{type(self).__name__} needs data that is a {protocol.__name__} "
                f"(cvbench/data/batches.py), but the run's data is a "
                f"{type(datamodule).__name__}: choose a data config of this task's family "
                f"(data=...)"
            )
        return datamodule

    # --- optimization ------------------------------------------------------------------------

    def configure_optimizers(self) -> dict | list[dict]:
        if self.automatic_optimization:
            if len(self.network_names) != 1:
                raise ValueError(
                    f"{type(self).__name__} has networks {list(self.network_names)}: several "
                    "networks are trained with manual optimization (automatic_optimization "
                    "False)"
                )
            (optimization,) = self.optimization.values()
            return optimizer_config(self, self.parameters(), optimization)
        configs = []
        self._manual_schedules = []
        for name, optimization in self.optimization.items():
            config = optimizer_config(
                self, getattr(self, name).parameters(), optimization, manual=True
            )
            if "lr_scheduler" in config:
                self._manual_schedules.append((config["lr_scheduler"], optimization.interval))
            configs.append(config)
        return configs

    def optimizer_of(self, name: str) -> LightningOptimizer:
        """The optimizer of network ``name`` (manual optimization)."""
        optimizers = self.optimizers()
        if not isinstance(optimizers, list):
            optimizers = [optimizers]
        return optimizers[self.network_names.index(name)]

    def optimize(self, name: str, loss: Tensor) -> None:
        """One manual-optimization step of network ``name``: zero its optimizer's gradients,
        backpropagate ``loss``, step the optimizer (gradients that ``loss`` leaves on the other
        networks are zeroed by their own next step)."""
        optimizer = self.optimizer_of(name)
        optimizer.zero_grad()
        self.manual_backward(loss)
        optimizer.step()

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self._step_schedules("step")

    def _step_schedules(self, interval: str) -> None:
        """Step the schedules of ``interval`` under manual optimization ("step": after each
        training batch; "epoch": after each training epoch). Lightning steps them itself
        under automatic optimization."""
        for scheduler, every in self._manual_schedules:
            if every == interval and not self.automatic_optimization:
                scheduler.step()
