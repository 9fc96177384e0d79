"""The ``lenet-<dataset>`` classifiers: a LeNet-style CNN (LeCun et al. 1998) used as an offline feature
extractor for a dataset's metrics, one set of weights per dataset.

Architecture: conv 5x5 (32) -> ReLU -> maxpool 2 -> conv 5x5 (64) -> ReLU -> maxpool 2 -> linear -> 128
-> ReLU (the 128-d "penultimate" features, used for FID / KID / precision-recall) -> linear 128 -> K
(logits; their softmax gives IS). Input: float ``(N, C, S, S)`` in ``[0, 1]`` (S = 28 or 32), normalised
inside with the training split's per-channel mean and std, which the weights file carries (``mean`` /
``std``; the ``lenet-mnist`` file of ganbench 0.1 holds none and uses MNIST's 0.1307 / 0.3081). Trained by
``ganbench extractor train`` (:mod:`bench.metrics.train_lenet`).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


class LeNet(nn.Module):
    """Args: in_channels 1 or 3; num_classes K; image_size S (square, >= 16); dropout before the last layer
    (training only)."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size: int = 28, dropout: float = 0.0):
        super().__init__()
        side = ((image_size - 4) // 2 - 4) // 2  # 28 -> 4, 32 -> 5
        if side < 1:
            raise ValueError(f"LeNet needs images of at least 16x16, got {image_size}")
        self.conv1 = nn.Conv2d(in_channels, 32, 5)
        self.conv2 = nn.Conv2d(32, 64, 5)
        self.fc1 = nn.Linear(64 * side * side, 128)
        self.fc2 = nn.Linear(128, num_classes)
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("mean", torch.full((1, in_channels, 1, 1), MNIST_MEAN))
        self.register_buffer("std", torch.full((1, in_channels, 1, 1), MNIST_STD))

    def features(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x float ``(N, C, S, S)`` in ``[0, 1]`` -> (penultimate ``(N, 128)``, logits ``(N, K)``)."""
        x = (x - self.mean) / self.std
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        h = F.relu(self.fc1(torch.flatten(x, 1)))
        return h, self.fc2(self.dropout(h))

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x)[1]


def load_lenet(path: str | Path, in_channels: int, num_classes: int, image_size: int) -> LeNet:
    """A :class:`LeNet` with the weights of ``path`` (a state dict saved by ``ganbench extractor train``), in
    eval mode. Raises RuntimeError / ValueError when the file does not fit the shape."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = LeNet(in_channels, num_classes, image_size)
    defaults = {"mean": model.mean, "std": model.std}  # files of ganbench 0.1 (MNIST) carry no normalisation
    model.load_state_dict({**defaults, **state})
    return model.eval()


class StackedLeNet(nn.Module):
    """The classifier of Stacked MNIST (Metz et al. 2017): an MNIST :class:`LeNet` applied to each of the 3
    channels. Input float ``(N, 3, 28, 28)`` in ``[0, 1]``; :meth:`features` returns the 3 channels'
    penultimate features side by side ``(N, 384)`` and the log-probabilities of the 1 000 classes
    ``100 * d0 + 10 * d1 + d2`` ``(N, 1000)`` (the channels classified independently, so the log-probability
    of a class is the sum of its digits'; their softmax is the product of the channels' softmaxes)."""

    def __init__(self, digit: LeNet):
        super().__init__()
        self.digit = digit

    def features(self, x: Tensor) -> tuple[Tensor, Tensor]:
        n = x.shape[0]
        h, logits = self.digit.features(x.reshape(n * 3, 1, *x.shape[2:]))
        lp = F.log_softmax(logits, dim=1).view(n, 3, 10)
        joint = lp[:, 0, :, None, None] + lp[:, 1, None, :, None] + lp[:, 2, None, None, :]
        return h.reshape(n, 3 * h.shape[1]), joint.reshape(n, 1000)

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x)[1]


def load_classifier(
    path: str | Path, image_shape: tuple[int, int, int], num_classes: int, stacked: bool = False
) -> nn.Module:
    """The classifier of a ``lenet-<dataset>`` extractor, in eval mode: :func:`load_lenet` for images of
    ``image_shape`` ``(C, S, S)`` and K classes, or with ``stacked`` a :class:`StackedLeNet` around the MNIST
    weights of ``path``."""
    if stacked:
        return StackedLeNet(load_lenet(path, 1, 10, image_shape[1])).eval()
    return load_lenet(path, image_shape[0], num_classes, image_shape[1])
