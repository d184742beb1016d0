import json

import pytest

from dcgan.config import PRESETS, Config, coerce_field
from dcgan.errors import ConfigError


@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_are_valid_and_named(name):
    config = Config.from_preset(name)
    assert config.preset == name
    assert config.out_dir == f"runs/{name}"


def test_seed128_is_the_default_model():
    assert Config() == Config.from_preset("seed128")
    c = Config()
    assert (c.architecture, c.image_size, c.latent_dim, c.seed_channels) == ("seed", 128, 32, 128)
    assert len(c.g_transpose_widths) == 4 and len(c.g_conv_widths) == 2  # + the RGB conv = 3
    assert len(c.d_widths) == 5
    assert c.label_noise == 0.05
    # measured on real faces (docs/real_faces.md): no dropout in D, G learning twice as fast
    assert (c.d_dropout, c.g_learning_rate, c.d_learning_rate) == (0.0, 2e-4, 1e-4)


def test_demo_preset_has_the_measured_seven_minute_recipe():
    # docs/quality.md, "What got the demo to 1.5x": doubled rates and a light R1 penalty
    c = Config.from_preset("demo")
    assert (c.image_size, c.latent_dim, c.g_widths, c.batch_size) == (32, 32, (128, 64, 32), 64)
    assert (c.d_learning_rate, c.g_learning_rate, c.ema_decay) == (2e-4, 4e-4, 0.99)
    assert (c.r1_gamma, c.r1_interval, c.loss) == (0.1, 16, "bce")


def test_dcgan64_follows_radford():
    c = Config.from_preset("dcgan64")
    assert (c.image_size, c.latent_dim, c.init_stddev) == (64, 100, 0.02)
    assert (c.d_learning_rate, c.g_learning_rate, c.beta_1) == (2e-4, 2e-4, 0.5)


@pytest.mark.parametrize("field,value", [
    ("image_size", 48), ("image_size", 8), ("image_size", 100), ("latent_dim", 0),
    ("batch_size", 0), ("label_noise", 0.7), ("d_learning_rate", 0.0), ("beta_1", 1.0),
    ("label_mode", "swap"), ("epochs", -1), ("d_widths", ()), ("jit_compile", "maybe"),
])
def test_invalid_values_name_the_field(field, value):
    with pytest.raises(ConfigError) as err:
        Config.from_preset("seed128", **{field: value})
    message = str(err.value)
    assert field in message and "\n" not in message


def test_unknown_preset_lists_the_choices():
    with pytest.raises(ConfigError, match="unknown preset 'seed256'.*seed128"):
        Config.from_preset("seed256")


def test_unknown_field_is_refused():
    with pytest.raises(ConfigError, match="learning_rat"):
        Config().replace(learning_rat=1.0)


def test_json_round_trip(tmp_path):
    config = Config.from_preset("demo", g_widths=(64, 32, 16), seed=7)
    config.to_json(tmp_path / "config.json")
    data = json.loads((tmp_path / "config.json").read_text())
    assert data["g_widths"] == [64, 32, 16]
    assert Config.from_json(tmp_path / "config.json") == config


def test_from_json_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="nope.json"):
        Config.from_json(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match="bad.json"):
        Config.from_json(tmp_path / "bad.json")


def test_coerce_field_parses_command_line_strings():
    assert coerce_field("d_widths", "8, 16,32") == (8, 16, 32)
    assert coerce_field("batch_size", "12") == 12
    assert coerce_field("d_learning_rate", "3e-4") == 3e-4
    with pytest.raises(ConfigError, match="batch_size='lots'"):
        coerce_field("batch_size", "lots")
    with pytest.raises(ConfigError, match="d_widths"):
        coerce_field("d_widths", "8,x")


def test_a_yes_no_field_takes_only_yes_or_no_words():
    for word in ("true", "True", "1", "yes", "ON", True, 1):
        assert coerce_field("spectral_norm", word) is True
    for word in ("false", "0", "no", "Off", False, 0):
        assert coerce_field("spectral_norm", word) is False
    # a typo is refused, never read as "off" (it trained without spectral norm before)
    for word in ("treu", "", "2", 2, "y"):
        with pytest.raises(ConfigError, match="spectral_norm=.*expected true or false"):
            coerce_field("spectral_norm", word)
    with pytest.raises(ConfigError, match="reuse_fakes='nope'"):
        Config.from_dict({"reuse_fakes": "nope"})
