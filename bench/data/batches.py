"""Real batches on the training device: the :class:`BatchSource` protocol the trainer draws from, ganbench's
:class:`ShuffledBatches`, and the uint8 <-> float conversions. (Named so as not to be taken for torch's
``Sampler``, which yields indices: these yield image tensors.)"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor

from bench.errors import ConfigError


def to_float(images: Tensor) -> Tensor:
    """uint8 ``[0, 255]`` -> float32 ``[-1, 1]`` (x / 127.5 - 1)."""
    return images.float().div_(127.5).sub_(1.0)


def to_uint8(images: Tensor) -> Tensor:
    """float ``[-1, 1]`` -> uint8 ``[0, 255]``, rounded to nearest (not truncated), clamped."""
    return ((images.detach().float() + 1.0) * 127.5).round_().clamp_(0, 255).to(torch.uint8)


def check_batch_size(batch_size: int, n_images: int, split: str = "the split") -> None:
    """Raise ConfigError if one batch needs more images than ``split`` holds."""
    if batch_size > n_images:
        raise ConfigError(f"train.batch_size = {batch_size} exceeds the {n_images} images of {split}")


class BatchSource(Protocol):
    """What the trainer (``bench.trainer.Trainer``) draws real batches from.

    ``source(index)``: batch number ``index`` (0, 1, 2, ... over the whole run: a resumed run asks for the
    next index) as float ``(batch_size, C, H, W)`` in ``[-1, 1]`` on the training device; ``batch_size``:
    images per batch; ``per_epoch``: batches per pass over the split; ``source.labelled(index)``: the same
    batch with its labels, ``(images, labels (batch_size,) int64)`` (what a class-conditional GAN trains on).
    :class:`ShuffledBatches` is ganbench's; ``bench.speed.LoaderBatches`` wraps a torchvision ``DataLoader``
    for the baseline.
    """

    batch_size: int
    per_epoch: int

    def __call__(self, index: int) -> Tensor: ...

    def labelled(self, index: int) -> tuple[Tensor, Tensor]: ...


class ShuffledBatches:
    """Shuffled batches drawn on the device, addressed by a global batch index.

    Batch ``i`` is batch ``i % per_epoch`` of epoch ``i // per_epoch``; each epoch's permutation comes from
    a CPU generator seeded with ``(seed, epoch)``, so the order is fixed by the seed and a resumed run
    continues where it stopped by index alone. The last incomplete batch of an epoch is dropped.

    ``labels`` ``(N,)`` (optional): the images' labels, for :meth:`labelled`.

    Raises ConfigError if ``batch_size`` exceeds the number of images.
    """

    def __init__(
        self,
        images: Tensor,
        batch_size: int,
        seed: int,
        device: torch.device | str | None = None,
        labels: Tensor | None = None,
    ):
        check_batch_size(batch_size, images.shape[0])
        self.images, self.batch_size, self.seed, self.labels = images, batch_size, seed, labels
        self.device = torch.device(device) if device is not None else images.device
        self.per_epoch = images.shape[0] // batch_size
        self._epoch, self._perm = -1, None

    def _index(self, index: int) -> Tensor:
        epoch, pos = divmod(index, self.per_epoch)
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm = torch.randperm(self.images.shape[0], generator=g).to(self.images.device)
            self._epoch = epoch
        return self._perm[pos * self.batch_size : (pos + 1) * self.batch_size]

    def __call__(self, index: int) -> Tensor:
        """Batch ``index`` as float ``(batch_size, C, H, W)`` in ``[-1, 1]`` on ``device`` (default: the
        images' device; images held on the host are copied batch by batch, the plain path)."""
        return to_float(self.images[self._index(index)].to(self.device, non_blocking=True))

    def labelled(self, index: int) -> tuple[Tensor, Tensor]:
        """Batch ``index`` and its labels ``(batch_size,)`` int64 on ``device``.

        Raises ValueError if the source was made without labels."""
        if self.labels is None:
            raise ValueError("these ShuffledBatches have no labels (pass labels= to draw labelled batches)")
        idx = self._index(index)
        images = to_float(self.images[idx].to(self.device, non_blocking=True))
        return images, self.labels[idx.to(self.labels.device)].to(self.device, non_blocking=True)
