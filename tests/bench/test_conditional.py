"""Class-conditional GANs (issue 14): the contract, labelled batches, per-class grids, and the usefulness
metrics (CAS with its ceiling, augmentation gain, intra-FID) on real MNIST with fake generators whose
answers are known."""

import math

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from architectures import ARCHITECTURES, GAN, OptimSpec, build_gan
from bench import keys
from bench.config import EvalConfig
from bench.data import ShuffledBatches, to_float
from bench.hooks import SampleGrid
from bench.metrics.evaluator import Evaluator
from bench.metrics.extractors import locate_weights
from bench.metrics.sampling import sample_labels
from bench.metrics.usefulness import Usefulness, k_per_class

CPU = torch.device("cpu")
CONDITIONAL = [a for a in ARCHITECTURES.names() if ARCHITECTURES.get(a).conditional]
PRIMARY = "lenet-mnist"


def test_the_three_conditional_variants_are_registered():
    assert {"cgan", "acgan", "sngan-projection"} <= set(CONDITIONAL)
    assert not ARCHITECTURES.get("dcgan").conditional


@pytest.mark.parametrize("arch", CONDITIONAL)
def test_a_conditional_architecture_needs_labels(arch):
    with pytest.raises(ValueError, match="class-conditional and needs a labelled dataset"):
        build_gan(arch, ARCHITECTURES.get(arch).config_cls(), (1, 28, 28))


@pytest.mark.parametrize("arch", CONDITIONAL)
def test_the_label_changes_the_output(arch):
    """G(z, y) depends on y, and D(x, y) on y (except AC-GAN's D, whose class head answers instead)."""
    torch.manual_seed(0)
    gan = build_gan(arch, ARCHITECTURES.get(arch).config_cls(), (1, 28, 28), 10)
    for m in gan.generator.modules():  # conditional BatchNorm starts the same for every class (scale 1, shift 0)
        if isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight)
    gan.generator.eval(), gan.discriminator.eval()
    z = torch.randn(4, gan.generator.z_dim)
    y0, y1 = torch.zeros(4, dtype=torch.long), torch.full((4,), 7)
    with torch.no_grad():
        assert not torch.allclose(gan.generate(z, y0), gan.generate(z, y1))
        x = gan.generate(z, y0)
        (s0, c0), (s1, _) = gan.discriminate(x, y0), gan.discriminate(x, y1)
    if gan.aux_weight > 0:
        assert c0.shape == (4, 10) and torch.equal(s0, s1)
    else:
        assert c0 is None and not torch.allclose(s0, s1)


def test_acgan_trains_its_class_head_and_logs_the_class_loss(tmp_path):
    from bench.config import load_compare_config
    from bench.harness import seed_everything
    from bench.trainer import fit

    cfg = load_compare_config(None, ['archs=["acgan"]', "train.steps=2", "train.batch_size=8"]).run("acgan", 0)
    seed_everything(0)
    gan = build_gan("acgan", cfg.model, (1, 28, 28), 10)
    head = gan.discriminator.classifier.weight.detach().clone()
    images = torch.randint(0, 256, (32, 1, 28, 28), dtype=torch.uint8)
    seen = []

    class Capture:
        def on_fit_start(self, t): ...
        def on_step_end(self, t, out):
            seen.append(out.extras)

        def on_fit_end(self, t): ...

    fit(gan, ShuffledBatches(images, 8, 0, None, torch.arange(32) % 10), cfg, CPU, [Capture()])
    assert all("class_loss" in e and math.isfinite(float(e["class_loss"])) for e in seen)
    assert not torch.equal(head, gan.discriminator.classifier.weight)


def test_batch_sampler_yields_each_image_with_its_own_label():
    images = torch.arange(20, dtype=torch.uint8).view(20, 1, 1, 1).expand(20, 1, 2, 2).contiguous()
    labels = torch.arange(20) * 10
    s = ShuffledBatches(images, 6, 3, None, labels)
    for i in range(7):  # across epochs
        x, y = s.labelled(i)
        torch.testing.assert_close(x, s(i))
        assert torch.equal(((x[:, 0, 0, 0] + 1) * 127.5).round().long() * 10, y)
    with pytest.raises(ValueError, match="no labels"):
        ShuffledBatches(images, 6, 3).labelled(0)


