import re

import pytest

from bench.config import load_compare_config, parse_set
from bench.errors import ConfigError


def test_defaults_are_the_four_variants_one_seed_two_epochs():
    cc = load_compare_config()
    assert cc.archs == ("vanilla", "dcgan", "wgan-gp", "sngan")
    assert cc.seeds == (0,)
    assert (cc.train.epochs, cc.train.steps) == (2.0, None)
    assert [r.run_name for r in cc.runs()] == ["vanilla-seed0", "dcgan-seed0", "wgan-gp-seed0", "sngan-seed0"]


@pytest.mark.parametrize(
    "item, expected",
    [
        ("train.steps=200", (["train", "steps"], 200)),
        ("model.dcgan.lr_g=1e-4", (["model", "dcgan", "lr_g"], 1e-4)),
        ("eval.enabled=false", (["eval", "enabled"], False)),
        ("seeds=[0, 1]", (["seeds"], [0, 1])),
        ("data.dataset=mnist", (["data", "dataset"], "mnist")),
        ('experiment="a b"', (["experiment"], "a b")),
    ],
)
def test_parse_set(item, expected):
    assert parse_set(item) == expected


@pytest.mark.parametrize(
    "sets, message",
    [
        (["train.stpes=5"], "unknown key 'train.stpes'; allowed: batch_size"),
        (["train.steps=abc"], "train.steps = 'abc' has the wrong type"),
        (["train.steps=1.5"], "train.steps = 1.5 has the wrong type"),
        (["eval.enabled=1"], "eval.enabled = 1 has the wrong type; expected bool"),
        (["model.dcgan.lr_g=-1"], "model.dcgan: lr_g = -1.0 is out of range"),
        (["model.dcgan.width=3"], "unknown key 'model.dcgan.width'"),
        (["model.stylegan.lr_g=1"], "unknown architecture 'stylegan'"),
        (['archs=["dcgan", "nope"]'], "unknown architecture 'nope'"),
        (["train.steps=0"], "train.steps = 0 is not allowed; expected >= 1"),
        (["train.steps=5", "train.epochs=2"], "exactly one of train.steps and train.epochs"),
        (["eval.kid_subset_size=20000"], "eval.kid_subset_size = 20000"),
        (["model.dcgan.loss=l1"], "unknown loss 'l1'"),
        (["train.device=tpu"], "train.device = 'tpu' is not allowed"),
        (["seeds=[1, 1]"], "no duplicates"),
        (["train"], "must look like section.key=value"),
        (["train.steps.x=1"], "train.steps = {'x': 1} has the wrong type"),
    ],
)
def test_bad_values_name_the_key(sets, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_compare_config(None, sets)


def test_steps_replaces_default_epochs_and_back():
    assert load_compare_config(None, ["train.steps=7"]).train.steps == 7
    assert load_compare_config(None, ["train.steps=7"]).train.epochs is None
    cc = load_compare_config(None, ["train.steps=7", "train.steps=none", "train.epochs=2"])
    assert (cc.train.steps, cc.train.epochs) == (None, 2.0)


def test_toml_file_then_set(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text(
        'experiment = "x"\narchs = ["dcgan", "sngan"]\nseeds = [3, 4]\n'
        "[train]\nepochs = 2\n[model.dcgan]\nlr_g = 1e-3\ng_width = 8\n"
    )
    cc = load_compare_config(f, ["model.dcgan.lr_g=5e-4"])
    assert cc.experiment == "x" and cc.seeds == (3, 4) and cc.train.epochs == 2.0
    dcgan = cc.run("dcgan", 3).model
    assert (dcgan.lr_g, dcgan.g_width, dcgan.d_width) == (5e-4, 8, 64)
    assert cc.run("sngan", 4).model.lr_g == 2e-4  # other architectures keep their paper defaults


def test_float_field_accepts_int_and_tuple_field_accepts_list():
    cc = load_compare_config(None, ['archs=["vanilla"]', "model.vanilla.lr_g=1", "model.vanilla.g_widths=[32, 64]"])
    model = cc.run("vanilla", 0).model
    assert model.lr_g == 1.0 and isinstance(model.lr_g, float)
    assert model.g_widths == (32, 64)


@pytest.mark.parametrize(
    "text, message",
    [("[train\nsteps=1", "not valid TOML"), ("train = 3", "train = 3 in config file .* must be a table")],
)
def test_bad_toml_file(tmp_path, text, message):
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_compare_config(f)


def test_missing_toml_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_compare_config(tmp_path / "nope.toml")


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
def test_shipped_study_file_is_valid(dataset):
    from pathlib import Path

    cc = load_compare_config(Path(__file__).parents[2] / "studies" / f"{dataset}-head-to-head.toml")
    assert set(cc.archs) == {"vanilla", "dcgan", "wgan-gp", "sngan"}
    assert len(cc.seeds) >= 3 and cc.train.epochs >= 10
    assert cc.data.dataset == dataset and cc.eval.extractor == f"lenet-{dataset}"


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("train = 5\n", "train = 5 in config file '{path}' must be a table ([train] with keys)"),
        ("eval = 'x'\n", "eval = 'x' in config file '{path}' must be a table ([eval] with keys)"),
        ("[model]\ndcgan = 3\n", "model.dcgan = 3 in config file '{path}' must be a table"),
    ],
)
def test_a_scalar_where_a_table_belongs_is_refused_even_when_an_option_sets_that_table(tmp_path, toml, message):
    """Each source's shape is checked before merging: --steps (a [train] table from the options) used to
    replace the file's ``train = 5`` silently."""
    path = tmp_path / "c.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as e:
        load_compare_config(path, overrides={"train": {"steps": 2}})
    assert str(e.value).startswith(message.format(path=path))


