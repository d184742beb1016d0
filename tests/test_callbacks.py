import numpy as np
from PIL import Image

from dcgan.training.callbacks import Checkpointer, SampleGrid
from dcgan.env import in_notebook
from dcgan.data.pipeline import make_dataset
from dcgan.outputs.sampling import generate_images
from dcgan.outputs.images import make_grid
from dcgan.outputs.folder import RunPaths
from dcgan.training.loop import build_gan


def test_grids_use_fixed_latents_and_checkpoints_are_written(tiny_demo, tmp_path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    dataset, _ = make_dataset(tiny_demo)
    gan = build_gan(tiny_demo)
    latents = np.random.default_rng(0).standard_normal((4, tiny_demo.latent_dim)).astype("float32")
    real = np.zeros((4, 16, 16, 3), np.uint8)
    paths = RunPaths(tmp_path)
    grid = SampleGrid(paths, latents, real, show=True)  # show: the notebook path
    gan.fit(dataset, epochs=2, steps_per_epoch=2, verbose=0,
            callbacks=[grid, Checkpointer(paths, tiny_demo.replace(epochs=2), latents)])
    names = sorted(p.name for p in (tmp_path / "samples").iterdir())
    assert names == ["epoch_000.png", "epoch_001.png", "epoch_002.png", "real.png"]
    # The last grid is exactly the generator's output for the stored latents.
    np.testing.assert_array_equal(np.asarray(Image.open(grid.last_path)),
                                  make_grid(generate_images(gan.sampling_generator, latents)))
    assert sorted(p.name for p in paths.checkpoints.iterdir()) == [
        "ckpt-0001", "ckpt-0002", "discriminator.keras", "generator.keras", "generator_ema.keras"]


def test_not_a_notebook_under_pytest():
    assert in_notebook() is False
