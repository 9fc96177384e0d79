import importlib
import sys
import textwrap
from dataclasses import dataclass

import pytest

from architectures import ARCHITECTURES, ArchSpec, Registry, build_gan
from architectures.registry import load_plugins
from bench.errors import UnknownNameError


@dataclass(frozen=True)
class Cfg:
    x: int = 1


def _spec(name="x"):
    return ArchSpec(name, Cfg, lambda cfg, shape, n: None)


def test_duplicate_name_raises():
    reg: Registry[ArchSpec] = Registry("architecture", ArchSpec)
    reg.register("a-b", _spec("a-b"))
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a-b", _spec("a-b"))


def test_wrong_type_raises():
    reg: Registry[ArchSpec] = Registry("architecture", ArchSpec)
    with pytest.raises(ValueError, match="must be a ArchSpec"):
        reg.register("ok-name", object())


@pytest.mark.parametrize("name", ["WGAN", "wgan_gp", "-x", "a--b", ""])
def test_non_kebab_name_raises(name):
    with pytest.raises(ValueError, match="kebab-case"):
        Registry("architecture", ArchSpec).register(name, _spec())


def test_archspec_needs_dataclass_config():
    with pytest.raises(ValueError, match="dataclass"):
        ArchSpec("bad", dict, lambda *a: None)


def test_unknown_name_lists_registered():
    with pytest.raises(UnknownNameError, match="registered: .*dcgan.*sngan.*vanilla.*wgan-gp"):
        ARCHITECTURES.get("stylegan")


def test_builtins_registered():
    assert {"vanilla", "dcgan", "wgan-gp", "sngan"} <= set(ARCHITECTURES.names())


def test_build_gan_checks_config_type():
    with pytest.raises(ValueError, match="needs a DCGANConfig"):
        build_gan("dcgan", Cfg(), (1, 28, 28))


def _make_plugin(tmp_path, name, body):
    pkg = tmp_path / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text(textwrap.dedent(body))
    dist = tmp_path / f"{name}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    return dist


PLUGIN = """
from dataclasses import dataclass
from torch import nn
from architectures import GAN, ArchSpec
from architectures.blocks import GANConfig

@dataclass(frozen=True)
class PluginConfig(GANConfig):
    z_dim: int = 4

class G(nn.Module):
    z_dim = 4
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 784)
    def forward(self, z):
        return self.fc(z).tanh().view(-1, 1, 28, 28)

def build(cfg, shape, n):
    return GAN(G(), nn.Sequential(nn.Flatten(), nn.Linear(784, 1), nn.Flatten(0)), cfg.loss, cfg.optim())

SPEC = ArchSpec("test-plugin-gan", PluginConfig, build, "from an entry point")
"""


def test_entry_point_plugin_is_found(tmp_path, monkeypatch):
    dist = _make_plugin(tmp_path, "ganbench_test_plugin", PLUGIN)
    (dist / "entry_points.txt").write_text("[ganbench.architectures]\ntest-plugin-gan = ganbench_test_plugin:SPEC\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    try:
        assert load_plugins() == ["test-plugin-gan"]
        spec = ARCHITECTURES.get("test-plugin-gan")
        gan = build_gan("test-plugin-gan", spec.config_cls(), (1, 28, 28))
        assert gan.generator.z_dim == 4
        assert load_plugins() == []  # loading again is a no-op, not a duplicate error
    finally:
        ARCHITECTURES.unregister("test-plugin-gan")
        sys.modules.pop("ganbench_test_plugin", None)


def test_a_broken_plugin_is_skipped_and_the_others_keep_working(tmp_path, monkeypatch):
    """A plugin that fails to import, beside a good one: a warning naming it, the good one and the built-ins
    registered, a lookup of the broken one saying why, the same answer on every lookup, and `ganbench list`
    exits 0 showing both."""
    from typer.testing import CliRunner

    from architectures import PluginWarning
    from architectures.registry import ENTRY_POINT_GROUP, Registry
    from bench.cli import app

    broken = _make_plugin(tmp_path, "ganbench_broken_plugin", "raise ImportError('missing dependency foo')\n")
    (broken / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nbroken = ganbench_broken_plugin:SPEC\n")
    good = _make_plugin(tmp_path, "ganbench_good_plugin", PLUGIN)
    (good / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\ntest-plugin-gan = ganbench_good_plugin:SPEC\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    try:
        with pytest.warns(PluginWarning, match="plugin 'broken' skipped: .*ImportError: missing dependency foo"):
            assert load_plugins() == ["test-plugin-gan"]
        for _ in range(2):  # every lookup gives the same answer
            assert "dcgan" in ARCHITECTURES and "test-plugin-gan" in ARCHITECTURES
            with pytest.raises(UnknownNameError, match="architecture 'broken' cannot be used: .*missing dependency"):
                ARCHITECTURES.get("broken")
        r = CliRunner().invoke(app, ["list"])
        assert r.exit_code == 0, r.output
        assert "test-plugin-gan" in r.output and "BROKEN" in r.output and "dcgan" in r.output
    finally:
        for name in ("broken", "test-plugin-gan"):
            ARCHITECTURES.unregister(name)
        for module in ("ganbench_broken_plugin", "ganbench_good_plugin"):
            sys.modules.pop(module, None)

    reg: Registry[int] = Registry("thing")  # a loader that raises is recorded, not retried into silence

    def failing_loader() -> None:
        raise RuntimeError("boom")

    reg.add_loader(failing_loader)
    reg.register("one", 1)
    assert reg.names() == ["one"] and reg.broken() == {"failing_loader": "RuntimeError: boom"}
    assert reg.names() == ["one"]


def test_optim_spec_is_built_by_name_from_every_architecture_config():
    """OptimSpec takes keywords only (a reordered field cannot shift values silently), and each built-in's
    GANConfig.optim() carries every same-named field across."""
    import dataclasses

    from architectures import ARCHITECTURES
    from architectures.registry import OptimSpec

    with pytest.raises(TypeError):
        OptimSpec(1e-3, 1e-3, (0.5, 0.999))  # positional: refused
    for name in ARCHITECTURES.names():
        cfg = ARCHITECTURES.get(name).config_cls()
        spec = cfg.optim()
        for f in dataclasses.fields(OptimSpec):
            want = (cfg.beta1, cfg.beta2) if f.name == "betas" else getattr(cfg, f.name)
            assert getattr(spec, f.name) == want, (name, f.name)
