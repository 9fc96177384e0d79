"""The plugin registry of GAN variants.

One generic :class:`Registry` (also used for losses, datasets and feature extractors), the architecture
contract :class:`ArchSpec` / :class:`GAN`, and :func:`build_gan`, the only reader of the architecture
registry. Third-party packages add architectures through the entry-point group ``ganbench.architectures``::

    # the plugin's pyproject.toml
    [project.entry-points."ganbench.architectures"]
    my-gan = "my_package.my_gan:SPEC"     # an ArchSpec, or a module that registers itself on import
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import re
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:  # the registry imports no torch: `import bench.errors` stays cheap (CLI start-up)
    from torch import Tensor, nn

T = TypeVar("T")
_NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
ENTRY_POINT_GROUP = "ganbench.architectures"


class UserError(Exception):
    """Bad input from the user: the message names the bad value and what is allowed.

    The root of every error a user can cause (``bench.errors`` re-exports it and derives the others from it);
    it lives here, in the lowest layer, so that the registry's own error can be one.
    """


class UnknownNameError(UserError, KeyError):
    """A name (architecture, loss, dataset, extractor) that is not registered."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class PluginWarning(UserWarning):
    """A plugin that failed to load and was skipped (the CLI prints it as one ``warning:`` line)."""


class Registry(Generic[T]):
    """A name -> object map with checked, stable kebab-case names.

    Args:
        kind: what is registered ("architecture", "loss", ...), used in error messages.
        base: if given, every registered object must be an instance of it.

    Raises (at registration):
        ValueError: a name that is not kebab-case, a duplicate name, or an object of the wrong type.
    """

    def __init__(self, kind: str, base: type | None = None):
        self.kind, self.base = kind, base
        self._items: dict[str, T] = {}
        self._broken: dict[str, str] = {}  # name -> why it could not be registered
        self._loaders: list[Callable[[], None]] = []

    def register(self, name: str, obj: T) -> T:
        if self.base is not None and not isinstance(obj, self.base):
            raise ValueError(f"{self.kind} {name!r} must be a {self.base.__name__}, got {type(obj).__name__}")
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"{self.kind} name {name!r} must be kebab-case (e.g. 'wgan-gp')")
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._items[name] = obj
        return obj

    def unregister(self, name: str) -> None:
        """Remove ``name``, registered or broken (for tests and interactive use)."""
        self._items.pop(name, None)
        self._broken.pop(name, None)

    def mark_broken(self, name: str, why: str) -> None:
        """Record that ``name`` could not be registered: lookups of it raise with ``why``; others go on."""
        self._broken[name] = why

    def broken(self) -> dict[str, str]:
        """``{name: why}`` of what could not be registered (e.g. plugins that failed to import)."""
        self._load()
        return dict(self._broken)

    def add_loader(self, loader: Callable[[], None], first: bool = False) -> None:
        """Run ``loader`` once, before the first lookup (used to load the built-ins and the entry-point
        plugins lazily); ``first`` puts it before the loaders added so far.

        A loader that raises is recorded as broken (see :meth:`broken`) instead of failing the lookup, so
        every lookup gives the same answer."""
        self._loaders.insert(0 if first else len(self._loaders), loader)

    def _load(self) -> None:
        while self._loaders:
            loader = self._loaders.pop(0)
            try:
                loader()
            except Exception as e:  # a loader must not take the registry down with it
                self._broken[getattr(loader, "__name__", "loader")] = f"{type(e).__name__}: {e}"

    def get(self, name: str) -> T:
        """Return the object registered as ``name``; raises UnknownNameError when it is not (the message names
        the registered ones, or the close ones when there are many) or could not be (it says why)."""
        self._load()
        if name in self._broken and name not in self._items:
            raise UnknownNameError(f"{self.kind} {name!r} cannot be used: {self._broken[name]}")
        if name in self._items:
            return self._items[name]
        names = self.names()
        if len(names) <= 12:
            raise UnknownNameError(f"unknown {self.kind} {name!r}; registered: {', '.join(names) or '(none)'}")
        close = ", ".join(map(repr, difflib.get_close_matches(str(name), names, n=3, cutoff=0.5)))
        hint = f"did you mean {close}? " if close else ""
        raise UnknownNameError(f"unknown {self.kind} {name!r}; {hint}`ganbench list` shows all {len(names)}")

    def names(self) -> list[str]:
        self._load()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


