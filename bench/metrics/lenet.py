"""The ``lenet-mnist`` classifier: a LeNet-style CNN (LeCun et al. 1998) used as an offline feature
extractor for MNIST metrics.

Architecture: conv 5x5 (32) -> ReLU -> maxpool 2 -> conv 5x5 (64) -> ReLU -> maxpool 2 -> linear 1024->128
-> ReLU (the 128-d "penultimate" features, used for FID / KID / precision-recall) -> linear 128->10 (logits;
their softmax gives IS). Input: float ``(N, 1, 28, 28)`` in ``[0, 1]``, normalised inside with MNIST's
mean 0.1307 and std 0.3081. Trained by ``python -m bench.metrics.train_lenet``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


class LeNet(nn.Module):
    def __init__(self, dropout: float = 0.0):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 5)
        self.conv2 = nn.Conv2d(32, 64, 5)
        self.fc1 = nn.Linear(64 * 4 * 4, 128)
        self.fc2 = nn.Linear(128, 10)
        self.dropout = nn.Dropout(dropout)

    def features(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x float ``(N, 1, 28, 28)`` in ``[0, 1]`` -> (penultimate ``(N, 128)``, logits ``(N, 10)``)."""
        x = (x - MNIST_MEAN) / MNIST_STD
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        h = F.relu(self.fc1(torch.flatten(x, 1)))
        return h, self.fc2(self.dropout(h))

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x)[1]
