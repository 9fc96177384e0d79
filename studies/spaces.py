"""Search spaces, one per architecture.

Ranges follow the "wide" search of Lucic et al. 2018 ("Are GANs Created Equal?", sec. 5): Adam's learning
rate log-uniform in [1e-5, 1e-2] (one rate for G and D, as there), β1 in [0, 0.9], β2 in [0.9, 0.999],
n_critic in {1, …, 5} for critics, the gradient-penalty weight λ log-uniform in [0.1, 100]. Architecture
size (z_dim, widths) and batch size are searched over the values common in the DCGAN/WGAN-GP/SN-GAN
papers. A study file overrides any parameter (``[space.<name>]`` with ``low``/``high``/``log``, ``choices``
or ``fixed``) and may add one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from bench.errors import ConfigError


@dataclass(frozen=True)
class Param:
    """One searched parameter.

    name: its name in the study; targets: the config keys it sets (``model.<arch>.`` is prefixed to keys
    without a section); kind: ``float``, ``int`` or ``categorical``; low/high/log for numbers, choices for
    categoricals; fixed: a constant instead of a search.
    """

    name: str
    targets: tuple[str, ...]
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()
    fixed: Any = None

    def suggest(self, trial: Any) -> Any:
        if self.fixed is not None:
            return self.fixed
        if self.kind == "float":
            return trial.suggest_float(self.name, self.low, self.high, log=self.log)
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_categorical(self.name, list(self.choices))

    def distribution(self) -> Any:
        """The Optuna distribution :meth:`suggest` draws from (None for a fixed value)."""
        import optuna.distributions as d

        if self.fixed is not None:
            return None
        if self.kind == "float":
            return d.FloatDistribution(self.low, self.high, log=self.log)
        if self.kind == "int":
            return d.IntDistribution(int(self.low), int(self.high), log=self.log)
        return d.CategoricalDistribution(list(self.choices))


LR = Param("lr", ("lr_g", "lr_d"), "float", 1e-5, 1e-2, log=True)
BETA1 = Param("beta1", ("beta1",), "float", 0.0, 0.9)
BETA2 = Param("beta2", ("beta2",), "float", 0.9, 0.999)
N_CRITIC = Param("n_critic", ("n_critic",), "int", 1, 5)
GP_WEIGHT = Param("gp_weight", ("gp_weight",), "float", 0.1, 100.0, log=True)
Z_DIM = Param("z_dim", ("z_dim",), "categorical", choices=(64, 100, 128))
WIDTH = Param("width", ("g_width", "d_width"), "categorical", choices=(32, 64))
BATCH = Param("batch_size", ("train.batch_size",), "categorical", choices=(32, 64, 128))
DROPOUT = Param("dropout", ("dropout",), "float", 0.0, 0.5)
CLIP = Param("clip_value", ("clip_value",), "float", 1e-3, 0.1, log=True)  # around WGAN's c = 0.01

SPACES: dict[str, tuple[Param, ...]] = {
    "vanilla": (LR, BETA1, BETA2, Z_DIM, DROPOUT, BATCH),
    "dcgan": (LR, BETA1, BETA2, Z_DIM, WIDTH, BATCH),
    "wgan-gp": (LR, BETA1, BETA2, N_CRITIC, GP_WEIGHT, Z_DIM, WIDTH, BATCH),
    "wgan": (LR, N_CRITIC, CLIP, Z_DIM, WIDTH, BATCH),  # RMSprop: no betas
    "sngan": (LR, BETA1, BETA2, N_CRITIC, Z_DIM, WIDTH, BATCH),
    "cgan": (LR, BETA1, BETA2, Z_DIM, DROPOUT, BATCH),
    "acgan": (LR, BETA1, BETA2, Z_DIM, WIDTH, BATCH),
    "sngan-projection": (LR, BETA1, BETA2, N_CRITIC, Z_DIM, WIDTH, BATCH),
}
GENERIC: tuple[Param, ...] = (LR, BETA1, BETA2)  # architectures without a declared space


def space_for(arch: str, overrides: dict[str, dict[str, Any]] | None = None) -> tuple[Param, ...]:
    """The architecture's space with a study file's ``[space.<name>]`` overrides applied.

    Raises ConfigError for an override that is not a table or has unknown keys or a bad range.
    """
    params = {p.name: p for p in SPACES.get(arch, GENERIC)}
    if not isinstance(overrides or {}, dict):
        raise ConfigError(f"space must be a table of [space.<name>] tables, got {overrides!r}")
    for name, spec in (overrides or {}).items():
        if not isinstance(spec, dict):
            raise ConfigError(f"space.{name} must be a table (low/high/log, choices or fixed), got {spec!r}")
        unknown = set(spec) - {"low", "high", "log", "choices", "fixed", "targets"}
        if unknown:
            raise ConfigError(
                f"unknown key 'space.{name}.{sorted(unknown)[0]}'; allowed: choices, fixed, high, log, low, targets"
            )
        _check_override(name, spec)
        base = params.get(name) or Param(name, tuple(spec.get("targets", (name,))), "float")
        if "choices" in spec:
            base = replace(base, kind="categorical", choices=tuple(spec["choices"]))
        if "low" in spec or "high" in spec:
            low, high = spec.get("low", base.low), spec.get("high", base.high)
            kind = "int" if isinstance(low, int) and isinstance(high, int) and base.kind == "int" else "float"
            if low is None or high is None or not low < high:
                raise ConfigError(f"space.{name}: low ({low}) must be below high ({high})")
            base = replace(base, kind=kind, low=low, high=high)
        base = replace(base, log=bool(spec.get("log", base.log)), fixed=spec.get("fixed"))
        if "targets" in spec:
            base = replace(base, targets=tuple(spec["targets"]))
        if base.log and base.low is not None and base.low <= 0:
            raise ConfigError(f"space.{name}: a log range needs low > 0, got {base.low}")
        params[name] = base
    return tuple(params.values())


def _check_override(name: str, spec: dict[str, Any]) -> None:
    """The types of a ``[space.<name>]`` table: numbers for low/high, a non-empty list for choices, a bool
    for log, a list of config keys for targets. Raises ConfigError naming the key."""

    def number(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    checks = {
        "low": (number, "a number"),
        "high": (number, "a number"),
        "log": (lambda v: isinstance(v, bool), "true or false"),
        "choices": (lambda v: isinstance(v, list) and len(v) > 0, "a non-empty list"),
        "targets": (lambda v: isinstance(v, list) and v and all(isinstance(t, str) for t in v), "a list of keys"),
    }
    for key, (ok, allowed) in checks.items():
        if key in spec and not ok(spec[key]):
            raise ConfigError(f"space.{name}.{key} = {spec[key]!r} is not allowed; expected {allowed}")


def check_space(arch: str, space: tuple[Param, ...], base: dict[str, Any]) -> None:
    """Validate every value a study can try before its first trial: the fixed value, both ends of a range,
    every choice, each through the config of a trial (``base`` is the trials' base config as a dict).

    Raises ConfigError naming the parameter: an unknown target (``[space.x]`` for a key the architecture
    lacks), a value of the wrong type or out of range.
    """
    from bench.config import load_compare_config

    for p in space:
        values = [p.fixed] if p.fixed is not None else list(p.choices) if p.kind == "categorical" else [p.low, p.high]
        for value in values:
            if p.kind == "int" and p.fixed is None:
                value = int(value)
            try:
                load_compare_config(base=base, overrides=to_config(arch, (p,), {p.name: value}))
            except ConfigError as e:
                raise ConfigError(f"space.{p.name} = {value!r}: {e}") from None


def to_config(arch: str, space: tuple[Param, ...], values: dict[str, Any]) -> dict[str, Any]:
    """``{"lr": 1e-4, ...}`` -> ``{"model": {"dcgan": {"lr_g": 1e-4, "lr_d": 1e-4}}, ...}``: the config
    layer of a trial (``bench.config.load_compare_config(overrides=...)``)."""
    out: dict[str, Any] = {}
    for p in space:
        for target in p.targets:
            path = target.split(".") if "." in target else ["model", arch, target]
            node = out
            for part in path[:-1]:
                node = node.setdefault(part, {})
            node[path[-1]] = values[p.name]
    return out
