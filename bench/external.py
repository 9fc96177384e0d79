"""Score a model trained elsewhere under ganbench's protocol: from its samples (``ganbench eval --samples``) or
from its generator (``ganbench eval --generator``), logged as an MLflow run marked external so that
``ganbench report`` ranks it beside ganbench's own runs.

The samples go through the dataset's protocol exactly as a run's do (``bench.metrics.evaluator``): the same
reference split and subset, the same extractors and weights, ``eval.n_samples`` images (a random subset
drawn with the run seed when the file holds more; fewer is an error), memorisation against the training split,
and for class-conditional samples intra-FID and CAS. A generator is asked for its samples as ganbench asks
its own: z ~ N(0, I) ``(n_samples, z_dim)`` from a CPU generator seeded with the run seed, balanced labels
``0, 1, ..., K-1, 0, ...`` when conditional (``bench.metrics.sampling``).

The run's tags ``ganbench.kind = external``, ``ganbench.external`` (the source) and
``ganbench.external_sha256`` (of the samples file or folder, of a TorchScript file, or of a Python
generator's state_dict) are its provenance; the protocol line says where the samples came from.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
import tempfile
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from architectures import ARCHITECTURES
from bench import keys
from bench.config import CompareConfig, flatten, require_name
from bench.data import load, to_float
from bench.data.samples import check_labels, parse_range, read_samples, sha256_file, to_images
from bench.errors import ConfigError, DataError, UserError
from bench.harness import resolve_device
from bench.hooks import save_grid
from bench.metrics.evaluator import build_evaluator
from bench.metrics.sampling import generate, sample_labels
from bench.run import FINISHED, RunResult, log_evaluation, run_tags, usefulness
from bench.tracking import Run, Tracker


class GeneratorAdapter(nn.Module):
    """A user's generator as ganbench's sampling code calls it: ``z_dim`` and ``forward(z, y=None)``, with
    ``y`` passed only to a conditional one."""

    def __init__(self, module: nn.Module, z_dim: int, conditional: bool):
        super().__init__()
        self.module, self.z_dim, self.conditional = module, z_dim, conditional

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.module(z, y) if self.conditional else self.module(z)


@dataclass(frozen=True)
class LoadedGenerator:
    """A generator from ``--generator SPEC``: the module, its z_dim, the sha256 recorded and how it was
    hashed (``"file"`` or ``"state_dict"``)."""

    module: nn.Module
    z_dim: int
    sha256: str
    hashed: str


def load_generator(spec: str, z_dim: int | None = None) -> LoadedGenerator:
    """Load ``spec``: a TorchScript file (``torch.jit.save``), or ``module:function`` / ``path/file.py:function``
    where ``function()`` returns a ``torch.nn.Module``. ``z_dim``: the latent size, else the module's
    ``z_dim`` attribute.

    Raises DataError for a file that is not TorchScript, an import that fails, a function that does not return
    a module, or no z_dim.
    """
    path = Path(spec).expanduser()
    if path.is_file() and path.suffix.lower() != ".py":
        try:
            with warnings.catch_warnings():  # torch 2.15 deprecates TorchScript; the user chose the format
                warnings.simplefilter("ignore", FutureWarning)
                module = torch.jit.load(str(path), map_location="cpu")
        except Exception as e:
            first = str(e).strip().splitlines()[0][:120] if str(e).strip() else type(e).__name__
            raise DataError(
                f"--generator {spec!r} cannot be loaded as TorchScript ({first}); save it with "
                "torch.jit.save(torch.jit.script(G), PATH), or give module:function"
            ) from None
        sha, hashed = sha256_file(path), "file"
    else:
        module = _call_factory(spec)
        sha, hashed = _state_dict_sha256(module), "state_dict"
    found = z_dim if z_dim is not None else getattr(module, "z_dim", None)
    if not isinstance(found, int) or isinstance(found, bool) or found < 1:
        raise DataError(f"--generator {spec!r}: give --z-dim (the module has no integer z_dim attribute)")
    return LoadedGenerator(module.eval(), found, sha, hashed)


def _call_factory(spec: str) -> nn.Module:
    target, sep, name = spec.rpartition(":")
    if not sep or not target or not name.isidentifier():
        raise DataError(
            f"--generator {spec!r} is neither a file nor module:function (e.g. my_gan.models:load_generator)"
        )
    try:
        if target.endswith(".py"):
            file = Path(target).expanduser()
            if not file.is_file():
                raise DataError(f"--generator {spec!r}: {target} does not exist")
            loader = importlib.util.spec_from_file_location(f"ganbench_external_{file.stem}", file)
            mod = importlib.util.module_from_spec(loader)
            sys.modules[loader.name] = mod  # as an import does (dataclasses, pickling look it up)
            loader.loader.exec_module(mod)
        else:
            if "" not in sys.path and str(Path.cwd()) not in sys.path:
                sys.path.insert(0, str(Path.cwd()))  # as `python -m` does: modules of the current folder
            mod = importlib.import_module(target)
        factory = getattr(mod, name)
    except DataError:
        raise
    except Exception as e:  # ImportError, AttributeError, or anything the user's module raises on import
        raise DataError(f"--generator {spec!r} cannot be imported ({type(e).__name__}: {str(e)[:120]})") from None
    try:
        module = factory()
    except Exception as e:
        raise DataError(f"--generator {spec!r}: {name}() raised {type(e).__name__}: {str(e)[:120]}") from None
    if not isinstance(module, nn.Module):
        raise DataError(f"--generator {spec!r}: {name}() returned {type(module).__name__}, expected a torch.nn.Module")
    return module


def _state_dict_sha256(module: nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in sorted(module.state_dict().items()):
        h.update(k.encode() + b"\0" + v.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def generator_samples(
    loaded: LoadedGenerator,
    n: int,
    image_shape: tuple[int, int, int],
    num_classes: int,
    seed: int,
    device: torch.device,
    batch_size: int,
    value_range: str | None,
    spec: str,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``n`` samples of a loaded generator as uint8 ``(n, C, H, W)`` (its outputs in ``value_range``, default
    ``-1,1``) and their labels (``num_classes > 0``: conditional). Raises DataError when a call fails or the
    outputs have the wrong shape or range."""
    adapter = GeneratorAdapter(loaded.module, loaded.z_dim, num_classes > 0).to(device)
    try:
        images = generate(adapter, n, batch_size, seed, device, num_classes)
    except Exception as e:
        call = "G(z, y)" if num_classes else "G(z)"
        first = str(e).strip().splitlines()[0][:120] if str(e).strip() else type(e).__name__
        raise DataError(
            f"--generator {spec!r}: {call} with z of shape ({min(n, batch_size)}, {loaded.z_dim}) failed "
            f"({type(e).__name__}: {first})"
        ) from None
    rng = parse_range(value_range or "-1,1")  # (generate() returns floats: 0..255 outputs need --range 0,255)
    out = to_images(images, image_shape, rng, f"--generator {spec!r} output")
    return out, sample_labels(n, num_classes) if num_classes else None