OPTIMIZERS = ("adam", "rmsprop")
LR_SCHEDULES = ("constant", "linear-decay", "cosine")


@dataclass(frozen=True, kw_only=True)
class OptimSpec:
    """The training recipe of an architecture, read by the harness.

    ``optimizer``: ``"adam"`` (Kingma & Ba 2015, with ``betas``) or ``"rmsprop"`` (torch's defaults,
    alpha 0.99; WGAN's, Arjovsky et al. 2017, Algorithm 1) for both networks, learning rates
    ``lr_g``/``lr_d``; ``n_critic`` discriminator steps per generator step; ``gp_weight`` (λ) scales the
    gradient penalty of Gulrajani et al. 2017 (0 disables it); ``clip_value`` c > 0 clamps every
    discriminator weight to ``[-c, c]`` after each of its steps (WGAN's weight clipping, Arjovsky et al. 2017;
    0 = off). ``lr_schedule``: both learning rates times a factor of the generator step t of T:
    ``"constant"`` (1), ``"linear-decay"`` (1 - t/T, to 0 at the end of the budget, as in Gulrajani et al.
    2017's CIFAR-10 models) or ``"cosine"`` ((1 + cos(π t/T)) / 2, Loshchilov & Hutter 2017), after a linear
    warm-up from 0 over ``lr_warmup_steps``.
    """

    lr_g: float
    lr_d: float
    betas: tuple[float, float]
    n_critic: int = 1
    gp_weight: float = 0.0
    optimizer: str = "adam"
    clip_value: float = 0.0
    lr_schedule: str = "constant"
    lr_warmup_steps: int = 0

    def lr_factor(self, step: int, total: int) -> float:
        """The learning-rate factor at generator step ``step`` (0-based) of ``total``, in ``[0, 1]``."""
        if step < self.lr_warmup_steps:
            return (step + 1) / self.lr_warmup_steps
        if self.lr_schedule == "constant" or total <= self.lr_warmup_steps:
            return 1.0
        progress = min(1.0, (step - self.lr_warmup_steps) / (total - self.lr_warmup_steps))
        if self.lr_schedule == "linear-decay":
            return 1.0 - progress
        return 0.5 * (1.0 + math.cos(math.pi * progress))


@dataclass
class GAN:
    """What an architecture's ``build`` returns.

    Unconditional (``num_classes == 0``): ``generator(z)``: z ``(N, generator.z_dim)`` float -> images
    ``(N, C, H, W)`` in ``[-1, 1]``; ``discriminator(x)``: ``(N, C, H, W)`` -> logits / critic scores ``(N,)``,
    no sigmoid.

    Class-conditional (``num_classes = K >= 2``, from an :class:`ArchSpec` with ``conditional=True``):
    ``generator(z, y)`` and ``discriminator(x, y)`` with labels ``y`` int64 ``(N,)`` in ``[0, K)``. With
    ``aux_weight > 0`` (an auxiliary classifier, AC-GAN: Odena et al. 2017) the discriminator returns
    ``(logits (N,), class_logits (N, K))`` and the harness adds ``aux_weight`` x the cross-entropy of the
    class logits on real and fake images to D's loss, and on fake images to G's loss.

    Neither network calls ``backward()`` or ``optimizer.step()``: the harness does. Callers go through
    :meth:`generate` and :meth:`discriminate`, which hide the difference.
    """

    generator: nn.Module
    discriminator: nn.Module
    loss_name: str
    optim: OptimSpec
    num_classes: int = 0
    aux_weight: float = 0.0

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0

    def generate(self, z: Tensor, y: Tensor | None = None, generator: Any = None) -> Tensor:
        """``G(z)``, or ``G(z, y)`` for a conditional GAN; ``generator``: a wrapper of G to call instead
        (e.g. its ``torch.compile``-d form)."""
        g = self.generator if generator is None else generator
        return g(z, y) if self.conditional else g(z)

    def discriminate(self, x: Tensor, y: Tensor | None = None, discriminator: Any = None) -> tuple[Tensor, Any]:
        """``(scores (N,), class_logits (N, K) or None)`` of images ``x`` (with labels ``y`` if conditional)."""
        d = self.discriminator if discriminator is None else discriminator
        out = d(x, y) if self.conditional else d(x)
        return out if self.aux_weight > 0 else (out, None)