def test_sample_labels_are_balanced():
    y = sample_labels(1003, 10)
    assert np.bincount(y.numpy()).tolist() == [101, 101, 101] + [100] * 7


def test_k_per_class_draws_k_of_every_class_by_seed():
    labels = torch.arange(100) % 10
    idx = k_per_class(labels, 3, 10, seed=0)
    assert np.bincount(labels[idx].numpy()).tolist() == [3] * 10
    assert not torch.equal(idx, k_per_class(labels, 3, 10, seed=1))
    assert torch.equal(idx, k_per_class(labels, 3, 10, seed=0))


def test_conditional_grid_has_one_labelled_row_per_class(tmp_path):
    gan = build_gan("cgan", ARCHITECTURES.get("cgan").config_cls(), (1, 28, 28), 10)

    class T:  # what SampleGrid reads of a Trainer
        device, total_steps, step = CPU, 1, 1

        def __init__(self):
            self.gan = gan

        def sample(self, z, y=None):
            return gan.generate(z, y)

    hook = SampleGrid(tmp_path, 0, classes=tuple("0123456789"))
    hook.on_fit_start(T())
    assert torch.equal(hook.y, torch.arange(10).repeat_interleave(10))
    assert torch.equal(hook.z[:10], hook.z[10:20])  # one z per column, the same in every row
    image = Image.open(hook.save(T(), "final.png"))
    assert image.height == 10 * 30 + 2 and image.width > 10 * 30 + 2  # 10 rows, and a margin for the names


class PerfectConditional(nn.Module):
    """G(z, y): a real MNIST training image of class y (which one chosen by z): what a perfect conditional
    generator would draw. ``collapse_to``: always that class instead, whatever y asks for."""

    def __init__(self, images, labels, collapse_to=None):
        super().__init__()
        self.z_dim, self.collapse_to = 2, collapse_to
        self.bank = [images[labels == c] for c in range(10)]

    def forward(self, z, y):
        pick = (z[:, 0].abs() * 1e5).long()
        classes = y.tolist() if self.collapse_to is None else [self.collapse_to] * len(y)
        return torch.stack(
            [to_float(self.bank[c][i % len(self.bank[c])]) for c, i in zip(classes, pick.tolist(), strict=True)]
        )


class Indifferent(nn.Module):
    def forward(self, x, y):
        return torch.zeros(x.shape[0])


CFG = EvalConfig(
    n_samples=1000,
    kid_subset_size=100,
    kid_subsets=5,
    extractor=PRIMARY,
    classifier_steps=60,
    classifier_test=1000,
    augment_k=(10,),
    augment_seeds=2,
)


def _evaluate(mnist, collapse_to=None):
    wd, train, test = mnist
    g = PerfectConditional(train.images[:20000], train.labels[:20000], collapse_to)
    gan = GAN(g, Indifferent(), "bce", OptimSpec(lr_g=2e-4, lr_d=2e-4, betas=(0.5, 0.999)), num_classes=10)
    weights = {PRIMARY: locate_weights(PRIMARY, None, wd, False)}
    metrics = Evaluator(test, CFG, wd, CPU, weights).evaluate(gan, Usefulness(train, test, CFG, wd)).metrics
    return metrics


def test_a_perfect_conditional_generator_reaches_the_ceiling_and_every_mode(mnist):
    m = _evaluate(mnist)
    assert m[keys.CAS_REAL] > 0.8  # the ceiling: 1000 real images, 60 steps
    assert abs(m[keys.CAS] - m[keys.CAS_REAL]) < 0.04  # trained on other real images of the asked classes
    assert m[keys.eval_key(PRIMARY, keys.MODES)] == 10
    assert m[keys.eval_key(PRIMARY, keys.CLASS_KL)] < 0.02
    # 100 real images per class against that class's test images: near the per-class real-data value
    assert m[keys.eval_key(PRIMARY, keys.INTRA_FID)] < 3 * m[keys.eval_key(PRIMARY, keys.FID)] + 30
    assert m[keys.augment_key(10, "gain")] > 0  # 1000 more correctly labelled images help at k = 10
    shares = [m[keys.eval_key(PRIMARY, f"{keys.CLASS_SHARE}/{c}")] for c in range(10)]
    assert sum(shares) == pytest.approx(1.0) and min(shares) > 0.07