@dataclass(frozen=True)
class External:
    """What ``ganbench eval --samples`` / ``--generator`` scores: ``samples`` (a path) or ``generator`` (a spec),
    the model's ``name`` in reports, the float ``value_range``, the generator's ``z_dim`` and whether the model
    is class-``conditional``."""

    name: str
    samples: str | None = None
    generator: str | None = None
    value_range: str | None = None
    z_dim: int | None = None
    conditional: bool = False


def check_name(name: str) -> None:
    """Raise ConfigError unless ``name`` can name an external model: a valid name that is not a registered
    architecture (their rows would merge) nor the floor's."""
    require_name("--name", name)
    if name in ARCHITECTURES.names() or name == keys.KIND_FLOOR:
        raise ConfigError(
            f"--name {name!r} is a ganbench architecture's row; name the external model differently "
            f"(e.g. {name}-external)"
        )


def _select(images: torch.Tensor, labels: torch.Tensor | None, n: int, seed: int, what: str):
    """``n`` of the images (all when there are exactly n; a random subset drawn with ``seed`` when more, in
    file order); raises DataError when there are fewer."""
    total = images.shape[0]
    if total < n:
        raise DataError(f"{what} holds {total} images; eval.n_samples = {n} needs as many (or --n-samples {total})")
    if total == n:
        return images, labels
    keep = torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:n].sort().values
    return images[keep], None if labels is None else labels[keep]


