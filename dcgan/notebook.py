"""One call per notebook cell: environment report, Drive, data, models, results.

The notebook in notebooks/ only sets parameters and calls these (and
dcgan.train); nothing here is needed outside a notebook, and everything
works in a plain Jupyter kernel too (the Colab-only branches are skipped).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from dcgan.config import Config
from dcgan.data import load_real_images
from dcgan.download import download_celeba
from dcgan.env import environment
from dcgan.errors import DcganError
from dcgan.hardware import local_accelerator, precision_for
from dcgan.images import save_grid, show_image
from dcgan.models import build_discriminator, build_generator, count_macs
from dcgan.run import RunPaths
from dcgan.sampling import generate, interpolate

log = logging.getLogger("dcgan")


def in_colab() -> bool:
    return "google.colab" in sys.modules


def report_environment() -> dict:
    """Print Python/Keras/backend versions, the device and the precision `auto` picks on it;
    warn clearly when there is no GPU."""
    info = environment()
    backend = info["backend"]
    print(f"Python {info['python']}, Keras {info['keras']} on {backend} "
          f"{info.get(backend, '')}, device: {info['device']}")
    accelerator = local_accelerator(backend)
    info["auto_precision"] = precision_for(accelerator)
    print(f"precision \"auto\" trains in {info['auto_precision']} here ({accelerator.name})")
    advice = gpu_advice(info["device"], in_colab())
    if advice:
        print(advice)
    return info


def gpu_advice(device: str, colab: bool) -> str | None:
    """What to tell a user whose `device` (as `environment()` names it) is not a GPU; else None."""
    if device.startswith("GPU"):
        return None
    if colab:
        return ("WARNING: no GPU attached; training seed128/dcgan64 on a CPU takes days. In Colab: "
                "Runtime > Change runtime type > GPU (e.g. T4), then Runtime > Run all again. "
                "The demo preset is fine on a CPU.")
    return "Note: no GPU found; use the demo preset or a machine with a GPU."


def output_root(use_drive: bool, drive_folder: str = "dcgan", local: str = "runs",
                mount_point: str = "/content/drive") -> str:
    """Where runs go: a Google Drive folder in Colab when asked (survives disconnects), else `local`.

    Only checkpoints, grids and logs go there; images and the decoded-image cache stay on the
    local disk (Drive times out on folders of many thousands of files).
    """
    if not use_drive:
        return local
    if not in_colab():
        print("USE_DRIVE is on but this is not Colab; writing runs to the local folder "
              f"'{local}' instead")
        return local
    from google.colab import drive  # exists only in Colab

    drive.mount(mount_point)  # asks the user to authorise Drive once per session
    root = Path(mount_point) / "MyDrive" / drive_folder
    root.mkdir(parents=True, exist_ok=True)
    print(f"runs (checkpoints, grids, logs) go to Google Drive: {root}")
    return str(root)


def prepare_data(source: str, local_folder: str = "data/celeba", fallback_to_demo: bool = True) -> str:
    """Resolve the notebook's DATA choice to a `--data` value: 'demo', 'celeba' or a path/archive.

    'celeba' downloads through kagglehub (once; re-runs skip it). If that fails and
    `fallback_to_demo`, the built-in demo faces are used instead, with the reason printed.
    """
    if source == "demo":
        return "demo"
    if source != "celeba":
        return source
    try:
        return str(download_celeba(local_folder, progress=True))
    except DcganError as e:
        if not fallback_to_demo:
            raise
        print(f"CelebA is not available ({e}).\nFalling back to the built-in demo faces.")
        return "demo"


def make_config(preset: str, **values) -> Config:
    """The preset with the notebook's form values applied; 0 (or -1 for label_noise) keeps the
    preset's own value, so switching presets never needs other edits."""
    keep = {name: -1 if name == "label_noise" else 0 for name in values}
    changes = {k: v for k, v in values.items() if v != keep[k] or k in ("steps_per_epoch", "seed")}
    return Config.from_preset(preset, **changes)


def show_real_images(config: Config, n: int = 64) -> None:
    """A grid of training images, as the model will see them (cropped and resized)."""
    path = RunPaths(config.out_dir).real_preview
    path.parent.mkdir(parents=True, exist_ok=True)
    save_grid(path, load_real_images(config, n))
    show_image(path, f"training images: {config.data}")


def show_models(config: Config) -> None:
    """Keras summaries of the generator and the discriminator."""
    for model in (build_generator(config), build_discriminator(config)):
        model.summary()
        print(f"{model.name}: {count_macs(model) / 1e9:.3f} GMAC per image\n")


def show_results(run: str | os.PathLike, n: int = 64, seed_from: int = 3, seed_to: int = 7) -> dict:
    """Loss curves, the progress GIF, a fresh grid and an interpolation; return their paths."""
    from IPython.display import Image as IPythonImage  # only inside a notebook kernel
    from IPython.display import display

    paths = RunPaths(run)
    files = {"losses": paths.losses_plot, "progress": paths.progress_gif,
             "faces": paths.faces, "walk": paths.walk}
    generate(run, n=n, seed=0, out=files["faces"])
    interpolate(run, seed_from, seed_to, steps=8, out=files["walk"])
    for name in ("losses", "faces", "walk"):
        show_image(files[name], name)
    if files["progress"].exists():
        display(IPythonImage(filename=str(files["progress"])))
    generator = next((p for p in (paths.export("generator_ema"), paths.export("generator"))
                      if p.exists()), None)
    print(f"saved generator: {generator}\nrun folder: {paths.root}")
    return {k: str(v) for k, v in files.items()}
