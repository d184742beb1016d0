"""Shared fixtures: tiny configurations so every test runs in seconds on a CPU."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pytest  # noqa: E402

from dcgan.config import Config  # noqa: E402


@pytest.fixture
def tiny_demo(tmp_path):
    """The demo preset shrunk to 16x16 images and narrow layers, without its R1 penalty (which
    test_r1_ada.py tests on every backend, and test_learning.py in the preset)."""
    return Config.from_preset("demo", image_size=16, g_widths=(32, 16), batch_size=16, r1_gamma=0.0,
                         demo_images=256, epochs=1, num_samples=16, out_dir=str(tmp_path / "run"))


@pytest.fixture
def tiny_seed(tmp_path):
    """The seed architecture (the seed128 layer stack) at 32x32 with narrow layers."""
    return Config.from_preset("seed128", image_size=32, seed_channels=8, g_transpose_widths=(8, 8, 8, 8),
                         g_conv_widths=(8, 8), d_widths=(8, 8, 8, 8, 8), batch_size=8,
                         demo_images=64, epochs=1, num_samples=4, out_dir=str(tmp_path / "run"))


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Decoded-image caches go to a temporary folder, never the user's ~/.cache."""
    os.environ["DCGAN_CACHE"] = str(tmp_path_factory.mktemp("dcgan-cache"))