@dataclass(frozen=True)
class ArchSpec:
    """An architecture plugin.

    Attributes:
        name: stable kebab-case key; it ends up in MLflow params and report tables.
        config_cls: a frozen dataclass of hyperparameters; every field needs a default (from the paper).
        build: ``build(cfg, image_shape, num_classes) -> GAN``; ``image_shape`` is ``(C, H, W)``.
        summary: one line for ``ganbench list`` (what it is, which paper).
        conditional: True for a class-conditional GAN: ``build`` gets the dataset's number of classes K >= 2
            and returns a :class:`GAN` with ``num_classes = K`` (see :class:`GAN` for the call signatures).
        trainer: None (the harness's ``bench.trainer.Trainer``), or a subclass of it that overrides a step
            (``d_step``, ``g_step``, ``run_step``), e.g. to add a regulariser; every run of this architecture
            trains with it, hooks and budget unchanged. (A plugin outside this package may import
            ``bench.trainer``; the built-ins do not need to.)
    """

    name: str
    config_cls: type
    build: Callable[[Any, tuple[int, int, int], int], GAN]
    summary: str = ""
    conditional: bool = False
    trainer: type | None = None

    def __post_init__(self) -> None:
        if not (dataclasses.is_dataclass(self.config_cls) and isinstance(self.config_cls, type)):
            raise ValueError(f"architecture {self.name!r}: config_cls must be a dataclass type")
        if not callable(self.build):
            raise ValueError(f"architecture {self.name!r}: build must be callable")
        if self.trainer is not None and not isinstance(self.trainer, type):
            raise ValueError(f"architecture {self.name!r}: trainer must be a class (a bench.trainer.Trainer)")


ARCHITECTURES: Registry[ArchSpec] = Registry("architecture", ArchSpec)


def register(spec: ArchSpec) -> ArchSpec:
    """Register an architecture; raises ``ValueError`` on a bad or duplicate name or a wrong type."""
    return ARCHITECTURES.register(getattr(spec, "name", repr(spec)), spec)


def load_plugins() -> list[str]:
    """Load the entry points of group ``ganbench.architectures``; return the names they added.

    An entry point may name an :class:`ArchSpec` (registered under its own name) or a module that
    registers its architectures when imported. A plugin that fails to import, names something else or
    clashes with a registered name is skipped with a :class:`PluginWarning` naming it and the error, and
    recorded in ``ARCHITECTURES.broken()`` (a lookup of its name says why); the built-ins and the other
    plugins keep working.
    """
    before = set(ARCHITECTURES._items)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
            if isinstance(obj, ArchSpec):
                if obj.name not in ARCHITECTURES._items or ARCHITECTURES._items[obj.name] is not obj:
                    register(obj)
            elif not hasattr(obj, "__file__"):
                raise ValueError(f"it names a {type(obj).__name__}, not an ArchSpec or a module")
        except Exception as exc:  # a broken plugin is reported and skipped, never fatal to the others
            why = f"plugin {ep.value} failed to load: {type(exc).__name__}: {exc}".strip()
            ARCHITECTURES.mark_broken(ep.name, why)
            warnings.warn(f"architecture plugin {ep.name!r} skipped: {why}", PluginWarning, stacklevel=2)
    return sorted(set(ARCHITECTURES._items) - before)


ARCHITECTURES.add_loader(load_plugins)


def build_gan(name: str, cfg: Any, image_shape: tuple[int, int, int], num_classes: int = 0) -> GAN:
    """Build the registered architecture ``name`` with hyperparameters ``cfg``.

    Args:
        name: a registered architecture name (see ``ganbench list``).
        cfg: an instance of the architecture's ``config_cls``.
        image_shape: ``(C, H, W)`` of the dataset.
        num_classes: number of classes of the dataset (0 = unlabelled); a conditional architecture needs >= 2.

    Raises:
        UnknownNameError: ``name`` is not registered.
        ValueError: ``cfg`` is not the architecture's config type, a conditional architecture without >= 2
            classes, or the result breaks the contract.
    """
    spec = ARCHITECTURES.get(name)
    if not isinstance(cfg, spec.config_cls):
        raise ValueError(f"architecture {name!r} needs a {spec.config_cls.__name__}, got {type(cfg).__name__}")
    if spec.conditional and num_classes < 2:
        raise ValueError(f"{name} is class-conditional and needs a labelled dataset (2 or more classes)")
    gan = spec.build(cfg, tuple(image_shape), num_classes)
    if not isinstance(gan, GAN):
        raise ValueError(f"architecture {name!r}: build() must return a GAN, got {type(gan).__name__}")
    if not isinstance(getattr(gan.generator, "z_dim", None), int):
        raise ValueError(f"architecture {name!r}: the generator needs an int attribute z_dim")
    if gan.num_classes != (num_classes if spec.conditional else 0):
        raise ValueError(
            f"architecture {name!r}: build() returned num_classes = {gan.num_classes}, expected "
            f"{num_classes if spec.conditional else 0} (conditional = {spec.conditional})"
        )
    return gan


