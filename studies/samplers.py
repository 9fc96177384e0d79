"""Samplers of ganbench's studies beyond Optuna's own: :class:`SeededRandomSampler`."""

from __future__ import annotations

import optuna

from studies.spaces import Param

RETRY_OF = "retry_of"  # trial user attribute: the number of the (stale) trial whose setting it runs again


class SeededRandomSampler(optuna.samplers.RandomSampler):
    """Random search whose trial k gets the k-th draw of one seeded stream, whoever runs it.

    optuna's ``RandomSampler(seed)`` draws from one generator per sampler object: a resumed study (a new
    process, a new generator) would try the first settings again, and K workers would try K streams. Here
    the setting of a study's trial number k is block b of the stream ``RandomSampler(seed)`` draws for
    ``space`` in order, b = k minus the enqueued trials numbered below k. A retry of a dead worker's trial
    (user attribute ``retry_of``) is enqueued with that trial's setting and draws what it lacks from that
    trial's block. So one worker, K workers on several hosts and a resumed study try the same settings, and
    an uninterrupted single-worker study the same as ``RandomSampler(seed)`` itself. Replaying b blocks costs
    b x len(space) draws (microseconds)."""

    def __init__(self, seed: int, space: tuple[Param, ...]) -> None:
        super().__init__(seed=seed)
        self._seed = seed
        self._draws = [(p.name, dist) for p in space if (dist := p.distribution()) is not None and not dist.single()]

    def before_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        trials = study.get_trials(deepcopy=False)
        by_number = {t.number: t for t in trials}
        number, original = trial.number, trial.user_attrs.get(RETRY_OF)
        while original in by_number:  # a retry draws what its setting lacks from its original's block
            number, original = original, by_number[original].user_attrs.get(RETRY_OF)
        block = number - sum("fixed_params" in t.system_attrs for t in trials if t.number < number)
        self._rng.rng.seed(self._seed)
        for _ in range(block):
            for name, dist in self._draws:
                self.sample_independent(study, trial, name, dist)
