"""Validation with pydantic, and its errors in ganbench's one-line form (``bench.errors.ConfigError``)."""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from typing import Any

from pydantic import TypeAdapter, ValidationError

from architectures.registry import describe_range, out_of_range
from bench.errors import ConfigError, UnknownNameError

_EXPECTED = {"int": "int", "float": "float", "bool": "bool", "string": "str", "tuple": "a list", "list": "a list"}


@functools.cache
def _adapter(cls: type) -> TypeAdapter:
    return TypeAdapter(cls)


def _type_at(cls: Any, loc: list[str]) -> Any:
    """The (``Annotated``) type reached from ``cls`` along ``loc`` (fields of dataclasses, dict values)."""
    tp, parts = cls, list(loc)
    while parts:
        bare = _bare(tp)
        if dataclasses.is_dataclass(bare):
            tp = typing.get_type_hints(bare, include_extras=True).get(parts.pop(0))
        elif typing.get_origin(bare) is dict:
            tp, _ = typing.get_args(bare)[1], parts.pop(0)
        else:
            return None
    return tp


def _fields_at(cls: Any, loc: list[str]) -> list[str]:
    """The field names of the dataclass reached from ``cls`` along ``loc`` (through dict values too)."""
    tp = _bare(_type_at(cls, loc))
    return sorted(f.name for f in dataclasses.fields(tp)) if dataclasses.is_dataclass(tp) else []


def _bare(tp: Any) -> Any:
    """``tp`` without its ``Annotated`` constraints and ``None`` arm: ``Annotated[int, Field(ge=1)] | None``
    -> ``int``; a ``Literal`` -> the type of its values (the type check comes first, the choice after)."""
    if typing.get_origin(tp) is typing.Annotated:
        return _bare(typing.get_args(tp)[0])
    if typing.get_origin(tp) is typing.Literal:
        return type(typing.get_args(tp)[0])
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(args) == 1:
        return _bare(args[0]) | None
    return tp


def _allowed(tp: Any) -> str:
    """What a constrained field allows, as the error says it: its ``Field(description=...)``, its declared
    range (``describe_range``), or its ``Literal`` choices (``'fp32' or 'bf16'``)."""
    for arm in (tp, *typing.get_args(tp)):
        if typing.get_origin(arm) is typing.Annotated:
            described = [m.description for m in arm.__metadata__ if getattr(m, "description", None)]
            return described[0] if described else describe_range(arm.__metadata__) or ""
        if typing.get_origin(arm) is typing.Literal:
            choices = typing.get_args(arm)
            return ", ".join(repr(c) for c in choices[:-1]) + f" or {choices[-1]!r}"
    return ""


_RANGE_ERRORS = ("greater_than", "greater_than_equal", "less_than", "less_than_equal", "finite_number", "literal_error")


def _one_line(e: ValidationError, cls: type, prefix: str) -> str:
    """The first error of a pydantic ValidationError in ganbench's one-line form."""
    err = e.errors(include_url=False)[0]
    loc = [str(p) for p in err["loc"]]
    key = (prefix + ".".join(loc)).rstrip(".")
    kind = err["type"]
    if kind in ("unexpected_keyword_argument", "extra_forbidden"):
        return f"unknown key {key!r}; allowed: {', '.join(_fields_at(cls, loc[:-1]))}"
    if kind == "value_error":  # a config class's own check
        return f"{key or cls.__name__}: {err['msg'].removeprefix('Value error, ')}"
    if kind in _RANGE_ERRORS:  # a declared range or choice
        tp = _type_at(cls, loc)
        value = float(err["input"]) if _bare(tp) in (float, float | None) else err["input"]
        if not hasattr(cls, "__pydantic_fields__"):  # a plain dataclass (an architecture's): as check_declared says
            metadata = typing.get_args(tp)[1:] if typing.get_origin(tp) is typing.Annotated else ()
            return f"{prefix.rstrip('.') or cls.__name__}: {out_of_range(loc[-1], value, metadata)}"
        return f"{key} = {value!r} is not allowed; expected {_allowed(tp)}"
    if kind in ("dataclass_type", "dict_type", "model_type"):
        return f"{key} must be a table, got {err['input']!r}"
    expected = _EXPECTED.get(kind.split("_")[0], err["msg"].lower())
    return f"{key} = {err['input']!r} has the wrong type; expected {expected}"


def _is_table(tp: Any) -> bool:
    return dataclasses.is_dataclass(tp) or tp is dict or typing.get_origin(tp) is dict


def _tuples(value: Any) -> Any:
    """TOML has lists only: read them as the tuples the config classes declare."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def _check_types_strictly(cls: type, data: dict[str, Any], prefix: str) -> None:
    """Each value against its field's type in pydantic's strict mode (``true`` is no int, ``"64"`` no int,
    ``1.5`` no int; an int is a float), for plain dataclasses of plugins as for ganbench's own classes.
    Tables (nested config classes) are left to their own validation."""
    hints = typing.get_type_hints(cls)
    for name, value in data.items():
        tp = hints.get(name)  # an unknown key is reported by the validation proper
        if tp is None:
            continue
        tp = _bare(tp)  # the type here; ranges and choices in the validation proper
        if dataclasses.is_dataclass(tp) and isinstance(value, dict):
            _check_types_strictly(tp, value, f"{prefix}{name}.")
        elif typing.get_origin(tp) is dict and isinstance(value, dict):
            item = typing.get_args(tp)[1]
            for key, sub in value.items() if dataclasses.is_dataclass(item) else ():
                if isinstance(sub, dict):
                    _check_types_strictly(item, sub, f"{prefix}{name}.{key}.")
        elif not _is_table(tp):
            try:
                _adapter(tp).validate_python(_tuples(value), strict=True)
            except ValidationError as e:
                raise ConfigError(_one_line(e, cls, f"{prefix}{name}.")) from None


def validate(cls: type, data: Any, prefix: str = "") -> Any:
    """Build the frozen dataclass ``cls`` from the nested dict ``data``, checking keys, types and ranges.

    Works for ganbench's pydantic config classes and for an architecture's plain dataclass alike. Raises
    ConfigError on an unknown key, a wrong type, or a value that the class's own checks reject.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'} must be a table, got {data!r}")
    allowed = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - allowed)
    if unknown:  # checked here too: a plugin's plain dataclass would ignore unknown keys
        raise ConfigError(f"unknown key {prefix + unknown[0]!r}; allowed: {', '.join(sorted(allowed))}")
    _check_types_strictly(cls, data, prefix)
    try:
        return _adapter(cls).validate_python(data)
    except ValidationError as e:
        raise ConfigError(_one_line(e, cls, prefix)) from None
    except ConfigError:
        raise
    except (UnknownNameError, TypeError) as e:
        raise ConfigError(f"{prefix.rstrip('.')}: {e}" if prefix else str(e)) from None
