"""Typed, frozen configuration: a TOML file plus ``--set a.b=value`` overrides.

File layout (every key optional; see ``studies/mnist-head-to-head.toml``)::

    experiment = "mnist-compare"          # MLflow experiment
    archs = ["vanilla", "dcgan", "wgan-gp", "sngan"]
    seeds = [0]
    workdir = "ganbench-runs"
    [data]   dataset, root
    [train]  steps | epochs, minutes, batch_size, device, ...
    [eval]   n_samples, extractor, reference_split, ...
    [model.dcgan]                          # per-architecture overrides of the paper defaults
    lr_g = 1e-4

Unknown keys and values of the wrong type raise :class:`bench.errors.ConfigError` naming the key.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import ConfigError, UnknownNameError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


OPTIMIZER_IMPLS = ("fused", "foreach", "for-loop", "torch-default")  # train.optimizer_impl
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")  # train.compile_mode (torch.compile's modes)


@dataclass(frozen=True)
class DataConfig:
    """dataset: a registered dataset name; root: folder holding ``MNIST/raw/*.gz`` (None: ``$GANBENCH_DATA``,
    else torchvision downloads into ``<workdir>/data``)."""

    dataset: str = "mnist"
    root: str | None = None


@dataclass(frozen=True)
class TrainConfig:
    """The training budget and the harness's cadence.

    Budget: exactly one of ``steps`` (generator steps) or ``epochs`` (passes of the real data through the
    discriminator: one discriminator step consumes one batch, so an epoch is ``n_critic`` times fewer
    generator steps for a critic with ``n_critic`` > 1); ``minutes`` (wall clock) caps either.
    Cadence, in generator steps (None = automatic: about 10 points / 5 grids per run, 0 = off):
    ``log_every`` (MLflow metrics), ``sample_every`` (sample grid), ``eval_every`` (FID on
    ``eval.during_training_samples`` samples), ``checkpoint_every`` (also always at the end).
    ``warmup_steps``: steps excluded from the timing statistics. ``keep_best``: keep the checkpoint with the
    best FID curve value as ``best.pt`` and evaluate it instead of the last one (the "best FID over
    checkpoints" protocol of Lucic et al. 2018; the run is tagged so).

    Speed: ``fast`` (default) keeps the split on the device and reads losses back only every ``log_every``
    steps; ``fast = false`` is the plain path (batches copied from the host, losses read every step),
    bit-identical to the fast path on CPU. ``optimizer_impl``: the Adam kernel of both paths, ``"fused"``
    (default: one kernel per parameter, on CPU and CUDA), ``"foreach"``, ``"for-loop"``, or
    ``"torch-default"`` (what ``torch.optim.Adam`` picks when not told: for-loop on CPU, foreach on CUDA).
    ``channels_last``: convolution weights and batches in NHWC layout (faster convolutions on CPU's oneDNN
    and on CUDA's tensor cores; no effect on MLPs).
    ``precision``: ``"fp32"`` or ``"bf16"`` (autocast for the forward passes; not bit-identical).
    ``compile``: ``torch.compile`` the generator and discriminator (the gradient penalty uses the eager
    critic, as compiled graphs do not support double backward) with ``compile_mode`` (torch.compile's
    ``mode``: ``"default"``, ``"reduce-overhead"`` = CUDA graphs, valid here because every batch has the
    same shape, or ``"max-autotune"``).
    """

    steps: int | None = None
    epochs: float | None = 2.0
    minutes: float | None = None
    batch_size: int = 64
    device: str = "auto"
    log_every: int = 25
    sample_every: int | None = None
    eval_every: int | None = None
    checkpoint_every: int = 500
    warmup_steps: int = 10
    keep_best: bool = False
    fast: bool = True
    precision: str = "fp32"
    optimizer_impl: str = "fused"
    channels_last: bool = True
    compile: bool = False
    compile_mode: str = "default"

    def __post_init__(self) -> None:
        if (self.steps is None) == (self.epochs is None):
            raise ConfigError("set exactly one of train.steps and train.epochs")
        _require(self.steps is None or self.steps >= 1, "train.steps", self.steps, ">= 1")
        _require(self.epochs is None or self.epochs > 0, "train.epochs", self.epochs, "> 0")
        _require(self.minutes is None or self.minutes > 0, "train.minutes", self.minutes, "> 0")
        _require(self.batch_size >= 1, "train.batch_size", self.batch_size, ">= 1")
        _require(self.log_every >= 1, "train.log_every", self.log_every, ">= 1")
        _require_one_of("train.precision", self.precision, ("fp32", "bf16"))
        _require_one_of("train.optimizer_impl", self.optimizer_impl, OPTIMIZER_IMPLS)
        _require_one_of("train.compile_mode", self.compile_mode, COMPILE_MODES)
        for key in ("sample_every", "eval_every", "checkpoint_every", "warmup_steps"):
            v = getattr(self, key)
            _require(v is None or v >= 0, f"train.{key}", v, ">= 0")
        _require(
            self.device == "auto" or self.device.split(":")[0] in ("cpu", "cuda", "mps"),
            "train.device",
            self.device,
            "'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'",
        )


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation protocol.

    n_samples: generated samples (default 10 000, as Lucic et al. 2018); extractor: the primary feature
    extractor (used for the FID curve during training and checkpoint selection); inception: also score with
    ``inception-v3-compat`` at the end of each run: ``"on"``, ``"off"``, or ``"auto"`` (only on a GPU, where
    10 000 Inception passes take seconds rather than many minutes); inception_weights: a local weights file;
    reference_split / n_reference: the real images compared against (None = the whole split, else its first
    n_reference images); batch_size: images per forward pass; kid_subsets / kid_subset_size: the KID
    estimator (Bińkowski et al. 2018; torch-fidelity's 100 x 1000); prc_neighborhood: k of precision/recall
    (Kynkäänniemi et al. 2019: 3); during_training_samples: samples for the FID curve; enabled: False skips
    evaluation.
    """

    n_samples: int = 10_000
    extractor: str = "lenet-mnist"
    inception: str = "auto"
    inception_weights: str | None = None
    reference_split: str = "test"
    n_reference: int | None = None
    batch_size: int = 500
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    prc_neighborhood: int = 3
    during_training_samples: int = 1000
    enabled: bool = True

    def __post_init__(self) -> None:
        _require(self.n_samples >= 2, "eval.n_samples", self.n_samples, ">= 2")
        _require_one_of("eval.inception", self.inception, ("auto", "on", "off"))
        _require(self.n_reference is None or self.n_reference >= 2, "eval.n_reference", self.n_reference, ">= 2")
        _require(self.batch_size >= 1, "eval.batch_size", self.batch_size, ">= 1")
        _require(self.kid_subsets >= 1, "eval.kid_subsets", self.kid_subsets, ">= 1")
        smallest = min(self.n_samples, self.n_reference or self.n_samples)
        _require(
            2 <= self.kid_subset_size <= smallest,
            "eval.kid_subset_size",
            self.kid_subset_size,
            f"between 2 and the smaller of eval.n_samples / eval.n_reference ({smallest})",
        )
        _require(self.prc_neighborhood >= 1, "eval.prc_neighborhood", self.prc_neighborhood, ">= 1")
        _require(
            self.during_training_samples >= 2, "eval.during_training_samples", self.during_training_samples, ">= 2"
        )


@dataclass(frozen=True)
class RunConfig:
    """Everything one run needs, resolved: stored as MLflow params and in every checkpoint."""

    arch: str
    seed: int
    experiment: str
    workdir: str
    data: DataConfig
    train: TrainConfig
    eval: EvalConfig
    model: Any  # the architecture's config dataclass

    @property
    def run_name(self) -> str:
        return f"{self.arch}-seed{self.seed}"

    @property
    def run_dir(self) -> Path:
        return Path(self.workdir) / "runs" / self.experiment / self.run_name

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def flat(self) -> dict[str, Any]:
        """``{"train.epochs": 1.0, "model.lr_g": 0.0002, ...}`` for MLflow params."""
        return flatten(self.to_dict())


@dataclass(frozen=True)
class CompareConfig:
    """A comparison: every (architecture, seed) pair under the same data/train/eval settings."""

    experiment: str = "mnist-compare"
    archs: tuple[str, ...] = ("vanilla", "dcgan", "wgan-gp", "sngan")
    seeds: tuple[int, ...] = (0,)
    workdir: str = "ganbench-runs"
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    model: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _require(bool(self.archs), "archs", list(self.archs), "at least one architecture")
        _require(bool(self.seeds), "seeds", list(self.seeds), "at least one seed")
        _require(len(set(self.archs)) == len(self.archs), "archs", list(self.archs), "no duplicates")
        _require(len(set(self.seeds)) == len(self.seeds), "seeds", list(self.seeds), "no duplicates")
        _require(bool(self.experiment.strip()), "experiment", self.experiment, "a non-empty name")
        for arch in self.archs:
            self.model_config(arch)  # validate every architecture and its overrides up front
        unused = set(self.model) - set(self.archs)
        if unused:
            # a [model.X] section for an architecture not in the comparison: check the name at least
            from architectures import ARCHITECTURES

            for arch in sorted(unused):
                ARCHITECTURES.get(arch)

    def model_config(self, arch: str) -> Any:
        """The architecture's config dataclass with the ``[model.<arch>]`` overrides applied."""
        from architectures import ARCHITECTURES

        spec = ARCHITECTURES.get(arch)
        return from_dict(spec.config_cls, self.model.get(arch, {}), f"model.{arch}.")

    def run(self, arch: str, seed: int) -> RunConfig:
        return RunConfig(
            arch, seed, self.experiment, self.workdir, self.data, self.train, self.eval, self.model_config(arch)
        )

    def runs(self) -> list[RunConfig]:
        """One RunConfig per (architecture, seed), architectures in the outer loop."""
        return [self.run(a, s) for a in self.archs for s in self.seeds]


def _require(ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"{key} = {value!r} is not allowed; expected {allowed}")


def _require_one_of(key: str, value: Any, allowed: tuple[str, ...]) -> None:
    choices = ", ".join(repr(a) for a in allowed[:-1]) + f" or {allowed[-1]!r}"
    _require(value in allowed, key, value, choices)


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


# --- parsing -------------------------------------------------------------------------------------------


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; return it converted (list -> tuple, int -> float)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, key)
            except ConfigError as e:
                errors.append(e)
        raise ConfigError(f"{key} = {value!r} has the wrong type; expected {_type_name(tp)}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key} = {value!r} has the wrong type; expected a list")
        item_types = [args[0]] * len(value) if len(args) == 2 and args[1] is Ellipsis else list(args)
        if len(item_types) != len(value):
            raise ConfigError(f"{key} = {value!r} needs {len(item_types)} items")
        return tuple(_coerce(v, t, f"{key}[{i}]") for i, (v, t) in enumerate(zip(value, item_types, strict=True)))
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key} = {value!r} has the wrong type; expected a table")
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif tp is Any:
        return value
    else:  # pragma: no cover - a field type this parser does not know is a bug in ganbench
        raise TypeError(f"unsupported config field type {tp!r} for {key}")
    raise ConfigError(f"{key} = {value!r} has the wrong type; expected {_type_name(tp)}")


def from_dict(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    """Build the frozen dataclass ``cls`` from ``data``, checking keys and types.

    Nested dataclass fields take nested tables. Raises ConfigError on an unknown key, a wrong type, or a
    value that the dataclass's own checks reject (their ValueError is re-raised as ConfigError).
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'} must be a table, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"unknown key {prefix + unknown[0]!r}; allowed: {', '.join(sorted(fields))}")
    kwargs = {}
    for name, value in data.items():
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            kwargs[name] = from_dict(tp, value, f"{prefix}{name}.")
        else:
            kwargs[name] = _coerce(value, tp, f"{prefix}{name}")
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except UnknownNameError as e:
        raise ConfigError(f"{prefix}{e}" if not prefix else f"{prefix.rstrip('.')}: {e}") from None
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{prefix.rstrip('.') or cls.__name__}: {e}") from None


def parse_set(item: str) -> tuple[list[str], Any]:
    """Parse ``"a.b=value"``; the value is read as TOML (``1e-4``, ``true``, ``[1, 2]``, ``"x"``) and
    otherwise taken as a plain string.

    Raises ConfigError if there is no ``=`` or the key is empty.
    """
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key or any(not p for p in key.split(".")):
        raise ConfigError(f"--set {item!r} must look like section.key=value (e.g. train.steps=200)")
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.split("."), value


def _set_path(d: dict[str, Any], path: list[str], value: Any, item: str) -> None:
    for p in path[:-1]:
        nxt = d.setdefault(p, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"--set {item!r}: '{p}' is a value, not a section")
        d = nxt
    d[path[-1]] = value


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def read_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a TOML config file; raises ConfigError if it is missing or not valid TOML."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {str(p)!r} does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"config file {str(p)!r} is not valid TOML: {e}") from None
    except OSError as e:
        raise ConfigError(f"config file {str(p)!r} cannot be read: {e.strerror}") from None


def load_compare_config(
    path: str | os.PathLike[str] | None = None,
    sets: list[str] | tuple[str, ...] = (),
    base: dict[str, Any] | None = None,
) -> CompareConfig:
    """Defaults <- ``base`` (e.g. a checkpoint's config) <- TOML file ``path`` <- ``sets`` (``"a.b=value"``,
    later wins) -> validated CompareConfig.

    Budget rule: setting one of ``train.steps`` / ``train.epochs`` clears the default of the other; setting
    both (in the file or with --set) is an error.
    """
    data: dict[str, Any] = _merge(base or {}, read_toml(path) if path else {})
    for item in sets:
        keys, value = parse_set(item)
        _set_path(data, keys, value, item)
    train = data.get("train")
    if isinstance(train, dict) and ("steps" in train) != ("epochs" in train):
        train.setdefault("steps" if "epochs" in train else "epochs", None)
    return from_dict(CompareConfig, data)


def to_toml(data: dict[str, Any]) -> str:
    """Write a config dict as TOML that :func:`load_compare_config` reads back (None values are left out,
    which restores their defaults)."""
    import json

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float, str)):
            return json.dumps(v)  # JSON numbers and strings are TOML values
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(value(x) for x in v) + "]"
        raise TypeError(f"cannot write {v!r} as TOML")

    def table(d: dict[str, Any], prefix: str) -> list[str]:
        lines = [f"{k} = {value(v)}" for k, v in d.items() if v is not None and not isinstance(v, dict)]
        for k, v in d.items():
            if isinstance(v, dict) and v:
                name = f"{prefix}{k}" if "-" not in k else f'{prefix}"{k}"'
                header = ["", f"[{name}]"] if any(not isinstance(x, dict) for x in v.values()) else []
                lines += [*header, *table(v, f"{name}.")]
        return lines

    return "\n".join(table(data, "")).lstrip("\n") + "\n"
