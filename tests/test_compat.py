"""What users of dcgan 0.8 have keeps working: its run folders load and resume, and the public
imports (and the notebook's) are where they were before the package moved into folders."""

import shutil
from pathlib import Path

import keras
import numpy as np
import pytest

RUN_0_8 = Path(__file__).parent / "data" / "run-0.8.0"  # made by dcgan 0.8.0 (spectral norm, EMA)


def test_the_public_imports_are_where_they_were():
    from dcgan import DCGAN, Config, generate, train  # noqa: F401
    from dcgan import build_discriminator, build_generator, demo_faces  # noqa: F401
    from dcgan import notebook  # notebooks saved before 0.9 import it from here
    from dcgan.apps import notebook as moved

    assert notebook is moved


@pytest.mark.parametrize("name", ["generator", "generator_ema", "discriminator"])
def test_keras_files_of_dcgan_0_8_load_in_safe_mode(name):
    model = keras.saving.load_model(RUN_0_8 / "checkpoints" / f"{name}.keras", compile=False,
                                    safe_mode=True)
    assert model.name == name
    if name == "discriminator":  # spectral norm: dcgan's own layer, found by its registered name
        assert any(type(layer).__name__ == "SpectralNorm" for layer in model.layers)


def test_a_run_of_dcgan_0_8_samples_and_resumes(tmp_path):
    from dcgan.config import Config
    from dcgan.outputs.sampling import generate
    from dcgan.training.loop import train

    run = tmp_path / "run"
    shutil.copytree(RUN_0_8, run)
    faces = generate(run, n=4, seed=1)
    assert faces.shape == (4, 16, 16, 3) and np.isfinite(faces).all()
    config = Config.from_json(run / "config.json").replace(out_dir=str(run), epochs=2)
    _, history = train(config, resume=True, progress=False)
    assert history.epoch == [1]
    assert (run / "checkpoints" / "ckpt-0002" / "state.npz").exists()
    assert [row.split(",")[0] for row in (run / "log.csv").read_text().splitlines()] == ["epoch", "1", "2"]
