"""dcgan: deep convolutional GANs that draw faces, in Keras 3.

The main entry points:

    from dcgan import Config, train, generate
    gan, history = train(Config.from_preset("demo", epochs=3, out_dir="runs/demo"))
    generate("runs/demo", n=64, seed=0, out="faces.png")
"""

from dcgan import quiet

quiet.install()  # before anything imports TensorFlow: its C++ start-up lines are not for users

from dcgan.config import PRESETS, Config  # noqa: E402
from dcgan.env import select_backend as use_backend  # noqa: E402  (call it before Keras loads)
from dcgan.errors import CheckpointError, ConfigError, DataError, DcganError  # noqa: E402

from dcgan.version import __version__  # noqa: E402

__all__ = ["Config", "PRESETS", "use_backend", "DcganError", "ConfigError", "DataError", "CheckpointError",
           "DCGAN", "build_generator", "build_discriminator", "train", "generate", "demo_faces",
           "project", "face_arithmetic", "learn_directions", "load_directions"]

_EDITING = {"project": "projection", "face_arithmetic": "arithmetic", "learn_directions": "directions",
            "load_directions": "directions"}


def __getattr__(name):
    # Keras/TensorFlow load only when a model-related name is first used,
    # so `import dcgan` and `python -m dcgan --help` stay fast.
    if name == "DCGAN":
        from dcgan.training.gan import DCGAN
        return DCGAN
    if name in ("build_generator", "build_discriminator"):
        from dcgan.models import architectures as models
        return getattr(models, name)
    if name == "train":
        from dcgan.training.loop import train
        return train
    if name == "generate":
        from dcgan.outputs.sampling import generate
        return generate
    if name == "notebook":  # notebooks saved before 0.9 import it from here
        from dcgan.apps import notebook
        return notebook
    if name == "demo_faces":
        from dcgan.data.demo_faces import demo_faces
        return demo_faces
    if name in _EDITING:  # a photo's latent, face arithmetic, attribute directions
        import importlib
        return getattr(importlib.import_module(f"dcgan.editing.{_EDITING[name]}"), name)
    raise AttributeError(f"module 'dcgan' has no attribute {name!r}")
