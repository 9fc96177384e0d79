"""Atomic checkpoint files.

``save`` writes to a temporary file in the same folder, flushes it to disk, then renames it over the
target, so a crash mid-write leaves the previous good file. ``load`` uses ``torch.load(weights_only=True)``
(no arbitrary code from a checkpoint) and checks that the file is a ganbench checkpoint.

A checkpoint (built by ``bench.trainer.Trainer.state_dict``) holds: ``format``, ``version``, ``arch``,
``config`` (the resolved RunConfig as a dict), ``seed``, ``step`` / ``d_step``, ``generator`` /
``discriminator`` / ``opt_g`` / ``opt_d`` state dicts, ``rng`` (torch, CUDA, numpy, python states) and
``mlflow_run_id``.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import random
import shutil
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.atomic import write_atomic
from bench.config import flatten
from bench.errors import CheckpointError

FORMAT = "ganbench-checkpoint"
VERSION = 1


def save(path: str | os.PathLike[str], state: dict[str, Any]) -> Path:
    """Atomically write ``state`` (tensors, dicts, lists, numbers, strings) to ``path``; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return write_atomic(path, lambda f: torch.save({"format": FORMAT, "version": VERSION, **state}, f))
    except (OSError, RuntimeError) as e:  # a full disk shows up as torch's "unexpected pos" RuntimeError
        free = shutil.disk_usage(path.parent).free / 2**20
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        kept = "the previous checkpoint is kept" if path.exists() else "no earlier checkpoint"
        raise CheckpointError(
            f"cannot write checkpoint {str(path)!r} ({first}); {free:.0f} MiB free there; {kept}"
        ) from None


def load(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a checkpoint onto the CPU.

    Raises:
        CheckpointError: missing file, truncated or foreign file, or a file that is not a ganbench checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        with warnings.catch_warnings():  # a foreign pickle's protocol: torch warns before refusing it
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError, ValueError, OSError) as e:
        if "weights only load failed" in str(e).lower():  # never pass on torch's hint to unpickle it anyway
            raise CheckpointError(
                f"checkpoint {str(path)!r} holds objects other than tensors and plain values; ganbench refuses "
                "to unpickle them (it loads weights only)"
            ) from None
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"checkpoint {str(path)!r} cannot be read (truncated or not a checkpoint): {first}"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{str(path)!r} is not a ganbench checkpoint")
    if state.get("version") != VERSION:
        raise CheckpointError(
            f"checkpoint {str(path)!r} has version {state.get('version')!r}; this ganbench reads {VERSION}"
        )
    for key, kind in {**REQUIRED, **{f"config.{k}": t for k, t in REQUIRED_CONFIG.items()}}.items():
        value = state.get("config", {}).get(key[7:]) if key.startswith("config.") else state.get(key)
        if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
            raise CheckpointError(f"checkpoint {str(path)!r} is damaged: {key!r} is missing or not a {kind.__name__}")
    return state


# what every checkpoint holds (bench.trainer.Trainer.state_dict), checked on load
REQUIRED = {
    "arch": str,
    "seed": int,
    "config": dict,
    "step": int,
    "d_step": int,
    "generator": dict,
    "discriminator": dict,
    "opt_g": dict,
    "opt_d": dict,
    "rng": dict,
}
REQUIRED_CONFIG = {"experiment": str, "workdir": str, "data": dict, "train": dict, "eval": dict, "model": dict}


def check_arch(state: dict[str, Any], arch: str, source: str | os.PathLike[str]) -> None:
    """Raise CheckpointError unless the checkpoint ``state`` (read from ``source``) is of architecture ``arch``."""
    if state.get("arch") != arch:
        raise CheckpointError(f"checkpoint {str(source)!r} is for architecture {state.get('arch')!r}, not {arch!r}")


def foreign_run(resume: str | os.PathLike[str] | None, run_id: str, store: str) -> str:
    """The message for a checkpoint whose MLflow run is not in the store at hand."""
    return (
        f"checkpoint {str(resume)!r} continues MLflow run {run_id}, which is not in {store}; resume it with the "
        "--workdir (or MLFLOW_TRACKING_URI) it was made with"
    )


# what a resumed run cannot change: its state was made with them (the model, its optimiser, the data order)
FIXED_ON_RESUME = (
    "arch",
    "seed",
    "model.",
    "data.dataset",
    "data.image_size",
    "data.channels",
    "train.batch_size",
    "train.precision",
)


def check_resumable(state: dict[str, Any], cfg: Any, gan: Any, source: str | os.PathLike[str]) -> None:
    """Raise CheckpointError, before any run is reopened, unless the checkpoint ``state`` can continue as
    ``cfg``: same architecture, the values of :data:`FIXED_ON_RESUME` unchanged (an override the resumed run
    would not apply is refused, never recorded), and weights that fit the model ``gan``."""
    check_arch(state, cfg.arch, source)
    stored, wanted = flatten(state["config"]), cfg.flat()
    # a model field newer than the checkpoint: it was made with that field's default
    defaults = dataclasses.replace(cfg, model=type(cfg.model)()).flat()
    stored = {**{k: v for k, v in defaults.items() if k.startswith("model.")}, **stored}
    for key in sorted(wanted):
        if key.startswith(FIXED_ON_RESUME) and key in stored and stored[key] != wanted[key]:
            name = key.replace("model.", f"model.{cfg.arch}.", 1)  # as the user writes it
            raise CheckpointError(
                f"{name} = {wanted[key]!r} differs from the checkpoint's {stored[key]!r}; a resumed run keeps "
                "its model, seed, dataset, batch size and precision (start a new run to change them)"
            )
    scheduled = wanted.get("model.lr_schedule", "constant") != "constant" or wanted.get("model.lr_warmup_steps", 0)
    budget = ("train.steps", "train.epochs")
    if scheduled and any(stored.get(k) != wanted.get(k) for k in budget):
        raise CheckpointError(
            f"the budget (train.steps = {wanted.get('train.steps')!r}, train.epochs = {wanted.get('train.epochs')!r})"
            f" differs from the checkpoint's ({stored.get('train.steps')!r}, {stored.get('train.epochs')!r}), and "
            f"model.{cfg.arch}.lr_schedule = {wanted.get('model.lr_schedule')!r} runs over the budget: a resumed "
            "run keeps it (start a new run to change it)"
        )
    try:
        load_weights(gan, state)
    except (KeyError, RuntimeError) as e:
        raise CheckpointError(
            f"checkpoint {str(source)!r} does not match the model: {str(e).splitlines()[0]}"
        ) from None


def load_weights(gan: Any, state: dict[str, Any]) -> None:
    """Load a checkpoint's ``generator`` and ``discriminator`` weights into ``gan`` (``architectures.GAN``).

    Raises KeyError or RuntimeError (torch's) when they do not fit the networks."""
    gan.generator.load_state_dict(state["generator"])
    gan.discriminator.load_state_dict(state["discriminator"])


def rng_state() -> dict[str, Any]:
    """The state of every global RNG a run draws from (torch CPU and CUDA, numpy, python), as tensors and
    lists that ``torch.load(weights_only=True)`` reads back."""
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "python": random.getstate(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    name, key, *rest = state["numpy"]
    np.random.set_state((name, key.numpy().astype(np.uint32), *rest))
    random.setstate(_tuples(state["python"]))


def _tuples(x: Any) -> Any:
    return tuple(_tuples(v) for v in x) if isinstance(x, (list, tuple)) else x
