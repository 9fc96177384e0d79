"""Typed, frozen configuration, validated by pydantic: a TOML file plus ``--set a.b=value`` overrides.

File layout (every key optional; see ``studies/mnist-head-to-head.toml``)::

    experiment = "mnist-compare"          # MLflow experiment
    archs = ["vanilla", "dcgan", "wgan-gp", "sngan"]
    seeds = [0]
    workdir = "ganbench-runs"
    [data]   dataset, root
    [train]  steps | epochs, minutes, batch_size, device, ...
    [eval]   n_samples, extractor, reference_split, ...
    [eval.extractors.inception-v3-compat]  # a feature extractor's options: use, weights
    [model.dcgan]                          # per-architecture overrides of the paper defaults
    lr_g = 1e-4

Config travels as data: every source (defaults, a checkpoint's or a study's stored config, the TOML file,
``--set`` items, command-line options, a trial's values) is a nested dict, merged in that order by
:func:`load_compare_config` and validated once. ``--set`` is the only text that is parsed (:func:`parse_set`).

Validation: the config classes are pydantic dataclasses (``frozen``, ``extra="forbid"``); an architecture's
config, a plain frozen dataclass of its plugin, is validated by pydantic too. pydantic was chosen over
OmegaConf because it validates the plain dataclasses that plugins already write (OmegaConf's structured
configs need their own field types and have no ``tuple``/union support to speak of), and it is already
installed with MLflow. Unknown keys, values of the wrong type and values out of range raise
:class:`bench.errors.ConfigError` with one line naming the key and what is allowed.
"""

from bench.config.schema import (
    COMPILE_MODES,
    EXTRACTOR_USE,
    OPTIMIZER_IMPLS,
    CompareConfig,
    DataConfig,
    EvalConfig,
    ExtractorOptions,
    RunConfig,
    SearchConfig,
    TrainConfig,
    default_extractor,
    flatten,
    require_name,
)
from bench.config.sources import (
    ALIASES,
    combine,
    load_compare_config,
    merge,
    nested,
    parse_set,
    read_toml,
    sets_to_dict,
    to_toml,
)
from bench.config.validation import validate

__all__ = [
    "default_extractor",
    "ALIASES",
    "COMPILE_MODES",
    "EXTRACTOR_USE",
    "OPTIMIZER_IMPLS",
    "CompareConfig",
    "DataConfig",
    "EvalConfig",
    "SearchConfig",
    "ExtractorOptions",
    "RunConfig",
    "TrainConfig",
    "combine",
    "flatten",
    "load_compare_config",
    "merge",
    "nested",
    "parse_set",
    "read_toml",
    "require_name",
    "sets_to_dict",
    "to_toml",
    "validate",
]
