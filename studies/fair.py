"""The fair head-to-head: ``ganbench compare --search N`` (a ``[search]`` table in compare files).

The protocol of Lucic et al. 2018 ("Are GANs Created Equal?", NeurIPS) and Kurach et al. 2019: every
architecture gets a search of the same size over its space (``studies.spaces``), with the same sampler
(random search by default: unbiased budget curves), the same sampler seed and the same per-trial budget in
the same unit (``train.budget_unit``); then each architecture's best setting is re-run over the comparison's
seeds at the comparison's budget and evaluated on the full protocol. Everything lands in the comparison's
MLflow experiment: a parent run per architecture's search (``ganbench.kind = study``) with its trials as
children (``ganbench.kind = trial``, tag ``ganbench.trial_params``), and the re-seeded runs (ordinary runs,
tagged ``ganbench.search_best``) that the comparison table ranks. The report's search section
(``reports.search``) reads them back: FID distributions, the expected best FID against trials and compute
(Dodge et al. 2019), the best settings.

A search killed in the middle and started again resumes each architecture's study up to ``search.trials``
trials (a killed trial is failed as stale and retried with its setting, ``studies.search_queue``); finished
final runs are kept.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import optuna

from bench import keys
from bench.compare import CompareResult, compare
from bench.config import CompareConfig, combine, load_compare_config
from bench.errors import UserError
from bench.run import RunResult
from bench.tracking import Tracker
from studies.grid import run_grid
from studies.runner import TUNE_DEFAULTS, StudyConfig
from studies.search_queue import run_searches
from studies.spaces import check_space, space_for, to_config

KIND_STUDY, KIND_TRIAL = "study", "trial"
TAG_SEARCH = "ganbench.search"  # a fair comparison's runs: the search they belong to (the experiment)
TAG_SEARCH_BEST = "ganbench.search_best"  # a final run: "trial T of N (FID x)", the setting it re-runs


def study_name(experiment: str, arch: str) -> str:
    """The Optuna study of ``arch``'s search in the comparison ``experiment``."""
    return f"{experiment}-{arch}-search"


def trial_config(cc: CompareConfig) -> CompareConfig:
    """The base config of every trial: the comparison's, with the search's per-trial budget (``search.steps``
    / ``search.epochs``; None: the comparison's), ``eval.search_samples`` samples, and no usefulness
    experiment or Inception (no objective reads them; ``ganbench tune``'s trial defaults)."""
    s, e = cc.search, cc.eval
    n = e.search_samples or e.n_samples
    budget = {"steps": s.steps} if s.steps is not None else {"epochs": s.epochs} if s.epochs is not None else {}
    overrides = {
        "train": budget,  # (a layer that sets one of steps / epochs clears the other)
        "eval": {"n_samples": n, "kid_subset_size": min(e.kid_subset_size, n), "usefulness": False},
    }
    base = combine({"eval": {"extractors": TUNE_DEFAULTS["eval"]["extractors"]}}, dataclasses.asdict(cc))
    return load_compare_config(base=base, overrides=overrides)


@dataclass
class SearchOutcome:
    """One architecture's search: its study, the best trial's suggested values and model/train overrides."""

    arch: str
    study: optuna.Study
    best_values: dict[str, Any]
    overrides: dict[str, Any]


def study_config(cc: CompareConfig, arch: str, storage: str | None = None) -> StudyConfig:
    """The Optuna study of ``arch``'s search: ``search.trials`` trials, FID, the search's sampler, pruner and seed."""
    s = cc.search
    return StudyConfig(
        arch=arch, name=study_name(cc.experiment, arch), trials=s.trials, metric=keys.FID, sampler=s.sampler,
        pruner=s.pruner, storage=storage, seed=s.seed,
    )  # fmt: skip


def outcome(arch: str, study: optuna.Study, trials: int) -> SearchOutcome:
    """The search's best trial as a SearchOutcome; raises UserError when no trial completed (nothing to re-run)."""
    done = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        raise UserError(f"the search of {arch} completed no trial of {trials}; see its trials in the report")
    best = min(done, key=lambda t: t.value)
    space = space_for(arch)
    values = {p.name: best.params.get(p.name, p.fixed) for p in space}
    return SearchOutcome(arch, study, values, to_config(arch, space, values))


