import hashlib

import numpy as np
import pytest
import scipy.linalg
import torch

from bench import keys
from bench.config import DataConfig, EvalConfig
from bench.data import load, to_uint8
from bench.metrics.discriminator import accuracy, roc_auc
from bench.metrics.extractors import LENET_SHA256, LENET_WEIGHTS, FeatureExtractorLeNetMNIST
from bench.metrics.fidelity import fidelity
from bench.metrics.lenet import load_lenet
from bench.metrics.sampling import generate
from bench.metrics.train_lenet import accuracy as classifier_accuracy

CPU = torch.device("cpu")

FID = keys.eval_key("lenet-mnist", keys.FID)
IS = keys.eval_key("lenet-mnist", keys.IS_MEAN)


def fid_reference(mu1, s1, mu2, s2) -> float:
    """Fréchet distance (Heusel et al. 2017): |mu1-mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^½), scipy's sqrtm."""
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def _stats(f):
    return f.mean(0), np.cov(f, rowvar=False)


def test_shipped_weights_are_pinned():
    assert hashlib.sha256(LENET_WEIGHTS.read_bytes()).hexdigest() == LENET_SHA256
    assert LENET_WEIGHTS.stat().st_size < 2 * 2**20


def test_shipped_classifier_accuracy(mnist):
    _, _, test = mnist
    model = load_lenet(LENET_WEIGHTS, 1, 10, 28)
    assert classifier_accuracy(model, test.images, test.labels) >= 0.99


def test_torch_fidelity_fid_matches_scipy_and_pytorch_fid():
    from pytorch_fid.fid_score import calculate_frechet_distance
    from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_statistics_to_metric

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(500, 16)), rng.normal(0.3, 1.5, size=(400, 16)) @ rng.normal(size=(16, 16))
    (mu1, s1), (mu2, s2) = _stats(a), _stats(b)
    ref = fid_reference(mu1, s1, mu2, s2)
    ours = fid_statistics_to_metric({"mu": mu1, "sigma": s1}, {"mu": mu2, "sigma": s2}, False)[KEY_METRIC_FID]
    assert ours == pytest.approx(ref, rel=1e-6)
    assert calculate_frechet_distance(mu1, s1, mu2, s2) == pytest.approx(ref, rel=1e-6)
    same = fid_statistics_to_metric({"mu": mu1, "sigma": s1}, {"mu": mu1, "sigma": s1}, False)[KEY_METRIC_FID]
    assert abs(same) < 1e-6


def test_fid_pipeline_matches_reference_on_extracted_features(mnist):
    """Our wiring (uint8 input, penultimate layer, whole reference split) gives the textbook number."""
    wd, train, test = mnist
    cfg = EvalConfig(n_samples=2000, kid_subset_size=500)
    metrics, protocol = fidelity(train.images[:2000], test, cfg, wd, CPU)
    ext = FeatureExtractorLeNetMNIST("ganbench-lenet-mnist", ["penultimate"])
    with torch.no_grad():
        fa = ext(train.images[:2000])[0].double().numpy()
        fb = torch.cat([ext(test.images[i : i + 2500])[0] for i in range(0, 10000, 2500)]).double().numpy()
    assert metrics[FID] == pytest.approx(fid_reference(*_stats(fa), *_stats(fb)), rel=1e-4)
    assert (protocol.n_samples, protocol.n_reference, protocol.reference) == (2000, 10000, "mnist/test")
    assert protocol.extractor_sha256 == LENET_SHA256


def test_fid_of_a_set_with_itself_is_zero(mnist):
    wd, _, test = mnist
    m, _ = fidelity(test.images, test, EvalConfig(batch_size=1000), wd, CPU)
    assert abs(m[FID]) < 1e-6
    assert m[IS] >= 9.8  # the real test set: near the 10 of a perfect, confident classifier


def test_metrics_do_not_depend_on_batch_size(mnist):
    wd, train, test = mnist
    images = train.images[:1000]
    m1, _ = fidelity(images, test, EvalConfig(batch_size=100, n_samples=1000, kid_subset_size=500), wd, CPU)
    m2, _ = fidelity(images, test, EvalConfig(batch_size=1000, n_samples=1000, kid_subset_size=500), wd, CPU)
    assert m1.keys() == m2.keys()
    for k in m1:
        assert m1[k] == pytest.approx(m2[k], rel=1e-5), k