def score_external(cc: CompareConfig, ext: External, tracker: Tracker | None = None) -> tuple[RunResult, list]:
    """Read or draw the external model's samples, score them under ``cc``'s protocol (dataset, eval, the first
    seed) and log them as an MLflow run in ``cc.experiment`` named ``ext.name``. Returns the run's
    :class:`RunResult` and the protocols.

    Raises UserError for bad input (name, samples, generator, too few samples, missing labels), before any
    MLflow run starts.
    """
    check_name(ext.name)
    if (ext.samples is None) == (ext.generator is None):
        raise UserError("give either --samples PATH or --generator SPEC")
    cfg = cc.run(cc.archs[0], cc.seeds[0])
    cfg = replace(cfg, eval=replace(cfg.eval, enabled=True))
    device = resolve_device(cfg.train.device)
    reference = load(cfg.data, cfg.eval.reference_split, cfg.workdir)
    k = reference.num_classes if ext.conditional else 0
    if ext.conditional and reference.num_classes < 2:
        raise ConfigError(f"--conditional: {cfg.data.dataset} has no classes to condition on")
    if ext.samples is not None:
        read = read_samples(ext.samples, reference.image_shape, reference.classes, ext.value_range)
        images, labels, what = read.images, read.labels, Path(ext.samples).name
        source = f"samples read from {what} ({read.kind}, sha256 {read.sha256[:12]})"
        tags = {keys.TAG_EXTERNAL: f"samples {read.kind} {read.path}", keys.TAG_EXTERNAL_SHA256: read.sha256}
        if ext.conditional and labels is None:
            raise DataError(
                f"--conditional: {what} has no labels; give y (N,) ints in [0, {reference.num_classes}) in the "
                "npz, or one sub-folder per class"
            )
        images, labels = _select(images, labels, cfg.eval.n_samples, cfg.seed, what)
    else:
        gen = load_generator(ext.generator, ext.z_dim)
        images, labels = generator_samples(
            gen, cfg.eval.n_samples, reference.image_shape, k, cfg.seed, device, cfg.eval.batch_size,
            ext.value_range, ext.generator,
        )  # fmt: skip
        source = f"generator {ext.generator} (sha256 of its {gen.hashed} {gen.sha256[:12]}), z from the run's seed"
        where = str(Path(ext.generator).resolve()) if Path(ext.generator).is_file() else ext.generator
        tags = {keys.TAG_EXTERNAL: f"generator {where}", keys.TAG_EXTERNAL_SHA256: gen.sha256}
    if labels is not None:
        labels = check_labels(labels, images.shape[0], reference.num_classes, "labels")
    evaluator, plan = build_evaluator(cfg.data, cfg.eval, cfg.workdir, device, cfg.seed, reference)
    use = usefulness(cfg, reference.num_classes, reference, None) if labels is not None else None
    tracker = tracker or Tracker(cc.workdir)  # everything is checked: now the store may be opened
    all_tags = {**run_tags(ext.name, cfg.seed, keys.KIND_EXTERNAL, plan, reference.classes), **tags}
    with tracker.run(cc.experiment, ext.name, all_tags) as run:
        params = {f"eval.{k}": v for k, v in flatten(cfg.to_dict()["eval"]).items()}
        params |= {f"data.{k}": v for k, v in flatten(cfg.to_dict()["data"]).items()}
        params |= {"external.samples": ext.samples, "external.generator": ext.generator}
        params |= {"external.range": ext.value_range, "external.z_dim": ext.z_dim}
        params |= {"external.conditional": labels is not None}
        run.log_params(params)
        found = evaluator.evaluate_images(images, labels, use)
        found.protocols = [replace(p, source=source) for p in found.protocols]
        log_evaluation(run, found, evaluator.train)
        if use is not None:
            run.set_tags({keys.TAG_PROTOCOL + "usefulness": use.protocol()})
        _log_grid(run, images)
        run.log_metrics(found.metrics)
    return RunResult(ext.name, cfg.seed, run.run_id, FINISHED, found.metrics), found.protocols


def _log_grid(run: Run, images: torch.Tensor) -> None:
    """``samples/final.png``: the first 64 images (the report's sample grid), as ganbench's runs log it."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "final.png"
        save_grid(to_float(images[:64]), path, nrow=8)
        run.log_artifact(path, "samples")
