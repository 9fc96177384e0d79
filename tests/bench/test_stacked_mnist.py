"""Stacked MNIST (issue 14): 3 MNIST digits as the channels of one image, 1 000 modes counted as the papers
count them (a mode covered by one sample, KL to the uniform), with the shipped MNIST classifier per channel."""

import math

import pytest
import torch

from bench import keys
from bench.config import DataConfig, EvalConfig, load_compare_config
from bench.data import load
from bench.metrics.extractors import EXTRACTORS, locate_weights
from bench.metrics.fidelity import fidelity
from bench.metrics.lenet import load_lenet

CPU = torch.device("cpu")
NAME = "lenet-stacked-mnist"
MODES, KL = keys.eval_key(NAME, keys.MODES), keys.eval_key(NAME, keys.CLASS_KL)


@pytest.fixture(scope="module")
def stacked(mnist_root, tmp_path_factory):
    wd = tmp_path_factory.mktemp("stacked")
    data = DataConfig(dataset="stacked-mnist")
    return wd, load(data, "train", wd), load(data, "test", wd)


def test_each_channel_is_an_mnist_digit_and_the_label_names_all_three(stacked):
    _, train, test = stacked
    assert train.images.shape == (60_000, 3, 28, 28) and test.images.shape == (10_000, 3, 28, 28)
    assert train.num_classes == 1000 and train.classes[:2] == ("000", "001")
    digit = load_lenet(locate_weights("lenet-mnist", None, None, False), 1, 10, 28)
    x, y = test.images[:2000], test.labels[:2000]
    for c, place in enumerate((100, 10, 1)):
        with torch.no_grad():
            predicted = digit(x[:, c : c + 1].float() / 255).argmax(1)
        assert (predicted == (y // place) % 10).float().mean() > 0.98  # the MNIST classifier's 99 % per digit
    assert len(set(train.labels.tolist())) == 1000  # every triple occurs
    again = load(DataConfig(dataset="stacked-mnist"), "test", stacked[0])
    assert torch.equal(again.images, test.images)  # the same images for every user


def test_real_stacks_cover_the_modes_and_a_collapsed_generator_covers_ten(stacked):
    wd, train, test = stacked
    cfg = EvalConfig(n_samples=3000, kid_subset_size=100, extractor=NAME)
    real, p = fidelity(train.images[:3000], test, cfg, wd, CPU, metrics=("isc", "modes"))
    # 3 000 samples over 1 000 equally likely modes leave about 1000 * e^-3 = 50 empty; the KL of the
    # empirical histogram to the uniform is about (1000 - 1) / (2 * 3000) = 0.17 from sampling alone
    assert real[MODES] >= 920 and real[KL] < 0.3
    # a product of three ~10-class softmaxes, up to 1 000 classes; torch-fidelity's 10 splits of 300 samples
    # cannot see more than 300 of them (26 000 samples give 794 here)
    assert real[keys.eval_key(NAME, keys.IS_MEAN)] > 150
    assert "3 x 128" in p.kid_features
    collapsed = train.images[:3000].clone()
    collapsed[:, 1:] = train.images[0, 1:]  # channels 1 and 2 always the same digit: 10 modes of 1 000
    bad, _ = fidelity(collapsed, test, cfg, wd, CPU, metrics=("modes",))
    assert bad[MODES] == 10 and bad[KL] == pytest.approx(math.log(100), abs=0.05)


def test_stacked_mnist_defaults_to_pacgans_26000_samples_and_an_explicit_value_wins():
    over = {"data": {"dataset": "stacked-mnist"}}
    assert load_compare_config(None, [], overrides=over).eval.n_samples == 26_000
    assert load_compare_config(None, ["eval.n_samples=5000"], overrides=over).eval.n_samples == 5000
    assert load_compare_config(None, []).eval.n_samples == 10_000


def test_its_extractor_is_the_shipped_mnist_classifier():
    spec = EXTRACTORS.get(NAME)
    assert spec.shipped and spec.coverage == "uniform" and spec.num_classes == 1000
    assert locate_weights(NAME, None, None, False) == locate_weights("lenet-mnist", None, None, False)
