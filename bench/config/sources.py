"""Config sources as data: TOML files, ``--set`` items and stored configs, merged as nested dicts."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from bench.config.schema import CompareConfig
from bench.config.validation import validate
from bench.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


# keys of earlier versions, still read from TOML files, --set and stored configs (checkpoints, studies)
ALIASES = {
    ("eval", "inception"): ("eval", "extractors", "inception-v3-compat", "use"),
    ("eval", "inception_weights"): ("eval", "extractors", "inception-v3-compat", "weights"),
}


def parse_set(item: str) -> tuple[list[str], Any]:
    """Parse ``"a.b=value"``; the value is read as TOML (``1e-4``, ``true``, ``[1, 2]``, ``"x"``), a bare
    ``none`` / ``null`` is None (e.g. ``train.steps=none``), and any other bare word is a plain string.

    Raises ConfigError if there is no ``=`` or the key is empty.
    """
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key or any(not p for p in key.split(".")):
        raise ConfigError(f"--set {item!r} must look like section.key=value (e.g. train.steps=200)")
    raw = raw.strip()
    if raw.lower() in ("none", "null"):
        return key.split("."), None
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.split("."), value


def nested(path: list[str] | tuple[str, ...], value: Any) -> dict[str, Any]:
    """``nested(["train", "steps"], 5) == {"train": {"steps": 5}}``."""
    out: Any = value
    for p in reversed(path):
        out = {p: out}
    return out


def sets_to_dict(sets: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``--set`` items as one nested dict (later items win)."""
    data: dict[str, Any] = {}
    for item in sets:
        keys, value = parse_set(item)
        node = data
        for p in keys[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: '{p}' is a value, not a section")
        node[keys[-1]] = value
    return data


def merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """``b`` over ``a``, table by table (neither is changed)."""
    out = dict(a)
    for k, v in b.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _normalise(layer: dict[str, Any]) -> dict[str, Any]:
    """One source, ready to merge: old keys renamed (:data:`ALIASES`); a source that sets one of
    ``train.steps`` / ``train.epochs`` clears the other (setting both in one source is an error later)."""
    for old, new in ALIASES.items():
        section = layer.get(old[0])
        if isinstance(section, dict) and old[1] in section:
            section = dict(section)
            value = section.pop(old[1])
            layer = merge({**layer, old[0]: section}, nested(new, value))
    train = layer.get("train")
    if isinstance(train, dict) and ("steps" in train) != ("epochs" in train):
        layer = {**layer, "train": {"steps": None, "epochs": None, **train}}
    return layer


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
    overrides: dict[str, Any] | None = None,
) -> CompareConfig:
    """Defaults <- ``base`` (e.g. a checkpoint's or a study's config) <- TOML file ``path`` <- ``sets``
    (``"a.b=value"``, later wins) <- ``overrides`` (command-line options, a trial's values) -> validated
    CompareConfig. Every source is a nested dict; see :func:`_normalise` for the budget rule.
    """
    layers = {
        "the stored config": base or {},
        f"config file {str(path)!r}": read_toml(path) if path else {},
        "--set": sets_to_dict(sets),
        "the command-line options": overrides or {},
    }
    for source, layer in layers.items():  # before merging: a later table would hide a scalar in its place
        check_shape(layer, source)
    data = combine(*layers.values())
    dataset = data.get("data", {}).get("dataset", "mnist") if isinstance(data.get("data"), dict) else None
    defaults = DATASET_DEFAULTS.get(dataset, {}) if isinstance(dataset, str) else {}  # a wrong type: said below
    return validate(CompareConfig, combine(defaults, data))


# defaults that differ by dataset, under every other source: Stacked MNIST counts its 1 000 modes on 26 000
# samples, as PacGAN (Lin et al. 2018, sec. 5.1) and the VEEGAN protocol it follows
DATASET_DEFAULTS: dict[str, dict[str, Any]] = {"stacked-mnist": {"eval": {"n_samples": 26_000}}}


SECTIONS = ("data", "train", "eval", "model")  # CompareConfig's tables: [data], [train], [eval], [model.<arch>]


def check_shape(layer: dict[str, Any], source: str) -> None:
    """Raise ConfigError if ``layer`` gives a table of :data:`SECTIONS` (or ``model.<arch>``) a plain value,
    e.g. ``train = 5`` in a TOML file; checked per source, before a later source's table could replace it."""
    for key in SECTIONS:
        if key in layer and not isinstance(layer[key], dict):
            raise ConfigError(f"{key} = {layer[key]!r} in {source} must be a table ([{key}] with keys)")
    for arch, table in (layer.get("model") or {}).items():
        if not isinstance(table, dict):
            raise ConfigError(f"model.{arch} = {table!r} in {source} must be a table ([model.{arch}] with keys)")


def combine(*layers: dict[str, Any]) -> dict[str, Any]:
    """Config sources (nested dicts), later wins, each normalised as :func:`_normalise` says."""
    data: dict[str, Any] = {}
    for layer in layers:
        data = merge(data, _normalise(layer))
    return data


def to_toml(data: dict[str, Any]) -> str:
    """Write a config dict as TOML that :func:`load_compare_config` reads back (None values are left out,
    which restores their defaults)."""

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
