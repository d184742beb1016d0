"""The notebook's latent-editing cells (`nb.directions`, `nb.project`, `nb.arithmetic`): one
call each around dcgan.editing, showing what it made.  They speak in one line, never a
traceback, where a run cannot do it yet (an untrained generator, no labels, no photos), so
*Run all* goes on past them."""

from __future__ import annotations

import os
from pathlib import Path

from dcgan.errors import DcganError


def _say_instead(error: DcganError) -> None:
    print(f"skipped: {error}")


def find_labels(run: str | os.PathLike) -> Path | None:
    """CelebA's attribute file near the run's data (Kaggle's download has list_attr_celeba.csv
    beside its image folder), or None."""
    from dcgan.outputs.folder import RunPaths, saved_config

    config, _ = saved_config(RunPaths(run), say=False)
    if config is None or config.data == "demo" or config.data.startswith("hf:"):
        return None
    data = Path(config.data)
    for folder in [data, *list(data.parents)[:3]]:
        for name in ("list_attr_celeba.csv", "list_attr_celeba.txt"):
            if (folder / name).is_file():
                return folder / name
    return None


def directions(run: str | os.PathLike, labels: str = "", images: int = 8192, samples: int | None = None):
    """Learn the run's named attribute directions (python -m dcgan directions) and print how
    well each was learned; `labels` empty: the demo faces' own, or CelebA's file found beside
    the data; `samples` (generated faces) default: twice `images`, as the command's defaults.
    Returns the Directions, or None (one line saying why)."""
    samples = samples or max(1024, 2 * images)
    from dcgan.editing.directions import learn_directions

    try:
        found = learn_directions(run, labels=labels or find_labels(run), images=images, samples=samples)
    except DcganError as e:
        _say_instead(e)
        return None
    for name in found.names:
        print(f"{name}: classifier {found.accuracy[name]:.0%} right on held-out photos; "
              f"slider ready")
    return found


def _example_photos(run: str | os.PathLike, count: int = 2) -> list[Path]:
    """For a demo-data run: a few demo faces it never trained on, as photo files."""
    from PIL import Image

    from dcgan.data.demo_faces import demo_faces
    from dcgan.outputs.folder import RunPaths, saved_config

    config, _ = saved_config(RunPaths(run), say=False)
    if config is None or config.data != "demo":
        return []
    faces = demo_faces(count, 64, first=config.demo_images)  # past the training set
    folder = Path(run) / "photos"
    folder.mkdir(exist_ok=True)
    paths = [folder / f"example-{i + 1}.png" for i in range(count)]
    for face, path in zip(faces, paths, strict=True):
        Image.fromarray(face).save(path)
    return paths


def photos_from(spec: str, upload: bool, run: str | os.PathLike) -> list[Path]:
    """The photos to project: uploaded (Colab's file picker), paths or a folder, or examples."""
    import sys

    if upload and "google.colab" in sys.modules:  # as nb.in_colab() tells it
        from google.colab import files  # type: ignore[import-not-found]

        folder = Path(run) / "photos"
        folder.mkdir(exist_ok=True)
        chosen = []
        for name, data in files.upload().items():
            (folder / Path(name).name).write_bytes(data)
            chosen.append(folder / Path(name).name)
        return chosen
    if spec.strip():
        paths = []
        for part in spec.split(","):
            path = Path(part.strip()).expanduser()
            paths += sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
        return paths
    return _example_photos(run)


def project(run: str | os.PathLike, photos: str = "", upload: bool = False, steps: int = 500) -> dict:
    """Project photos into the run's latent space and show each beside its reconstruction;
    return {name: latent file}, which `arithmetic` takes as terms and `explore` as starts."""
    from dcgan.editing.projection import ProjectionSettings
    from dcgan.editing.projection import project as project_photos
    from dcgan.outputs.images import show_image

    paths = photos_from(photos, upload, run)
    if not paths:
        print("no photos: set PHOTOS to a photo (or a folder of them), or tick UPLOAD in Colab")
        return {}
    try:
        summary = project_photos(run, paths, Path(run) / "projected", ProjectionSettings(steps=steps))
    except DcganError as e:
        _say_instead(e)
        return {}
    found = {}
    for photo in summary["photos"]:
        far = " (not found well: far from anything this run draws)" if photo["far"] else ""
        show_image(Path(run) / "projected" / f"{photo['name']}.png",
                   f"{photo['name']}: photo | found face, distance {photo['distance']:.3f}{far}")
        found[photo["name"]] = photo["latent"]
    print("latents: " + ", ".join(found) + " (terms for the arithmetic cell, starts for the explorer)")
    return found


def starts_of(projected: dict) -> dict:
    """{name: latent} for the explorer from `project`'s {name: latent file}."""
    import numpy as np

    return {name: np.load(path) for name, path in (projected or {}).items()}


def arithmetic(run: str | os.PathLike, expression: str, projected: dict | None = None):
    """Radford's arithmetic (`3,17,41 - 5,6,7 + 8,9,10`; projected photos by name) shown as
    his figure is; returns the result (dcgan.editing.arithmetic.ArithmeticResult) or None."""
    from dcgan.editing.arithmetic import face_arithmetic
    from dcgan.outputs.images import show_image

    out = Path(run) / "arithmetic.png"
    try:
        result = face_arithmetic(run, expression, defines=dict(projected or {}), out=out)
    except DcganError as e:
        _say_instead(e)
        return None
    show_image(out, f"{expression} = the last row")
    return result