def test_a_generator_of_one_class_covers_one_mode_and_misleads_the_classifier(mnist):
    good, bad = _evaluate(mnist), _evaluate(mnist, collapse_to=3)
    assert bad[keys.eval_key(PRIMARY, keys.MODES)] == 1
    assert bad[keys.eval_key(PRIMARY, keys.CLASS_KL)] > 2.0  # log 10 = 2.30 for a full collapse
    assert bad[keys.CAS] < 0.3  # every label but 3 is wrong
    assert bad[keys.CAS_REAL] == good[keys.CAS_REAL]  # the ceiling does not depend on the generator
    assert bad[keys.augment_key(10, "gain")] < 0 < good[keys.augment_key(10, "gain")]
    assert bad[keys.eval_key(PRIMARY, keys.INTRA_FID)] > 3 * good[keys.eval_key(PRIMARY, keys.INTRA_FID)]


def test_classifier_batches_are_full_and_each_pass_is_a_permutation():
    from bench.metrics.usefulness import _batches

    batches = list(_batches(10, 4, 5, torch.Generator().manual_seed(0)))
    assert [len(b) for b in batches] == [4] * 5  # no short batch at the end of a pass
    stream = torch.cat(batches)
    assert sorted(stream[:10].tolist()) == list(range(10))  # the first pass: every item once
    assert len(list(_batches(3, 8, 2, torch.Generator().manual_seed(0)))) == 2  # fewer items than a batch


def test_augmented_batches_are_half_real(monkeypatch):
    """With generated samples added, every step sees batch_size * real_fraction real images and the rest
    generated, so that the real ones are not diluted in the pool (the gain measures what the samples add)."""
    from bench.metrics import usefulness

    seen = []
    real_forward = usefulness.LeNet.forward

    def spy(self, x):
        seen.append(int((x.flatten(1).amax(1) == 0).sum()))  # real images here are blank, generated ones not
        return real_forward(self, x)

    monkeypatch.setattr(usefulness.LeNet, "forward", spy)
    real = torch.zeros(20, 1, 28, 28, dtype=torch.uint8)
    gen = torch.full((500, 1, 28, 28), 200, dtype=torch.uint8)
    recipe = usefulness.Recipe(steps=6, batch_size=16)
    usefulness.train_classifier(real, torch.arange(20) % 10, 10, recipe, 0, (gen, torch.arange(500) % 10))
    assert seen == [8] * 6
    seen.clear()
    usefulness.train_classifier(real, torch.arange(20) % 10, 10, recipe, 0)
    assert seen == [16] * 6  # without: all real


def test_the_baseline_loader_of_emnist_letters_has_ganbenchs_labels(mnist_root, tmp_path):
    """bench speed's torchvision baseline gives the letters 0..25 as ganbench does (torchvision: 1..26), so
    a conditional GAN's one-hot / embedding sees the same labels on both paths."""
    from bench.data import DATASETS

    spec = DATASETS.get("emnist-letters")
    ds = spec.torchvision(mnist_root, tmp_path, "test", None)
    labels = [ds[i][1] for i in range(0, len(ds), 50)]
    assert min(labels) == 0 and max(labels) == 25


def test_intra_fid_leaves_out_classes_with_too_few_images(mnist):
    """Below INTRA_FID_MIN images of a class on either side its FID is not estimated; with no class left the
    metric is None (not logged), as for a conditional run on Stacked MNIST's 1 000 classes."""
    from bench.metrics.intra_fid import INTRA_FID_MIN

    wd, train, test = mnist
    few = INTRA_FID_MIN - 1
    labels = sample_labels(10 * few, 10)
    images = torch.cat([train.images[train.labels == c][:few] for c in range(10)])[torch.argsort(labels, stable=True)]
    weights = locate_weights(PRIMARY, None, wd, False)
    assert Evaluator(test, CFG, wd, CPU, {PRIMARY: weights}).intra_fid(images, labels) is None
