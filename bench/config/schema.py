"""The config classes: frozen pydantic dataclasses, one per section (see ``bench.config``)."""

from __future__ import annotations

import dataclasses
import unicodedata
from dataclasses import field
from typing import Annotated, Any, Literal, get_args

from pydantic import ConfigDict, Field, StrictBool, StrictInt, StrictStr
from pydantic.dataclasses import dataclass

from bench.config.validation import validate
from bench.errors import ConfigError

# train.optimizer_impl -> the torch.optim.Adam keyword arguments of that Adam kernel
OPTIMIZER_IMPLS: dict[str, dict[str, bool]] = {
    "fused": {"fused": True},
    "foreach": {"foreach": True},
    "for-loop": {"foreach": False},
    "torch-default": {},
}
OptimizerImpl = Literal["fused", "foreach", "for-loop", "torch-default"]  # OPTIMIZER_IMPLS' keys
CompileMode = Literal["default", "reduce-overhead", "max-autotune"]  # torch.compile's modes
ExtractorUse = Literal["auto", "on", "off"]
COMPILE_MODES, EXTRACTOR_USE = get_args(CompileMode), get_args(ExtractorUse)
assert get_args(OptimizerImpl) == tuple(OPTIMIZER_IMPLS)
MAX_SEED = 2**32  # numpy's seed range; every seed the harness derives stays inside int64
_FROZEN = ConfigDict(extra="forbid")

# Ranges are declared on the fields (pydantic's Field constraints, Literal choices) and reported in one line
# by bench.config.validation: "<key> = <value> is not allowed; expected <range>", where <range> is the
# Field's description when it has one, else said from its bounds ("between 8 and 1024", ">= 1").
Count = Annotated[StrictInt, Field(ge=1)]  # >= 1
Cadence = Annotated[StrictInt, Field(ge=0)]  # >= 0 (0 = off)
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False, description="a finite number > 0")]
Seed = Annotated[StrictInt, Field(ge=0, lt=MAX_SEED, description="in [0, 2**32)")]


@dataclass(frozen=True, config=_FROZEN)
class DataConfig:
    """dataset: a registered dataset name (``ganbench list``); root: the data folder (holding e.g.
    ``MNIST/raw/*.gz``; None: ``$GANBENCH_DATA``, else torchvision downloads into ``<workdir>/data``), or for
    ``folder`` the folder of images; image_size: resize images to image_size x image_size (None: the
    dataset's own size; ``folder``: 64); channels: 1 (greyscale) or 3 (RGB) (None: the dataset's own;
    ``folder``: 3)."""

    dataset: StrictStr = "mnist"
    root: StrictStr | None = None
    image_size: Annotated[StrictInt, Field(ge=8, le=1024)] | None = None
    channels: Literal[1, 3] | None = None


