"""Is the generated data useful? Classifiers trained on a class-conditional GAN's samples.

- **CAS**, the Classification Accuracy Score (Ravuri & Vinyals 2019, "Classification Accuracy Score for
  Conditional Generative Models"): a fresh classifier trained only on the N generated labelled samples
  (balanced classes, ``bench.metrics.sampling.sample_labels``), tested on real test images. Its ceiling: the
  same classifier and budget trained on N random real training images (``eval/cas/real_accuracy``).
- **Augmentation gain**: the classifier trained on k real labelled images per class, without and with the N
  generated samples added, for every k of ``eval.augment_k`` and seeds 0 .. ``eval.augment_seeds`` - 1 (seed
  s draws the k images per class and initialises the classifier); the gain is the paired difference per
  seed, reported as mean and sample std over seeds. With the generated samples, every batch is half real
  images (from the k per class) and half generated ones: the real images are seen about as often as without
  them (half as often per step), so the gain measures what the samples *add*, not what they displace.
  (One shuffled pool of 100 real + 10 000 generated images would show each real image about once in the
  budget, against ~100 times without: the "gain" would then be mostly CAS minus the k-shot accuracy.)

The classifier (:class:`Recipe`): the extractors' LeNet (``bench.metrics.lenet``), normalised with the real
training split's per-channel mean and std, Adam(1e-3), batch 64, a fixed number of steps
(``eval.classifier_steps``, 150) whatever the training set's size, so that every accuracy is bought with the
same compute; images in ``[0, 1]``. It is tested on ``eval.classifier_test`` random reference images (drawn
with ``eval.reference_seed``). Everything is seeded: the real-only numbers (the ceiling and the k-shot
baselines) are the same for every run and are computed once per workspace
(``<workdir>/cache/usefulness/*.json``). Training runs on the CPU (a LeNet of 150 steps: seconds).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from bench import keys
from bench.atomic import write_text
from bench.config import EvalConfig
from bench.data import ImageData
from bench.metrics.lenet import LeNet


@dataclass(frozen=True)
class Recipe:
    """How every usefulness classifier is trained: ``steps`` Adam steps of ``batch_size`` images at ``lr``."""

    steps: int = 150
    batch_size: int = 64
    lr: float = 1e-3
    real_fraction: float = 0.5  # of every batch, when generated samples are added to real ones


def _batches(n: int, batch_size: int, steps: int, gen: torch.Generator) -> Iterator[torch.Tensor]:
    """``steps`` index batches of exactly ``batch_size`` over ``n`` items: consecutive chunks of a stream of
    fresh permutations (a batch may span two passes; an item repeats within one only when n < batch_size)."""
    stream = torch.empty(0, dtype=torch.long)
    for _ in range(steps):
        while len(stream) < batch_size:
            stream = torch.cat([stream, torch.randperm(n, generator=gen)])
        yield stream[:batch_size]
        stream = stream[batch_size:]


def train_classifier(
    images: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    recipe: Recipe,
    seed: int,
    added: tuple[torch.Tensor, torch.Tensor] | None = None,
    norm: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.nn.Module:
    """A LeNet trained on uint8 ``images (N, C, S, S)`` with ``labels (N,)`` in ``[0, K)``; in eval mode.

    ``added``: more labelled uint8 images (generated ones); then each batch is ``recipe.real_fraction`` of
    ``images`` and the rest of ``added``, each side in its own shuffled order. ``norm``: the per-channel
    ``(mean, std)`` of ``(1, C, 1, 1)`` the LeNet normalises with (default MNIST's). The initial weights and
    the batch order come from ``seed`` (the global RNG is left as it was)."""
    _, c, s, _ = images.shape
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LeNet(c, num_classes, s)
    if norm is not None:
        model.mean.copy_(norm[0])
        model.std.copy_(norm[1])
    opt = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    gen = torch.Generator().manual_seed(seed)
    n_real = recipe.batch_size if added is None else max(1, round(recipe.batch_size * recipe.real_fraction))
    real = _batches(len(images), n_real, recipe.steps, gen)
    more = _batches(len(added[0]), recipe.batch_size - n_real, recipe.steps, gen) if added is not None else None
    model.train()
    for idx in real:
        x, y = images[idx], labels[idx]
        if more is not None:
            j = next(more)
            x, y = torch.cat([x, added[0][j]]), torch.cat([y, added[1][j]])
        loss = F.cross_entropy(model(x.float() / 255.0), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return model.eval()


@torch.no_grad()
def top1(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000) -> float:
    """Top-1 accuracy in ``[0, 1]`` of ``model`` on uint8 ``images`` with ``labels``."""
    correct = sum(
        int((model(images[i : i + batch_size].float() / 255.0).argmax(1) == labels[i : i + batch_size]).sum())
        for i in range(0, len(images), batch_size)
    )
    return correct / len(images)


def k_per_class(labels: torch.Tensor, k: int, num_classes: int, seed: int) -> torch.Tensor:
    """Indices of ``k`` random items of every class (all of a class that has fewer), drawn with ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for c in range(num_classes):
        members = torch.nonzero(labels == c).flatten()
        out.append(members[torch.randperm(len(members), generator=gen)[:k]])
    return torch.cat(out).sort().values


class Usefulness:
    """The usefulness metrics of generated samples for one dataset and protocol.

    Args:
        train: the real training split (the ceiling's and the k-shot images); test: the reference split the
            classifiers are tested on; cfg: the evaluation protocol (``augment_k``, ``augment_seeds``,
            ``classifier_steps``, ``classifier_test``, ``reference_seed``); workdir: where the real-only
            numbers are cached.
    """

    def __init__(self, train: ImageData, test: ImageData, cfg: EvalConfig, workdir: str | Path):
        self.train_images, self.train_labels = train.images.cpu(), train.labels.cpu()
        self.k = train.num_classes
        pixels = self.train_images.float().div(255).transpose(0, 1).reshape(self.train_images.shape[1], -1)
        self.norm = (pixels.mean(1).view(1, -1, 1, 1), pixels.std(1).view(1, -1, 1, 1))  # per channel
        self.cfg, self.recipe = cfg, Recipe(steps=cfg.classifier_steps)
        n_test = cfg.classifier_test or len(test.images)
        idx = torch.arange(len(test.images))
        if n_test < len(test.images):
            idx = torch.randperm(len(test.images), generator=torch.Generator().manual_seed(cfg.reference_seed))
            idx = idx[:n_test].sort().values
        self.test_images, self.test_labels = test.images.cpu()[idx], test.labels.cpu()[idx]
        key = {
            "dataset": train.name,
            "origin": train.origin,
            "shape": list(train.image_shape),
            "test": f"{test.name}/{test.split}",
            "n_test": len(idx),
            "reference_seed": cfg.reference_seed,
            "recipe": asdict(self.recipe),
            "torch": torch.__version__.split("+")[0],
        }
        digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
        self.cache = Path(workdir) / "cache" / "usefulness" / f"{train.name}-{digest}.json"

    def protocol(self) -> str:
        """One line saying how the numbers were made (for the run's tags and the report)."""
        return (
            f"CAS and augmentation: LeNet, Adam(1e-3), {self.recipe.steps} steps of batch {self.recipe.batch_size}, "
            f"tested on {len(self.test_images)} reference images; k per class = "
            f"{', '.join(map(str, self.cfg.augment_k))}, seeds 0..{self.cfg.augment_seeds - 1}; augmented batches "
            f"{round(100 * self.recipe.real_fraction)} % real"
        )

    def _accuracy(self, images: torch.Tensor, labels: torch.Tensor, seed: int, added=None) -> float:  # noqa: ANN001
        model = train_classifier(images, labels, self.k, self.recipe, seed, added, self.norm)
        return top1(model, self.test_images, self.test_labels)

    def _real_only(self, name: str, compute) -> float:  # noqa: ANN001  (a no-argument callable)
        """A real-only accuracy, from the workspace's cache or computed and stored."""
        cached = json.loads(self.cache.read_text()) if self.cache.exists() else {}
        if name not in cached:
            cached[name] = compute()
            self.cache.parent.mkdir(parents=True, exist_ok=True)
            write_text(self.cache, json.dumps(cached, indent=1, sort_keys=True))
        return float(cached[name])

    def ceiling(self, n: int) -> float:
        """The CAS ceiling: accuracy of the classifier trained on ``n`` random real training images."""

        def compute() -> float:
            idx = torch.randperm(len(self.train_images), generator=torch.Generator().manual_seed(0))[:n]
            return self._accuracy(self.train_images[idx], self.train_labels[idx], 0)

        return self._real_only(f"ceiling-n{n}", compute)

    def real_k(self, k: int, seed: int) -> float:
        """Accuracy of the classifier trained on ``k`` real images per class (draw and init from ``seed``)."""
        idx = k_per_class(self.train_labels, k, self.k, seed)
        return self._real_only(
            f"real-k{k}-seed{seed}", lambda: self._accuracy(self.train_images[idx], self.train_labels[idx], seed)
        )

    def metrics(self, generated: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
        """CAS, its ceiling and the augmentation gain of uint8 ``generated (N, C, H, W)`` with ``labels (N,)``.

        Returns ``{eval/cas/accuracy, eval/cas/real_accuracy, eval/augment/k<k>/<real|augmented|gain>[_std]}``,
        accuracies in ``[0, 1]``."""
        generated, labels = generated.cpu(), labels.cpu()
        out = {keys.CAS: self._accuracy(generated, labels, 0), keys.CAS_REAL: self.ceiling(len(generated))}
        for k in self.cfg.augment_k:
            real, augmented = [], []
            for seed in range(self.cfg.augment_seeds):
                real.append(self.real_k(k, seed))
                idx = k_per_class(self.train_labels, k, self.k, seed)
                augmented.append(
                    self._accuracy(self.train_images[idx], self.train_labels[idx], seed, (generated, labels))
                )
            gain = np.array(augmented) - np.array(real)
            for what, values in (("real", np.array(real)), ("augmented", np.array(augmented)), ("gain", gain)):
                out[keys.augment_key(k, what)] = float(values.mean())
                out[keys.augment_key(k, what + "_std")] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        return out

    def real_metrics(self, n: int) -> dict[str, float]:
        """The real-only numbers for the real-data row: the ceiling for ``n`` samples (as its CAS too: real
        training images scored as if generated) and the k-shot accuracies."""
        out = {keys.CAS: self.ceiling(n), keys.CAS_REAL: self.ceiling(n)}
        for k in self.cfg.augment_k:
            real = np.array([self.real_k(k, seed) for seed in range(self.cfg.augment_seeds)])
            out[keys.augment_key(k, "real")] = float(real.mean())
            out[keys.augment_key(k, "real_std")] = float(real.std(ddof=1)) if len(real) > 1 else 0.0
        return out