def search(
    cc: CompareConfig, storage: str | None = None, workers: int = 1, devices: tuple[str, ...] = ()
) -> list[SearchOutcome]:
    """Run (or resume) every architecture's search of ``cc.search.trials`` trials as one queue of ``workers``
    processes (``studies.search_queue``); raises UserError when an architecture completed no trial."""
    configs = [
        (study_config(cc, arch, storage), trial_config(replace(cc, archs=(arch,), seeds=(cc.search.seed,))))
        for arch in cc.archs
    ]
    tags = {keys.TAG_KIND: KIND_TRIAL, TAG_SEARCH: cc.experiment}
    studies = run_searches(configs, storage, workers, devices, tags=tags)
    return [outcome(arch, study, cc.search.trials) for arch, study in zip(cc.archs, studies, strict=True)]


def fair_compare(
    cc: CompareConfig,
    storage: str | None = None,
    workers: int = 1,
    devices: tuple[str, ...] = (),
    show_progress: bool = True,
    on_run_end: Callable[[RunResult], None] | None = None,
    on_search_end: Callable[[SearchOutcome], None] | None = None,
) -> CompareResult:
    """Search every architecture of ``cc`` (``cc.search``), then re-run each one's best setting over
    ``cc.seeds`` at ``cc``'s budget (the ordinary comparison, resumed: finished final runs are kept).

    With ``workers`` > 1, ``devices`` or ``storage`` the trials of all architectures are one queue
    (``studies.search_queue``) and the final runs a shared grid (``studies.grid``: ``compare-<experiment>-finals``,
    one per architecture when the search space has a train key, the batch size). Raises UserError for bad input
    before any trial, and when an architecture's search completed no trial.
    """
    if cc.search.trials < 1:
        raise UserError("search.trials must be >= 1 for a search comparison (--search N)")
    for arch in cc.archs:  # every architecture's space against the config, before any trial
        check_space(arch, space_for(arch), dataclasses.asdict(trial_config(cc)))
    outcomes = search(cc, storage, workers, devices)
    for o in outcomes:
        if on_search_end:
            on_search_end(o)
    model = {a: dict(cc.model.get(a, {})) for a in cc.archs}
    train_overrides: dict[str, Any] = {}
    for o in outcomes:
        for section, values in o.overrides.items():
            if section == "model":
                model[o.arch] |= values.get(o.arch, {})
            else:  # e.g. train.batch_size: a train key, so the finals run one comparison per architecture
                train_overrides.setdefault(o.arch, {}).update({section: values})
    results: list[RunResult] = []
    floor: list[RunResult] = []
    shared = workers > 1 or bool(devices) or storage is not None
    finals = _final_configs(cc, model, train_overrides)
    for arch_cc in finals:  # resumed: a finished floor or run is kept
        if shared:
            grid = f"{cc.experiment}-finals" + (f"-{arch_cc.archs[0]}" if len(finals) > 1 else "")
            res = run_grid(arch_cc, storage, workers, devices, resume=True, show_progress=show_progress, name=grid)
        else:
            res = compare(arch_cc, show_progress=show_progress, on_run_end=on_run_end, resume=True)
        results += [r for r in res.runs if r.arch != keys.KIND_FLOOR]
        floor = [r for r in res.runs if r.arch == keys.KIND_FLOOR] or floor
    _tag_finals(cc, outcomes, results)
    return CompareResult(results + floor)


def _final_configs(cc: CompareConfig, model: dict, train_overrides: dict) -> list[CompareConfig]:
    """One comparison per architecture when some searched a train key (batch size), else one for all."""
    if not train_overrides:
        return [replace(cc, model=model, search=replace(cc.search, trials=0))]
    out = []
    for arch in cc.archs:
        base = dataclasses.asdict(cc) | {"archs": [arch], "model": {arch: model[arch]}}
        base["search"] = dataclasses.asdict(cc.search) | {"trials": 0}
        for section, values in train_overrides.get(arch, {}).items():
            base[section] = {**base[section], **values}
        out.append(load_compare_config(base=base))
    return out


def _tag_finals(cc: CompareConfig, outcomes: list[SearchOutcome], results: list[RunResult]) -> None:
    tracker = Tracker(cc.workdir)
    by_arch = {o.arch: o for o in outcomes}
    for r in results:
        o = by_arch.get(r.arch)
        if o is None or r.run_id is None:
            continue
        best = o.study.best_trial
        tracker.attach(r.run_id).set_tags(
            {
                TAG_SEARCH: cc.experiment,
                TAG_SEARCH_BEST: f"trial {best.number} of {cc.search.trials} (FID {best.value:.4g})",
                "ganbench.search_best_params": json.dumps(o.best_values),
            }
        )
