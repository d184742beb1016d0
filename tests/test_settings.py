"""Every "auto" is decided in dcgan/settings.py, once per run, and recorded in environment.json."""

import ast
import json
from pathlib import Path

import keras
import pytest

import dcgan.training.loop
from dcgan.config import Config
from dcgan.errors import ConfigError
from dcgan.hardware import Accelerator
from dcgan.settings import Settings, crop, resolve

# The Config fields whose "auto" depends on the machine or on other fields.
AUTO_FIELDS = ("precision", "jit_compile", "devices", "data_format", "crop", "min_image_side",
               "best_every", "steps_per_execution")


def test_on_this_cpu_every_auto_has_one_answer():
    config = Config.from_preset("demo", epochs=15)
    settings = resolve(config)
    assert settings == Settings(
        backend=keras.backend.backend(), accelerator=settings.accelerator, platform="cpu",
        devices=1, precision="float32", jit_compile=keras.backend.backend() == "jax",
        steps_per_execution=1, data_format="channels_last", min_image_side=8, best_every=3)
    explicit = resolve(config.replace(jit_compile="false", min_image_side=0, best_every=0,
                                      data_format="channels_first"))
    assert (explicit.jit_compile, explicit.min_image_side, explicit.best_every,
            explicit.data_format) == (False, 0, 0, "channels_first")
    # sampling a saved run: one device, one step per call, whatever the run trained with
    assert resolve(config.replace(steps_per_execution=4), training=False).steps_per_execution == 1


def test_auto_jit_turns_xla_off_for_r1_on_a_tensorflow_cpu():
    """XLA runs R1's gradient of a gradient ~12x slower than a plain step on a CPU (the demo
    preset has R1 on), so auto picks eager there; elsewhere, and when asked, it stays."""
    demo = Config.from_preset("demo")
    assert demo.r1_gamma > 0
    assert resolve(demo).jit_compile is (keras.backend.backend() == "jax")
    assert resolve(demo.replace(r1_gamma=0.0)).jit_compile is (keras.backend.backend() != "torch")
    assert resolve(demo.replace(jit_compile="true")).jit_compile is True
    gpu = Accelerator("gpu", "NVIDIA A100", (8, 0), count=1)
    assert resolve(demo, gpu).jit_compile is (keras.backend.backend() != "torch")


def test_auto_precision_and_devices_read_the_accelerator():
    config = Config.from_preset("demo")
    t4 = Accelerator("gpu", "Tesla T4", (7, 5), count=1)
    assert resolve(config, t4).precision == "mixed_float16"
    assert resolve(config, Accelerator("tpu", "TPU v5 lite")).precision == "mixed_bfloat16"
    assert resolve(config.replace(precision="float32"), t4).precision == "float32"
    with pytest.raises(ConfigError, match="devices=64: this machine has"):
        resolve(config.replace(devices="64"))


def test_crop_auto_keeps_celeba_faces_and_whole_images_elsewhere():
    assert crop(Config(image_size=64), is_celeba=True) == 108
    assert crop(Config(image_size=128), is_celeba=True) == 140
    assert crop(Config(image_size=128), is_celeba=False) == 0
    assert crop(Config(image_size=128, crop=90), is_celeba=True) == 90


def test_a_run_resolves_once_logs_once_and_records_every_setting(tiny_demo, monkeypatch, caplog):
    calls = []

    def counting(*args, **kwargs):
        calls.append(args)
        return resolve(*args, **kwargs)

    monkeypatch.setattr(dcgan.training.loop, "resolve", counting)
    with caplog.at_level("INFO", logger="dcgan.train"):
        dcgan.training.loop.train(tiny_demo, progress=False)
    assert len(calls) == 1
    recorded = json.loads((Path(tiny_demo.out_dir) / "environment.json").read_text())["resolved"]
    assert recorded == resolve(tiny_demo).as_dict()
    assert sum("precision float32, compiled step" in r.getMessage() for r in caplog.records) == 1


def test_only_settings_reads_the_auto_fields():
    """No other module of the package reads config.<an auto field>: they get Settings."""
    root = Path(dcgan.__file__).parent
    readers = {}
    for path in root.rglob("*.py"):
        if path.stem == "settings":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Attribute) and node.attr in AUTO_FIELDS
                    and isinstance(node.value, ast.Name) and node.value.id in ("config", "c")):
                readers.setdefault(path.stem, set()).add(node.attr)
    readers.pop("config", None)  # where the fields are declared and validated
    assert readers == {}