# --- declared ranges ----------------------------------------------------------------------------------------
# A config field declares its range once, as ``Annotated[float, Interval(ge=0, lt=1)]`` (annotated-types, the
# constraint types pydantic reads): pydantic checks it when a config is validated from a file or --set, and
# :func:`check_declared` when a config dataclass is built directly (a plugin's, a search space's trial).


def _bounds(metadata: Any) -> dict[str, Any]:
    """``{gt|ge|lt|le: value}`` of the constraints in ``Annotated`` metadata (annotated-types objects or
    pydantic ``FieldInfo``s holding them)."""
    out: dict[str, Any] = {}
    for m in metadata:
        for inner in [m, *getattr(m, "metadata", [])]:
            for k in ("gt", "ge", "lt", "le"):
                v = getattr(inner, k, None)
                if v is not None and not callable(v):
                    out[k] = v
    return out


def describe_range(metadata: Any) -> str | None:
    """The range the ``Annotated`` metadata declares, as error messages say it: ``between 8 and 1024``
    (ge and le), ``[0, 1)`` (ge and lt), ``>= 1``, ``> 0``, ...; None when it declares none."""
    b = _bounds(metadata)
    lo = next(((op, b[k]) for k, op in (("ge", ">="), ("gt", ">")) if k in b), None)
    hi = next(((op, b[k]) for k, op in (("le", "<="), ("lt", "<")) if k in b), None)
    if lo and hi:
        if lo[0] == ">=" and hi[0] == "<=":
            return f"between {lo[1]} and {hi[1]}"
        return f"{'[' if lo[0] == '>=' else '('}{lo[1]}, {hi[1]}{']' if hi[0] == '<=' else ')'}"
    one = lo or hi
    return f"{one[0]} {one[1]}" if one else None


def in_range(value: Any, metadata: Any) -> bool:
    """Whether ``value`` satisfies the bounds declared in ``metadata`` (None and non-numbers: not checked)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return True
    b = _bounds(metadata)
    return not (
        ("gt" in b and not value > b["gt"])
        or ("ge" in b and not value >= b["ge"])
        or ("lt" in b and not value < b["lt"])
        or ("le" in b and not value <= b["le"])
    )


@functools.cache
def declared_ranges(cls: type) -> dict[str, Any]:
    """``{field: Annotated metadata}`` of the dataclass ``cls``'s fields that declare a range, along its bases:
    a subclass that only changes a field's default (``n_critic: int = 5``) keeps the range its base declared."""
    import typing

    out: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        own = vars(klass).get("__annotations__", {})
        if not own or not dataclasses.is_dataclass(klass):
            continue
        hints = typing.get_type_hints(klass, include_extras=True)
        for name in own:
            for arm in (hints[name], *typing.get_args(hints[name])):  # Annotated, or an arm of Annotated | None
                if typing.get_origin(arm) is typing.Annotated and _bounds(arm.__metadata__):
                    out[name] = arm.__metadata__
    return out


def out_of_range(name: str, value: Any, metadata: Any) -> str:
    """``"beta1 = 2.0 is out of range [0, 1)"`` / ``"lr_g = -1.0 is out of range (> 0)"``."""
    rule = describe_range(metadata) or "?"
    return f"{name} = {value!r} is out of range {rule if rule[0] in '[(' else f'({rule})'}"


def check_declared(cfg: Any) -> None:
    """Raise ValueError (:func:`out_of_range`'s message) for the first field of the config dataclass ``cfg``
    outside the range it declares."""
    for name, metadata in declared_ranges(type(cfg)).items():
        value = getattr(cfg, name)
        if not in_range(value, metadata):
            raise ValueError(out_of_range(name, value, metadata))
