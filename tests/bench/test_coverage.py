"""Mode coverage (issue 14, part 2): modes and class KL by the dataset's classifier, for every run."""

import math

import pytest
import torch

from bench import keys
from bench.config import EvalConfig
from bench.metrics.coverage import coverage
from bench.metrics.fidelity import fidelity

CPU = torch.device("cpu")
MODES, KL = keys.eval_key("lenet-mnist", keys.MODES), keys.eval_key("lenet-mnist", keys.CLASS_KL)


def test_coverage_counts_modes_and_kl_by_hand():
    real = torch.arange(10).repeat(100)  # balanced, 10 classes
    same = coverage(real, real, 10)
    assert (same[keys.MODES], same[keys.CLASS_KL]) == (10.0, 0.0)
    assert [same[f"{keys.CLASS_SHARE}/{c}"] for c in range(10)] == [0.1] * 10
    one = torch.full((1000,), 3)
    cov = coverage(one, real, 10)
    assert cov[keys.MODES] == 1.0 and cov[keys.CLASS_KL] == pytest.approx(math.log(10))
    # shares of 4 % and 6 % of classes that are 10 % of the real data: under and over half of it
    parts = [torch.full((40,), 1), torch.full((60,), 2), torch.arange(3, 10).repeat(128), torch.full((4,), 3)]
    skewed = torch.cat(parts)
    assert len(skewed) == 1000 and coverage(skewed, real, 10)[keys.MODES] == 8.0  # 2..9 (not 0 or 1)


def test_real_images_cover_every_class_and_one_class_covers_one(mnist):
    wd, train, test = mnist
    cfg = EvalConfig(n_samples=1000, kid_subset_size=100, extractor="lenet-mnist")
    real, _ = fidelity(train.images[:1000], test, cfg, wd, CPU, metrics=("modes",))
    assert real[MODES] == 10 and real[KL] < 0.02
    sevens, _ = fidelity(train.images[train.labels == 7][:1000], test, cfg, wd, CPU, metrics=("modes",))
    assert sevens[MODES] == 1 and sevens[KL] > 2.0  # log(10) = 2.30 for a perfectly collapsed generator
