"""Attribute labels for images, in CelebA's `list_attr_celeba` layout: one row per image, its
file name first, then one column per attribute holding +1 (has it) or -1 (does not).

    image_id,Smiling,Mouth_Open,...
    000001.jpg,1,-1,...

Kaggle's CelebA ships it as `list_attr_celeba.csv`; the original `list_attr_celeba.txt` (a count
line, a header of names, then whitespace-separated rows) reads the same.  The built-in demo
faces carry theirs (`demo_labelled_images`; `python -m dcgan download demo` writes them beside
the images), so attribute directions work and are tested without CelebA.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from dcgan.errors import DataError

LABELS_NAME = "list_attr_celeba.csv"


@dataclass
class Labels:
    """`names` of the attributes; `files` (basenames); `values` int8 (files, names) of +1/-1."""

    names: list[str]
    files: list[str]
    values: np.ndarray


def read_labels(path: str | Path) -> Labels:
    """Read a labels file (see the module docstring); DataError, one line, for what is wrong."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"{path}: no such labels file (CelebA's list_attr_celeba.csv layout)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot be read as a text labels file ({e})") from None
    rows, is_csv = _rows(text)
    if rows and len(rows[0]) == 1 and rows[0][0].isdigit():  # list_attr_celeba.txt's count line
        rows = rows[1:]
    if len(rows) < 2:
        raise DataError(f"{path}: needs a header line and at least one image's row")
    header, body = rows[0], rows[1:]
    if not is_csv and len(body[0]) == len(header) + 1:  # the .txt header names attributes only
        header = ["image_id", *header]
    names = header[1:]
    if not names:
        raise DataError(f"{path}: no attribute columns after the file name column")
    values = np.empty((len(body), len(names)), np.int8)
    for i, row in enumerate(body):
        if len(row) != len(header):
            raise DataError(f"{path}: line {i + 2} has {len(row)} fields, the header {len(header)}")
        try:
            numbers = [int(float(v)) for v in row[1:]]
        except ValueError:
            raise DataError(f"{path}: line {i + 2}: attribute values must be 1 or -1 (or 0)") from None
        if any(v not in (-1, 0, 1) for v in numbers):
            raise DataError(f"{path}: line {i + 2}: attribute values must be 1 or -1 (or 0)")
        values[i] = [1 if v > 0 else -1 for v in numbers]  # 0/1 files: 0 means "does not"
    files = [PurePosixPath(row[0].replace("\\", "/")).name for row in body]
    return Labels(names, files, values)


def _rows(text: str) -> tuple[list[list[str]], bool]:
    """(rows of fields, whether the file is comma-separated)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if lines and "," in lines[min(1, len(lines) - 1)]:
        return [[cell.strip() for cell in row] for row in csv.reader(io.StringIO("\n".join(lines)))], True
    return [line.split() for line in lines], False


def check_attributes(labels: Labels, wanted: list[str] | None, where: str) -> list[str]:
    """The attribute names to use: `wanted` (all when None), each present and not all one value
    in `labels`; DataError, one line, naming the first that is not."""
    names = labels.names if wanted is None else wanted
    for name in names:
        if name not in labels.names:
            raise DataError(f"{where}: no attribute {name!r}; it has {', '.join(labels.names)}")
    usable = []
    for name in names:
        column = labels.values[:, labels.names.index(name)]
        if np.all(column == column[0]):
            if wanted is not None:
                raise DataError(f"{where}: attribute {name!r} is {int(column[0]):+d} for every "
                                "image; a direction needs images with and without it")
            continue  # asked for all: skip the constant ones, say so at the caller
        usable.append(name)
    if not usable:
        raise DataError(f"{where}: every attribute column is all one value; nothing to learn from")
    return usable


def write_labels(path: str | Path, names: list[str], files: list[str], values: np.ndarray) -> Path:
    """Write a labels file in Kaggle's list_attr_celeba.csv layout."""
    from dcgan.io import atomic_write_text

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["image_id", *names])
    writer.writerows([file, *map(int, row)] for file, row in zip(files, values, strict=True))
    atomic_write_text(Path(path), out.getvalue())
    return Path(path)


def demo_labelled_images(n: int, size: int, seed: int = 0) -> tuple[np.ndarray, Labels]:
    """The first `n` demo faces at `size` with their drawing attributes (demo_attributes)."""
    from dcgan.data.demo_faces import demo_attributes, demo_faces

    names, values = demo_attributes(n, seed)
    return demo_faces(n, size, seed), Labels(names, [f"{i + 1:06d}.png" for i in range(n)], values)


def write_demo_folder(folder: str | Path, n: int = 2048, size: int = 64) -> Path:
    """The demo faces as PNG files (000001.png, ...) plus their list_attr_celeba.csv: a small
    labelled data set in CelebA's layout, for `train --data FOLDER` and `directions --labels`."""
    from PIL import Image

    from dcgan.data.pipeline import DEMO_DATA_SEED

    folder = Path(folder)
    images, labels = demo_labelled_images(n, size, DEMO_DATA_SEED)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    for image, name in zip(images, labels.files, strict=True):
        Image.fromarray(image).save(folder / "images" / name)
    return write_labels(folder / LABELS_NAME, labels.names, labels.files, labels.values)