def test_real_data_beats_noise(mnist):
    wd, train, test = mnist
    cfg = EvalConfig(n_samples=1000, kid_subset_size=500)
    real, _ = fidelity(train.images[:1000], test, cfg, wd, CPU)
    noise, _ = fidelity(torch.randint(0, 256, (1000, 1, 28, 28), dtype=torch.uint8), test, cfg, wd, CPU)
    assert real[FID] * 50 < noise[FID]
    assert real[IS] > 9 and noise[IS] < 2
    assert real[keys.eval_key("lenet-mnist", keys.KID_MEAN)] < noise[keys.eval_key("lenet-mnist", keys.KID_MEAN)]


def test_reference_statistics_are_cached_by_key(mnist, tmp_path):
    _, train, test = mnist
    cache = tmp_path / "cache" / "torch-fidelity"
    cfg = EvalConfig(n_samples=200, kid_subset_size=100, n_reference=1000)
    m1, _ = fidelity(train.images[:200], test, cfg, tmp_path, CPU)
    files = {p.name for p in cache.rglob("*") if p.is_file()}
    assert files and all(f"mnist-test-28px1c-lenet-mnist-{LENET_SHA256[:16]}-n1000" in n for n in files)
    # a different reference size: a new key, statistics recomputed (a different number)
    m2, _ = fidelity(
        train.images[:200], test, EvalConfig(n_samples=200, kid_subset_size=100, n_reference=2000), tmp_path, CPU
    )
    assert any("-n2000" in p.name for p in cache.rglob("*"))
    assert m2[FID] != m1[FID]
    # different extractor weights: a new key (sha256), not the stale statistics of the old weights
    state = torch.load(LENET_WEIGHTS, weights_only=True)
    state["fc1.weight"] = state["fc1.weight"] * 1.5
    other = tmp_path / "other-lenet.pt"
    torch.save(state, other)
    m3, p3 = fidelity(train.images[:200], test, cfg, tmp_path, CPU, weights=other)
    assert p3.extractor_sha256 != LENET_SHA256
    assert any(p3.extractor_sha256[:16] in p.name for p in cache.rglob("*"))
    assert m3[FID] != pytest.approx(m1[FID], rel=1e-3)
    # the same key again: read from the cache, same number
    m4, _ = fidelity(train.images[:200], test, cfg, tmp_path, CPU)
    assert m4[FID] == pytest.approx(m1[FID], rel=1e-9)


def test_kid_subset_larger_than_samples_is_a_clear_error(mnist, tmp_path):
    from bench.errors import ConfigError

    _, train, test = mnist
    with pytest.raises(ConfigError, match="eval.kid_subset_size = 1000 exceeds the sample counts"):
        fidelity(train.images[:300], test, EvalConfig(), tmp_path, CPU)


def test_extractor_rejects_wrong_input():
    ext = FeatureExtractorLeNetMNIST("ganbench-lenet-mnist", ["penultimate"])
    with pytest.raises(ValueError, match=r"uint8 images \(N, 1, 28, 28\)"):
        ext(torch.zeros(2, 1, 28, 28))
    with pytest.raises(ValueError, match="got torch.uint8"):
        ext(torch.zeros(2, 3, 32, 32, dtype=torch.uint8))


def test_generate_is_seeded_and_leaves_global_rng_alone():
    g = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh())
    g.z_dim = 3
    state = torch.get_rng_state()
    a, b = (
        generate(g, 10, 4, seed=5, device=torch.device("cpu")),
        generate(g, 10, 7, seed=5, device=torch.device("cpu")),
    )
    assert torch.equal(torch.get_rng_state(), state)
    torch.testing.assert_close(a, b)  # batch size does not change the samples
    assert not torch.equal(a, generate(g, 10, 4, seed=6, device=torch.device("cpu")))
    assert to_uint8(a).dtype == torch.uint8