@dataclass(frozen=True, config=_FROZEN)
class TrainConfig:
    """The training budget and the harness's cadence.

    Budget: exactly one of ``steps`` (generator steps) or ``epochs``; ``minutes`` (wall clock) caps either.
    ``budget_unit`` says what an epoch counts, and so what equal budgets equalise: ``"d-steps"`` (default)
    a pass of the real data through the discriminator (one discriminator step per batch, so an epoch is
    ``n_critic`` times fewer generator steps for a critic with ``n_critic`` > 1: favours models with
    ``n_critic`` = 1); ``"g-steps"`` as many generator steps as the data has batches, whatever ``n_critic``
    (a critic with ``n_critic`` = 5 then sees the data 5 times: favours ``n_critic`` > 1); ``"minutes"``
    the wall clock ``minutes`` is the budget (required; ``steps`` / ``epochs`` are then only an upper bound
    and the length of learning-rate schedules: favours cheap steps).
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

    steps: Count | None = None
    epochs: Positive | None = 2.0
    minutes: Positive | None = None
    budget_unit: Literal["d-steps", "g-steps", "minutes"] = "d-steps"
    batch_size: Count = 64
    device: StrictStr = "auto"
    log_every: Count = 25
    sample_every: Cadence | None = None
    eval_every: Cadence | None = None
    checkpoint_every: Cadence = 500
    warmup_steps: Cadence = 10
    keep_best: StrictBool = False
    fast: StrictBool = True
    precision: Literal["fp32", "bf16"] = "fp32"
    optimizer_impl: OptimizerImpl = "fused"
    channels_last: StrictBool = True
    compile: StrictBool = False
    compile_mode: CompileMode = "default"

    def __post_init__(self) -> None:
        if (self.steps is None) == (self.epochs is None):
            raise ConfigError("set exactly one of train.steps and train.epochs")
        if self.budget_unit == "minutes" and self.minutes is None:
            raise ConfigError("train.budget_unit = 'minutes' needs train.minutes (the budget, e.g. --minutes 10)")
        _require(
            self.device == "auto" or self.device.split(":")[0] in ("cpu", "cuda", "mps"),
            "train.device",
            self.device,
            "'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'",
        )


@dataclass(frozen=True, config=_FROZEN)
class ExtractorOptions:
    """The options every feature extractor has (``[eval.extractors.<name>]``); what they mean for one extractor
    (what ``auto`` decides, where its weights are looked for) is said by its ``ExtractorSpec``.

    use: ``"auto"`` (the extractor's own rule: a cheap one whenever it can read the images, a heavy one such
    as Inception only on a GPU), ``"on"`` (always; an error if its weights are missing), ``"off"``;
    weights: a local weights file instead of the extractor's default.
    """

    use: ExtractorUse = "auto"
    weights: StrictStr | None = None


@dataclass(frozen=True, config=_FROZEN)
class EvalConfig:
    """Evaluation protocol.

    n_samples: generated samples (default 10 000, as Lucic et al. 2018); extractor: the primary feature
    extractor (None: the dataset's own, see :func:`default_extractor`; always computed; used for the FID
    curve during training and checkpoint selection);
    extractors: per-extractor options (:class:`ExtractorOptions`), by extractor name; the other registered
    extractors that can read the images are computed at the end of each run as their ``use`` says;
    reference_split / n_reference / reference_seed: the real images compared against (None = the whole split,
    else a random subset of n_reference images drawn with reference_seed, the same for every run);
    floor_subsets: the real-data floor is the mean and std over this many random subsets of the training
    split (5); batch_size: images per forward pass; kid_subsets / kid_subset_size: the KID
    estimator (Bińkowski et al. 2018; torch-fidelity's 100 x 1000); prc_neighborhood: k of precision/recall
    (Kynkäänniemi et al. 2019: 3); during_training_samples: samples for the FID curve; enabled: False skips
    evaluation.

    Usefulness of a class-conditional run's samples (``bench.metrics.usefulness``): usefulness: compute CAS
    and the augmentation gain; augment_k: real labelled images per class of the augmentation experiment;
    augment_seeds: its repeats (draws of the k images and classifier seeds 0, 1, ...); classifier_steps:
    Adam steps (batch 64) of every classifier trained; classifier_test: random reference images the
    classifiers are tested on (drawn with reference_seed; 0 = all).

    Memorisation (``bench.metrics.memorisation``): memorisation: compute the copy rate, NN ratio and gallery in
    the primary extractor's features; memorisation_train: the training images searched (None = the whole
    training split, else a random subset drawn with reference_seed).

    search_samples: the samples a trial of ``ganbench compare --search`` is evaluated on (None = n_samples);
    the final, re-seeded runs use n_samples.
    """

    n_samples: Annotated[StrictInt, Field(ge=2)] = 10_000
    extractor: StrictStr | None = None
    extractors: dict[str, ExtractorOptions] = field(default_factory=dict)
    reference_split: StrictStr = "test"
    n_reference: Annotated[StrictInt, Field(ge=2)] | None = None
    reference_seed: Seed = 0
    floor_subsets: Annotated[StrictInt, Field(ge=1, le=100)] = 5
    batch_size: Count = 500
    kid_subsets: Count = 100
    kid_subset_size: StrictInt = 1000
    prc_neighborhood: StrictInt = 3
    during_training_samples: Annotated[StrictInt, Field(ge=2)] = 1000
    enabled: StrictBool = True
    usefulness: StrictBool = True
    augment_k: tuple[StrictInt, ...] = (10, 100)
    augment_seeds: Annotated[StrictInt, Field(ge=1, le=20)] = 3
    classifier_steps: Count = 150
    classifier_test: Annotated[StrictInt, Field(ge=0, description=">= 0 (0 = all)")] = 5000
    memorisation: StrictBool = True
    memorisation_train: Annotated[StrictInt, Field(ge=2)] | None = None
    search_samples: Annotated[StrictInt, Field(ge=2)] | None = None

    def __post_init__(self) -> None:  # the checks that relate two fields, or every item of one
        smallest = min(self.n_samples, self.n_reference or self.n_samples)
        _require(
            2 <= self.kid_subset_size <= smallest,
            "eval.kid_subset_size",
            self.kid_subset_size,
            f"between 2 and the smaller of eval.n_samples / eval.n_reference ({smallest})",
        )
        _require(
            1 <= self.prc_neighborhood < smallest,
            "eval.prc_neighborhood",
            self.prc_neighborhood,
            f"between 1 and the smaller of eval.n_samples / eval.n_reference, exclusive ({smallest})",
        )
        _require(all(k >= 1 for k in self.augment_k), "eval.augment_k", list(self.augment_k), "integers >= 1")

    def options(self, extractor: str) -> ExtractorOptions:
        """The options of ``extractor`` (its defaults when the config names none)."""
        return self.extractors.get(extractor, ExtractorOptions())


@dataclass(frozen=True, config=_FROZEN)
class RunConfig:
    """Everything one run needs, resolved: stored as MLflow params and in every checkpoint."""

    arch: StrictStr
    seed: StrictInt
    experiment: StrictStr
    workdir: StrictStr
    data: DataConfig
    train: TrainConfig
    eval: EvalConfig
    model: Any  # the architecture's config dataclass

    def __post_init__(self) -> None:
        _resolve_defaults(self)

    @property
    def run_name(self) -> str:
        return f"{self.arch}-seed{self.seed}"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def flat(self) -> dict[str, Any]:
        """``{"train.epochs": 1.0, "model.lr_g": 0.0002, ...}`` for MLflow params."""
        return flatten(self.to_dict())


@dataclass(frozen=True, config=_FROZEN)
class SearchConfig:
    """The fair head-to-head (``ganbench compare --search N``, ``[search]``; ``studies.fair``): for every
    architecture a search of ``trials`` random settings (Lucic et al. 2018) over its space
    (``studies.spaces``), all with the same ``sampler`` and ``seed`` and the same per-trial budget
    (``steps`` / ``epochs``, in ``train.budget_unit``; None: the comparison's own budget); then each
    architecture's best setting re-run over the comparison's seeds at the comparison's budget.

    trials: per architecture (0: no search, the comparison at the default settings); sampler: ``random``
    (unbiased budget curves) or ``tpe``; pruner: ``none`` or ``median`` (on the FID curve; a pruned trial
    counts toward the budget)."""

    trials: Annotated[StrictInt, Field(ge=0, le=10_000)] = 0
    sampler: Literal["random", "tpe"] = "random"
    pruner: Literal["none", "median"] = "none"
    seed: Seed = 0
    steps: Count | None = None
    epochs: Positive | None = None

    def __post_init__(self) -> None:
        if self.steps is not None and self.epochs is not None:
            raise ConfigError("set at most one of search.steps and search.epochs")


@dataclass(frozen=True, config=_FROZEN)
class CompareConfig:
    """A comparison: every (architecture, seed) pair under the same data/train/eval settings."""

    experiment: StrictStr | None = None
    archs: tuple[StrictStr, ...] = ("vanilla", "dcgan", "wgan-gp", "sngan")
    seeds: tuple[StrictInt, ...] = (0,)
    workdir: StrictStr = "ganbench-runs"
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    model: dict[str, dict[str, Any]] = field(default_factory=dict)
    search: SearchConfig = field(default_factory=SearchConfig)

    def __post_init__(self) -> None:
        _resolve_defaults(self)
        _require(bool(self.archs), "archs", list(self.archs), "at least one architecture")
        _require(bool(self.seeds), "seeds", list(self.seeds), "at least one seed")
        _require(len(set(self.archs)) == len(self.archs), "archs", list(self.archs), "no duplicates")
        _require(len(set(self.seeds)) == len(self.seeds), "seeds", list(self.seeds), "no duplicates")
        require_name("experiment", self.experiment)
        for seed in self.seeds:
            _require(0 <= seed < MAX_SEED, "seeds", list(self.seeds), "integers in [0, 2**32)")
        for arch in self.archs:
            self.model_config(arch)  # validate every architecture and its overrides up front
        from architectures import ARCHITECTURES

        for arch in sorted(set(self.model) - set(self.archs)):  # a [model.X] section for another architecture
            ARCHITECTURES.get(arch)

    def model_config(self, arch: str) -> Any:
        """The architecture's config dataclass with the ``[model.<arch>]`` overrides applied."""
        from architectures import ARCHITECTURES

        spec = ARCHITECTURES.get(arch)
        return validate(spec.config_cls, self.model.get(arch, {}), f"model.{arch}.")

    def run(self, arch: str, seed: int) -> RunConfig:
        return RunConfig(
            arch, seed, self.experiment, self.workdir, self.data, self.train, self.eval, self.model_config(arch)
        )

    def runs(self) -> list[RunConfig]:
        """One RunConfig per (architecture, seed), architectures in the outer loop."""
        return [self.run(a, s) for a in self.archs for s in self.seeds]


def default_extractor(dataset: str) -> str:
    """The primary feature extractor of ``dataset`` when ``eval.extractor`` is not set: the dataset's own
    classifier ``lenet-<dataset>`` (``bench.metrics.extractors``), or ``inception-v3-compat`` for ``folder``,
    which has no fixed classes."""
    return "inception-v3-compat" if dataset == "folder" else f"lenet-{dataset}"


def _resolve_defaults(cfg: Any) -> None:
    """Fill the defaults that depend on the dataset: ``experiment`` = ``<dataset>-compare`` and
    ``eval.extractor`` = :func:`default_extractor` (in place: the dataclasses are frozen)."""
    if getattr(cfg, "experiment", "") is None:
        object.__setattr__(cfg, "experiment", f"{cfg.data.dataset}-compare")
    if cfg.eval.extractor is None:
        object.__setattr__(cfg, "eval", dataclasses.replace(cfg.eval, extractor=default_extractor(cfg.data.dataset)))


# experiment and study names, also folder names: letters (with their combining marks) and digits of any
# script (MLflow takes them; only separators and leading dots endanger a path), '.', '_', '+', '-'
NAME_PUNCTUATION = "._+-"
NAME_RULE = "a name of at most 100 letters (any script), digits, '.', '_', '+' or '-', starting with a letter or digit"


def _is_name(value: object) -> bool:
    """By Unicode category, not ``\\w``: marks (Devanagari vowel signs, the accents of NFD text as macOS
    writes it) belong to a word; control characters (a newline) and separators never do."""
    if not isinstance(value, str) or not 1 <= len(value) <= 100:
        return False
    kinds = [unicodedata.category(c)[0] for c in value]
    return kinds[0] in "LN" and all(k in "LNM" or c in NAME_PUNCTUATION for k, c in zip(kinds, value, strict=True))


def require_name(key: str, value: str) -> None:
    """Raise ConfigError unless ``value`` can be an experiment or study name (it becomes a folder name under
    the workspace, so no path separators, no ``..``)."""
    _require(_is_name(value), key, value, NAME_RULE)


def _require(ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"{key} = {value!r} is not allowed; expected {allowed}")


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out
