"""Optuna studies over ganbench runs: ``ganbench tune``.

One study = one MLflow experiment (named after the study) with a parent run for the study and a child run
per trial (tags ``mlflow.parentRunId``, ``ganbench.trial``, ``ganbench.trial_state``; the child's run id is
stored in the trial's user attributes). Storage: Optuna's journal file in the workspace by default (safe
for several worker processes on one host), or ``--storage postgresql://…`` (Optuna's RDB storage with
heartbeats, so trials of a worker that died are failed by ``fail_stale_trials``): workers on many hosts
then share one study. Re-running with the same study name resumes it up to its trial count.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import multiprocessing
import os
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna

from bench import keys, signals
from bench.config import CompareConfig, combine, load_compare_config, read_toml, require_name, validate
from bench.config.sources import check_shape
from bench.errors import ConfigError, UserError
from bench.harness import resolve_device
from bench.run import FAILED, PRUNED, prepare, train
from bench.tracking import Tracker
from studies.samplers import SeededRandomSampler
from studies.spaces import Param, check_space, space_for, to_config
from studies.throughput import record_throughput
from studies.workers import thread_locks_for_progress_bars

SAMPLERS = ("tpe", "random", "cmaes")
PRUNERS = ("median", "hyperband", "none")
MAXIMISE = {keys.IS_MEAN, keys.PRECISION, keys.RECALL}
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED, optuna.trial.TrialState.FAIL)
# a trial's defaults: a short run, a smaller evaluation, no Inception, no usefulness experiment (CAS and
# augmentation: ~40 s a trial that no objective reads); the study file, --set and options win
TUNE_DEFAULTS = {
    "train": {"steps": 300, "epochs": None},
    "eval": {
        "n_samples": 2000,
        "during_training_samples": 500,
        "usefulness": False,
        "extractors": {"inception-v3-compat": {"use": "off"}},
    },
}
TAG_PARAMS = "ganbench.trial_params"  # a trial run's suggested values, as JSON {name: value}
STALE = "stale/"  # study user attribute prefix: stale/<trial number> = why a dead worker's trial was failed


@dataclass(frozen=True)
class StudyConfig:
    """arch; name (default ``<arch>-search`` on MNIST, ``<dataset>-<arch>-search`` otherwise); trials: total
    over all workers and resumptions; timeout: seconds per worker; metric: ``fid``, ``kid_mean``
    (minimised), ``is_mean``, ``precision``, ``recall`` (maximised) with the primary extractor; sampler:
    tpe | random | cmaes; pruner: median | hyperband | none (on the FID curve); storage: None (journal
    file) or an RDB URL; workers: processes on this host; seed."""

    arch: str = "dcgan"
    name: str | None = None
    trials: int = 20
    timeout: float | None = None
    metric: str = "fid"
    sampler: str = "tpe"
    pruner: str = "median"
    storage: str | None = None
    workers: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        checks = {
            "study.trials": (self.trials >= 1, ">= 1"),
            "study.workers": (1 <= self.workers <= 64, "between 1 and 64"),
            "study.sampler": (self.sampler in SAMPLERS, " | ".join(SAMPLERS)),
            "study.pruner": (self.pruner in PRUNERS, " | ".join(PRUNERS)),
            "study.metric": (
                self.metric in (keys.FID, keys.KID_MEAN, *MAXIMISE),
                "fid, kid_mean, is_mean, precision, recall",
            ),
            "study.timeout": (self.timeout is None or self.timeout > 0, "> 0"),
        }
        for key, (ok, allowed) in checks.items():
            if not ok:
                raise ConfigError(f"{key} = {getattr(self, key.split('.')[1])!r} is not allowed; expected {allowed}")
        if self.name is not None:
            require_name("study.name", self.name)
        if self.pruner != "none" and self.metric != keys.FID:
            raise ConfigError(
                f"study.pruner = {self.pruner!r} prunes on the FID curve; "
                "use it with metric = 'fid' or set pruner = 'none'"
            )

    @property
    def study_name(self) -> str:
        return self.name or f"{self.arch}-search"

    @property
    def direction(self) -> str:
        return "maximize" if self.metric in MAXIMISE else "minimize"


def load_study(
    path: str | None, sets: list[str], study_sets: dict[str, Any], overrides: dict[str, Any] | None = None
) -> tuple[StudyConfig, CompareConfig, dict]:
    """A study file (``[study]``, ``[space.*]`` and the usual data/train/eval/model tables) + ``--set`` items
    + command-line study options (``study_sets``) and config options (``overrides``, a nested dict)
    -> (StudyConfig, the trials' base CompareConfig, space overrides)."""
    data = read_toml(path) if path else {}
    check_shape(data, f"study file {path!r}")  # before it is merged into the trials' base config
    study_table = data.pop("study", {})
    if not isinstance(study_table, dict):
        raise ConfigError(f"study must be a table ([study] with arch, trials, ...), got {study_table!r}")
    study = {**study_table, **{k: v for k, v in study_sets.items() if v is not None}}
    space = data.pop("space", {})
    sc = validate(StudyConfig, study, "study.")
    identity: dict[str, Any] = {"archs": [sc.arch], "seeds": [sc.seed]}
    dataset = load_compare_config(None, sets, base=combine(TUNE_DEFAULTS, data, identity), overrides=overrides)
    if sc.name is None and dataset.data.dataset != "mnist":  # MNIST keeps the name of earlier versions
        sc = dataclasses.replace(sc, name=f"{dataset.data.dataset}-{sc.arch}-search")
    identity["experiment"] = sc.study_name
    cc = load_compare_config(None, sets, base=combine(TUNE_DEFAULTS, data, identity), overrides=overrides)
    check_space(sc.arch, space_for(sc.arch, space), dataclasses.asdict(cc))  # every value, before any trial
    return sc, cc, space


def quiet_optuna() -> None:
    """Optuna's own log lines off (a failure gets our one line) and its experimental-feature warnings."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def open_storage(url: str | None, workdir: str | os.PathLike[str], name: str) -> optuna.storages.BaseStorage:
    """The journal file ``<workdir>/optuna/<name>.journal`` by default, or an RDB storage with heartbeats.

    Raises UserError for an unsupported URL or a database that cannot be reached.
    """
    if url is None or url.startswith("journal:"):
        path = Path(url[len("journal:") :]) if url else Path(workdir).resolve() / "optuna" / f"{name}.journal"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
        except OSError as e:
            raise UserError(f"--storage journal:{path} cannot be used: {e.strerror or e}") from None
    if not url.startswith(("postgresql", "mysql", "sqlite")):
        raise UserError(f"--storage {url!r} is not supported; use postgresql://user:pass@host/db or journal:PATH")
    try:
        # a server that accepts TCP but never answers fails in seconds, not minutes (libpq's connect_timeout)
        engine = {"connect_args": {"connect_timeout": 5}} if url.startswith("postgresql") else {}
        return optuna.storages.RDBStorage(url, engine_kwargs=engine, heartbeat_interval=30, grace_period=120)
    except Exception as e:  # sqlalchemy OperationalError, missing driver
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"--storage {url!r} cannot be opened: {first}") from None


def _sampler(sc: StudyConfig, worker: int, space: tuple[Param, ...]) -> optuna.samplers.BaseSampler:
    seed = sc.seed * 1000 + worker  # TPE and CMA-ES workers must not propose the same points
    if sc.sampler == "random":  # the same setting per trial number on every worker (see the class)
        return SeededRandomSampler(sc.seed * 1000, space)
    if sc.sampler == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    return optuna.samplers.TPESampler(seed=seed)


def _pruner(sc: StudyConfig, cc: CompareConfig) -> optuna.pruners.BasePruner:
    if sc.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    if sc.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=cc.train.steps or "auto")
    return optuna.pruners.NopPruner()


def objective(
    trial: optuna.Trial,
    sc: StudyConfig,
    base: dict,
    space: tuple[Param, ...],
    parent: str,
    tracker: Tracker,
    extra_tags: dict[str, Any] | None = None,
    owner: Callable[[], bool] | None = None,
) -> float:
    """Suggest, train one run with the library (reporting its FID curve to the pruner), return the metric.

    The run's outcome decides the trial's: PRUNED raises ``optuna.TrialPruned``, FAILED raises with the
    reason (recorded in the trial's ``failure`` attribute), here at the objective's own boundary."""
    values = {p.name: p.suggest(trial) for p in space}
    cfg = load_compare_config(base=base, overrides=to_config(sc.arch, space, values)).run(sc.arch, sc.seed)

    def prune(step: int, metrics: dict[str, float]) -> bool:
        with signals.deferred():  # a signal never cuts a storage write in half (bench.signals)
            trial.report(metrics[keys.TRAIN_FID], step)
            return trial.should_prune()

    tags = {"mlflow.parentRunId": parent, "ganbench.study": sc.study_name, "ganbench.trial": trial.number}
    tags |= {TAG_PARAMS: json.dumps(values), **(extra_tags or {})}
    try:
        result = train(cfg, tracker, tags=tags, run_name=f"trial-{trial.number}", prune=prune, owner=owner)
    except Exception as e:  # bad input for this trial's values: no run was made
        with signals.deferred():
            trial.set_user_attr("failure", f"{type(e).__name__}: {e}")
        raise
    except KeyboardInterrupt as e:  # Ctrl-C / SIGTERM: the trial is not a result; re-running resumes the study
        with signals.deferred():
            trial.study.set_user_attr(f"{STALE}{trial.number}", f"stale: {e or 'interrupted'}")
        raise
    with signals.deferred():
        if result.run_id is not None:
            trial.set_user_attr("mlflow_run_id", result.run_id)
        if result.status == FAILED:
            trial.set_user_attr("failure", result.error)
    if result.status == PRUNED:
        raise optuna.TrialPruned(result.error)
    if result.status == FAILED:
        raise RuntimeError(result.error)
    return result.metrics[keys.eval_key(cfg.eval.extractor, sc.metric)]


def _state_callback(tracker: Tracker):
    def cb(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        run_id = trial.user_attrs.get("mlflow_run_id")
        if run_id:
            tracker.attach(run_id).set_tags({"ganbench.trial_state": trial.state.name})
        value = f"{trial.value:.4g}" if trial.value is not None else trial.user_attrs.get("failure", "")
        print(f"{study.study_name} trial {trial.number}: {trial.state.name} {value}", flush=True)

    return cb


def _worker(payload: dict[str, Any], n_trials: int, worker: int) -> None:
    """One worker process: load the study and run ``n_trials`` trials of it."""
    quiet_optuna()
    thread_locks_for_progress_bars()
    if payload.get("threads"):  # K processes on one CPU: share the cores instead of oversubscribing them
        import torch

        torch.set_num_threads(payload["threads"])
    sc = StudyConfig(**payload["study"])
    base, space = payload["base"], space_for(sc.arch, payload["space"])
    storage = open_storage(sc.storage, base["workdir"], sc.study_name)
    study = optuna.load_study(
        study_name=sc.study_name,
        storage=storage,
        sampler=_sampler(sc, worker, space),
        pruner=_pruner(sc, load_compare_config(base=base)),
    )
    tracker = Tracker(base["workdir"])  # one MLflow client for all of this worker's trials
    study.optimize(
        lambda t: objective(t, sc, base, space, payload["parent"], tracker, payload.get("tags")),
        n_trials=n_trials,
        timeout=sc.timeout,
        catch=(Exception,),  # a failing trial is recorded FAIL with its reason; the study goes on
        callbacks=[_state_callback(tracker)],
        gc_after_trial=True,
    )


def _shares(n: int, workers: int) -> list[int]:
    return [n // workers + (1 if i < n % workers else 0) for i in range(workers)]


def cores() -> int:
    """The cores this process may use (a Slurm task's --cpus-per-task, a taskset), else all of them."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def run_study(
    sc: StudyConfig, cc: CompareConfig, space: dict, trial_tags: dict[str, Any] | None = None
) -> tuple[optuna.Study, dict | None]:
    """Create or resume the study and run it to ``sc.trials`` finished trials with ``sc.workers`` processes.

    Returns the study and this invocation's throughput record (see
    :func:`studies.throughput.record_throughput`), or None when the study had no trials left to run.

    With several workers each process gets ``cores() // workers`` torch threads (measured on 2 cores:
    two 2-thread workers were 4.5x slower than one). Trials of an earlier, killed process still RUNNING in a
    journal storage are marked FAIL ("stale") first (the journal has no heartbeat; run one launcher per
    study and host) and do not count toward ``sc.trials``. The parent run and the trials' runs go to
    ``cc.experiment`` (``ganbench tune``: the study's name); ``trial_tags`` are added to every trial's run.
    Raises UserError for bad storage.
    """
    quiet_optuna()
    prepare(cc.run(sc.arch, sc.seed), resolve_device(cc.train.device))  # data, extractors: before any file
    tracker = Tracker(cc.workdir)  # an unreachable tracking server is refused before the study's storage is made
    storage = open_storage(sc.storage, cc.workdir, sc.study_name)
    study = optuna.create_study(
        storage=storage, study_name=sc.study_name, direction=sc.direction, load_if_exists=True,
        sampler=_sampler(sc, 0, space_for(sc.arch, space)), pruner=_pruner(sc, cc),
    )  # fmt: skip
    if study.direction.name.lower() != sc.direction:
        raise UserError(
            f"study {sc.study_name!r} exists with direction {study.direction.name.lower()}, not {sc.direction}"
        )
    if not isinstance(storage, optuna.storages.RDBStorage):
        stale = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
        for t in stale:
            with signals.deferred():
                study.tell(t.number, state=optuna.trial.TrialState.FAIL)
                study.set_user_attr(f"{STALE}{t.number}", "stale: its worker stopped before it finished")
        for t in stale:  # their MLflow runs (found by tag: the worker died before recording the id) end KILLED
            for run_id, status in tracker.find_runs(cc.experiment, "ganbench.trial", str(t.number)):
                if status == "RUNNING":
                    tracker.attach(run_id).end("KILLED", "stale: its worker was killed")
    base = dataclasses.asdict(cc)
    with parent_run(study, sc, cc, space, tracker) as parent:
        done = _n_finished(study)
        t0 = time.perf_counter()
        shares = [n for n in _shares(max(0, sc.trials - done), sc.workers) if n]
        threads = max(1, cores() // len(shares)) if len(shares) > 1 else None
        payload = {
            "study": dataclasses.asdict(sc),
            "base": base,
            "space": space,
            "parent": parent.run_id,
            "threads": threads,
            "tags": trial_tags or {},
        }
        if len(shares) == 1:
            _worker(payload, shares[0], 0)
        elif shares:
            ctx = multiprocessing.get_context("spawn")
            procs = [ctx.Process(target=_worker, args=(payload, n, i)) for i, n in enumerate(shares)]
            for p in procs:
                p.start()
            for p in procs:
                p.join()
            if any(p.exitcode != 0 for p in procs):
                raise RuntimeError(f"worker exit codes {[p.exitcode for p in procs]}")
        metrics = study_metrics(study)
        tp = None
        if shares:
            wall_s = time.perf_counter() - t0
            tp = record_throughput(study, len(shares), threads, _n_finished(study) - done, wall_s, cc)
            metrics |= {"study/trials_per_hour": tp["trials_per_hour"], "study/wall_s": tp["wall_s"]}
        parent.log_metrics(metrics, step=done)
    return study, tp


@contextlib.contextmanager
def parent_run(study: optuna.Study, sc: StudyConfig, cc: CompareConfig, space: dict, tracker: Tracker) -> Iterator[Any]:
    """The study's parent MLflow run in ``cc.experiment`` (``ganbench.kind = study``), made on first use with
    the study's settings as params, and resumed by id (the study attribute ``mlflow_parent_run_id``) after."""
    parent_id = study.user_attrs.get("mlflow_parent_run_id")
    if parent_id and not tracker.has_run(parent_id):
        parent_id = None
    tags = {"ganbench.study": sc.study_name, keys.TAG_ARCH: sc.arch, keys.TAG_KIND: "study"}
    with tracker.run(cc.experiment, f"study-{sc.study_name}", tags, run_id=parent_id) as parent:
        if parent_id is None:
            parent.log_params(
                {f"study.{k}": v for k, v in dataclasses.asdict(sc).items()} | {"space": json.dumps(space)}
            )
            with signals.deferred():
                study.set_user_attr("mlflow_parent_run_id", parent.run_id)
                study.set_user_attr("arch", sc.arch)
                study.set_user_attr("metric", sc.metric)
                study.set_user_attr("base_config", json.dumps(dataclasses.asdict(cc)))
                study.set_user_attr("space", json.dumps(space))
        yield parent


def study_metrics(study: optuna.Study) -> dict[str, float]:
    """``study/n_complete``, ``study/n_pruned``, ``study/n_fail`` and ``study/best_value`` (when one completed);
    trials pruned as surplus (``studies.search_queue``: none of the budget) are not counted."""
    trials = [t for t in study.get_trials(deepcopy=False) if "surplus" not in t.user_attrs]
    counts = {s.name: sum(t.state == s for t in trials) for s in FINISHED}
    metrics = {f"study/n_{k.lower()}": float(v) for k, v in counts.items()}
    if counts["COMPLETE"]:
        metrics["study/best_value"] = study.best_value
    return metrics


def _n_finished(study: optuna.Study) -> int:
    """Finished trials (complete, pruned, failed), without those of a worker that died."""
    stale = failures(study)
    return sum(
        not stale.get(t.number, "").startswith("stale") for t in study.get_trials(deepcopy=False, states=FINISHED)
    )


def failures(study: optuna.Study) -> dict[int, str]:
    """``{trial number: why it failed or was pruned}``: the trial's ``failure`` attribute, or why it was
    failed as stale (its worker died; recorded in the study's user attributes)."""
    out = {
        t.number: str(t.user_attrs["failure"]) for t in study.get_trials(deepcopy=False) if "failure" in t.user_attrs
    }
    out |= {int(k[len(STALE) :]): str(v) for k, v in study.user_attrs.items() if k.startswith(STALE)}
    return out