def test_roc_auc_matches_pairwise_definition():
    rng = np.random.default_rng(1)
    r, f = rng.normal(1, 1, 300).round(1), rng.normal(0, 1, 200).round(1)  # rounding makes ties
    pairwise = ((r[:, None] > f[None, :]) + 0.5 * (r[:, None] == f[None, :])).mean()
    assert roc_auc(r, f) == pytest.approx(pairwise, rel=1e-12)
    assert roc_auc(np.array([2.0, 3.0]), np.array([0.0, 1.0])) == 1.0
    assert roc_auc(np.array([0.0]), np.array([1.0])) == 0.0


def test_accuracy_at_threshold():
    out = accuracy(np.array([1.0, 2.0, -1.0, 0.5]), np.array([-2.0, 0.0, 3.0]), threshold=0.0)
    assert out[keys.D_ACC_REAL] == pytest.approx(3 / 4)
    assert out[keys.D_ACC_FAKE] == pytest.approx(2 / 3)  # a score equal to the threshold counts as fake
    assert out[keys.D_ACC] == pytest.approx(5 / 7)


@pytest.mark.parametrize("device, cuda", [("cpu", False), ("cuda", True)])
def test_metrics_run_on_the_device_they_are_given(device, cuda, mnist_root, tmp_path, monkeypatch):
    """torch-fidelity is told the run's device, not where the reference happens to be held (on a GPU machine
    the reference is on the CPU: the old ``cuda = reference.images.is_cuda`` computed every metric there)."""
    import torch_fidelity

    seen = {}

    def fake_calculate_metrics(**kwargs):
        seen.update(kwargs)
        return {torch_fidelity.KEY_METRIC_FID: 1.0}

    def fake_feature_metrics(options, cfg, spec, train, cache_name):  # its own feature extraction: same device
        seen["density on cuda"] = options["cuda"]
        return {}, None

    import importlib

    fidelity_module = importlib.import_module("bench.metrics.fidelity")  # (bench.metrics.fidelity: the function)

    monkeypatch.setattr(torch_fidelity, "calculate_metrics", fake_calculate_metrics)
    monkeypatch.setattr(fidelity_module, "_feature_metrics", fake_feature_metrics)
    test = load(DataConfig(), "test", tmp_path)
    assert not test.images.is_cuda
    m, _ = fidelity(
        test.images[:100], test, EvalConfig(n_samples=100, kid_subset_size=50), tmp_path, torch.device(device)
    )
    assert seen["cuda"] is cuda and seen["density on cuda"] is cuda
    assert m[keys.eval_key("lenet-mnist", keys.FID)] == 1.0


def test_density_and_coverage_equal_the_authors_prdc():
    """Naeem et al. 2020's density and coverage, as their package prdc computes them, on fixed features."""
    import contextlib
    import io

    import numpy as np
    import prdc

    from bench.metrics.density import density_coverage

    rng = np.random.default_rng(0)
    real = rng.normal(size=(1500, 16)).astype(np.float32)
    for fake in (rng.normal(size=(1200, 16)) * 1.3 + 0.2, rng.normal(size=(2500, 16)) * 0.5, real[:700] + 0.01):
        fake = fake.astype(np.float32)
        for k in (1, 5):
            with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the sample counts
                ref = prdc.compute_prdc(real, fake, k)
            ours = density_coverage(torch.from_numpy(real), torch.from_numpy(fake), k)
            assert ours["density"] == pytest.approx(ref["density"], abs=1e-12)
            assert ours["coverage"] == pytest.approx(ref["coverage"], abs=1e-12)
    with pytest.raises(ValueError, match="k = 5 must be between 1"):
        density_coverage(torch.zeros(5, 2), torch.zeros(3, 2), 5)


def test_density_and_coverage_beside_precision_recall(mnist):
    """Computed with precision/recall on the same features and k: real images cover the reference, noise
    covers nothing."""
    wd, train, test = mnist
    cfg = EvalConfig(n_samples=1000, kid_subset_size=500, batch_size=500)
    real, _ = fidelity(train.images[:1000], test, cfg, wd, CPU)
    noise, _ = fidelity(torch.randint(0, 256, (1000, 1, 28, 28), dtype=torch.uint8), test, cfg, wd, CPU)
    key = "eval/lenet-mnist/"
    assert 0.5 < real[key + "density"] < 1.5 and real[key + "coverage"] > 0.1  # 1 000 fakes, 10 000 balls
    assert noise[key + "coverage"] < 0.01 and noise[key + "density"] < real[key + "density"]
