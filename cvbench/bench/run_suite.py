"""``run_bench(cfg)``: plan a suite, skip what the results store holds as completed, run the
rest one ``cvbench train`` process at a time, and report."""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig

from cvbench.bench.leaderboard import leaderboard_text
from cvbench.bench.suite import (
    PlannedRun,
    execute,
    hash_runs,
    plan_suite,
    slug,
    suite_path,
    train_command,
)
from cvbench.files import write_text
from cvbench.store.database import ResultsStore
from cvbench.store.record import new_run_id

log = logging.getLogger(__name__)


def run_bench(cfg: DictConfig, conf_dir: Path) -> bool:
    """Run the suite ``cfg.suite``; whether every run of it is now completed.

    Args:
        cfg: the composed ``conf/bench.yaml``.
        conf_dir: the conf/ tree the runs compose from.
    """
    path = suite_path(str(cfg.suite), conf_dir)
    seeds = list(cfg.seeds) if cfg.get("seeds") is not None else None
    runs = plan_suite(path, seeds=seeds, overrides=[str(o) for o in cfg.get("overrides") or []])
    hash_runs(runs, conf_dir)
    db = Path(cfg.paths.results_db)
    with ResultsStore(db) as store:
        done = store.completed_hashes([r.config_hash for r in runs])
    todo = [r for r in runs if r.config_hash not in done]
    log.info(
        f"suite {path}: {len(runs)} runs, {len(runs) - len(todo)} already completed in {db}, "
        f"{len(todo)} to run"
    )
    if cfg.get("dry_run"):
        for run in runs:
            log.info(f"  {'done' if run.config_hash in done else 'todo'}  {run.label}")
        return not todo
    out_dir = Path(cfg.paths.output_dir)
    outcomes = run_all(todo, runs, out_dir=out_dir, db=db)
    return report(runs, done, outcomes, db=db, fmt=cfg.get("leaderboard"), out_dir=out_dir)


def run_all(
    todo: list[PlannedRun], runs: list[PlannedRun], *, out_dir: Path, db: Path
) -> dict[str, str]:
    """Run ``todo`` in order; config hash -> run id of each run started (Ctrl-C stops)."""
    started: dict[str, str] = {}
    for n, run in enumerate(todo, 1):
        run_id = new_run_id()
        started[run.config_hash] = run_id
        log.info(f"[{n}/{len(todo)}] {run.label} (run {run_id})")
        run_dir = out_dir / slug(run, runs.index(run))
        status = execute(train_command(run, run_id=run_id, run_dir=run_dir, db=db))
        if status != 0:
            with ResultsStore(db) as store:  # a crash the run could not record itself
                store.fail_if_running(run_id, f"cvbench train exited with status {status}")
    return started


def report(
    runs: list[PlannedRun],
    done: set[str],
    started: dict[str, str],
    *,
    db: Path,
    fmt: str | None,
    out_dir: Path,
) -> bool:
    """Log each run's outcome and the suite's leaderboard (``html``: written to
    ``out_dir/leaderboard.html``); whether all completed."""
    with ResultsStore(db) as store:
        by_id = {r.run_id: r for r in store.runs(run_id=list(started.values()) or None)}
        suite_records = store.runs(config_hash=[r.config_hash for r in runs], status="completed")
    failed = 0
    log.info("suite results:")
    for run in runs:
        if run.config_hash in done:
            outcome = "completed earlier"
        else:
            record = by_id.get(started.get(run.config_hash, ""))
            outcome = "not run" if record is None else record.status
            if record is not None and record.status == "failed":
                outcome += f": {record.error}"
            failed += outcome != "completed"
        log.info(f"  {run.label}: {outcome}")
    if fmt and suite_records:
        text = leaderboard_text(suite_records, fmt=fmt)
        if fmt == "html":
            write_text(out_dir / "leaderboard.html", text)
            log.info(f"leaderboard: {out_dir / 'leaderboard.html'}")
        else:
            log.info("\n" + text)
    return failed == 0