def _outside(metadata):
    from architectures.registry import _bounds

    b = _bounds(metadata)
    if "ge" in b:
        return b["ge"] - 1
    if "gt" in b:
        return b["gt"]
    return b.get("le", b.get("lt")) + 1


def test_every_declared_range_is_enforced_with_the_message_it_declares():
    """Ranges are pydantic constraints on the fields (no hand-written check): for each one a value just
    outside it is refused in one line that states the declared range."""
    import typing

    from architectures import ARCHITECTURES
    from architectures.registry import declared_ranges, describe_range
    from bench.config import DataConfig, EvalConfig, TrainConfig

    checked = 0
    for section, cls in (("data", DataConfig), ("train", TrainConfig), ("eval", EvalConfig)):
        for name, metadata in declared_ranges(cls).items():
            value = _outside(metadata)
            with pytest.raises(ConfigError) as e:
                load_compare_config(None, [f"{section}.{name}={value}"])
            described = [m.description for m in metadata if getattr(m, "description", None)]
            allowed = described[0] if described else describe_range(metadata)
            assert str(e.value).startswith(f"{section}.{name} = ") and str(e.value).endswith(f"expected {allowed}")
            checked += 1
    from architectures.blocks import GANConfig

    for arch in ARCHITECTURES.names():
        ranges = declared_ranges(ARCHITECTURES.get(arch).config_cls)
        assert set(declared_ranges(GANConfig)) <= set(ranges), arch  # a redeclared default keeps its range
        for name, metadata in ranges.items():
            with pytest.raises(ConfigError, match=rf"^model\.{arch}: {name} = .* is out of range"):
                load_compare_config(None, [f'archs=["{arch}"]', f"model.{arch}.{name}={_outside(metadata)}"])
            checked += 1
    assert checked > 60  # 21 in the bench sections, 9+ per architecture
    literal = typing.get_type_hints(TrainConfig, include_extras=True)["precision"]
    assert typing.get_origin(literal) is typing.Literal


def test_a_table_for_the_dataset_name_is_a_type_error():
    """Found by the fuzzed --set test: data.dataset = {} raised TypeError (a dict as a dictionary key)."""
    with pytest.raises(ConfigError, match=r"^data.dataset = \{\} has the wrong type; expected str"):
        load_compare_config(None, ["data.dataset={}"])
