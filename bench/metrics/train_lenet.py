"""Train a ``lenet-<dataset>`` feature extractor and write its weights: ``ganbench extractor train``.

    ganbench extractor train --dataset fashion-mnist [--epochs 15] [--hflip] [--out FILE]

The recipe (the same for every dataset, seedable): Adam(1e-3), learning rate x0.3 every 3 epochs, batch 128,
seed 0, no dropout (a confident classifier makes IS meaningful), optional augmentation by random
translation (``--max-shift`` pixels) and horizontal flips (``--hflip``, for datasets whose classes are
mirror-symmetric, such as clothes; never for letters or digits); float32 weights; the training split's
per-channel mean and std stored with the weights. Prints the test accuracy per epoch and the file's sha256.
The shipped ``lenet-fashion-mnist`` and ``lenet-emnist-letters`` weights were made by this command (see
``bench/metrics/extractors.py``); ``lenet-mnist`` by the same recipe in the script of ganbench 0.1, which
normalised with the constants 0.1307 / 0.3081 and drew a translation for every batch even without
augmentation, so this command makes a different (equally accurate) MNIST file. A retrained file changes
the sha256 and so every number's protocol.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from bench.atomic import write_atomic
from bench.config import DataConfig
from bench.data import load
from bench.errors import ConfigError
from bench.metrics.lenet import LeNet


def accuracy(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000) -> float:
    """Top-1 accuracy in ``[0, 1]`` of ``model`` on uint8 ``images (N, C, H, W)``."""
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            logits = model(images[i : i + batch_size].float() / 255.0)
            correct += (logits.argmax(1) == labels[i : i + batch_size]).sum().item()
    return correct / len(images)


def _augment(x: torch.Tensor, gen: torch.Generator, max_shift: int, hflip: bool) -> torch.Tensor:
    """One random translation of the whole batch by up to ``max_shift`` pixels; each image mirrored with
    probability 1/2 when ``hflip``."""
    if max_shift:
        h, w = x.shape[-2:]
        padded = F.pad(x, (max_shift,) * 4)
        dx, dy = torch.randint(0, 2 * max_shift + 1, (2,), generator=gen).tolist()
        x = padded[:, :, dy : dy + h, dx : dx + w]
    if hflip:
        flip = torch.rand(x.shape[0], generator=gen) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    return x


@dataclass(frozen=True)
class Recipe:
    """The training recipe (see the module docstring); every field is recorded in the printed summary."""

    epochs: int = 15
    seed: int = 0
    batch_size: int = 128
    lr: float = 1e-3
    max_shift: int = 0
    hflip: bool = False

    def __post_init__(self) -> None:
        for key, ok in (("--epochs", self.epochs >= 1), ("--max-shift", 0 <= self.max_shift <= 8)):
            if not ok:
                raise ConfigError(f"{key} {getattr(self, key[2:].replace('-', '_'))} is out of range")


def train_extractor(data: DataConfig, workdir: str, out: Path, recipe: Recipe) -> Iterator[str]:
    """Train LeNet on ``data``'s training split with ``recipe``, write its state dict to ``out`` atomically,
    yield one line per epoch and a last line with the test accuracy, file size and sha256.

    Raises DataError (missing data) before training starts."""
    train, test = (load(data, s, workdir) for s in ("train", "test"))
    c, h, _ = train.image_shape
    torch.manual_seed(recipe.seed)
    gen = torch.Generator().manual_seed(recipe.seed)
    model = LeNet(c, train.num_classes, h)
    pixels = train.images.float() / 255.0
    model.mean.copy_(pixels.mean((0, 2, 3)).view(1, c, 1, 1))
    model.std.copy_(pixels.std((0, 2, 3)).view(1, c, 1, 1))
    del pixels
    opt = torch.optim.Adam(model.parameters(), lr=recipe.lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.3)
    acc = 0.0
    for epoch in range(recipe.epochs):
        model.train()
        t0 = time.perf_counter()
        perm = torch.randperm(len(train.images), generator=gen)
        for i in range(0, len(perm), recipe.batch_size):
            idx = perm[i : i + recipe.batch_size]
            x = _augment(train.images[idx].float() / 255.0, gen, recipe.max_shift, recipe.hflip)
            loss = F.cross_entropy(model(x), train.labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sched.step()
        acc = accuracy(model, test.images, test.labels)
        yield f"epoch {epoch + 1}/{recipe.epochs}: test accuracy {acc:.2%} ({time.perf_counter() - t0:.0f} s)"
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    write_atomic(out, lambda f: torch.save(state, f))
    sha = hashlib.sha256(out.read_bytes()).hexdigest()
    yield (
        f"lenet-{data.dataset}: test accuracy {acc:.2%} on {len(test.images)} images; "
        f"wrote {out} ({out.stat().st_size} bytes), sha256 {sha}"
    )
