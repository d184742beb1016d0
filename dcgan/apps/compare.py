"""Two runs side by side: what a tweak did.

    python -m dcgan compare runs/a runs/b [--epoch N] --out compare.png

One picture: both runs' sample grids at the same epoch (each run draws its grids from fixed
latents, `samples/latents.npy`; runs with the same latent size and seed share them, and the
caption says whether they do), both runs' loss curves on one plot (solid: A, dashed: B), and
the settings that differ as the caption.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from PIL import Image

from dcgan.config import Config
from dcgan.errors import DcganError
from dcgan.io import atomic_write_bytes
from dcgan.outputs.folder import RunPaths

_EPOCH_GRID = re.compile(r"^epoch_(\d+)\.png$")
# Fields that name where a run lives, not how it trains.
_NOT_SETTINGS = {"out_dir", "cache_dir"}


def grid_epochs(run: str | Path) -> list[int]:
    """The epochs `run` has a sample grid for (0: the untrained generator)."""
    return [int(m.group(1)) for p in RunPaths(run).epoch_grids() if (m := _EPOCH_GRID.match(p.name))]


def config_difference(a: Config, b: Config) -> list[tuple[str, object, object]]:
    """(field, value in a, value in b) for every setting the two configs do not share."""
    first, second = a.to_dict(), b.to_dict()
    return [(name, first[name], second.get(name)) for name in first
            if name not in _NOT_SETTINGS and first[name] != second.get(name)]


def _read_config(run: str | Path) -> Config:
    path = RunPaths(run).config
    if not path.is_file():
        raise DcganError(f"{run}: not a run folder (no config.json); give folders a training run wrote")
    return Config.from_json(path)


def _log_rows(run: str | Path) -> list[dict]:
    path = RunPaths(run).log
    if not path.is_file():
        return []
    with open(path, encoding="utf-8") as f:
        return [row for row in csv.DictReader(f) if row.get("epoch")]


def common_epoch(run_a: str | Path, run_b: str | Path, epoch: int | None = None) -> int:
    """`epoch` if both runs have its grid (one line naming what they have, if not); else the
    latest epoch both have."""
    have_a, have_b = grid_epochs(run_a), grid_epochs(run_b)
    for run, have in ((run_a, have_a), (run_b, have_b)):
        if not have:
            raise DcganError(f"{run}: no sample grids yet (samples/epoch_NNN.png); train it first")
        if epoch is not None and epoch not in have:
            raise DcganError(f"--epoch {epoch}: {run} has grids for epochs {min(have)}-{max(have)} "
                             "only; pick one both runs have")
    if epoch is not None:
        return epoch
    shared = sorted(set(have_a) & set(have_b))
    if not shared:
        raise DcganError(f"{run_a} and {run_b} have no epoch in common; pick --epoch")
    return shared[-1]


def same_latents(run_a: str | Path, run_b: str | Path) -> bool:
    files = [RunPaths(run).latents for run in (run_a, run_b)]
    if not all(f.is_file() for f in files):
        return False
    a, b = (np.load(f) for f in files)
    return a.shape == b.shape and np.array_equal(a, b)


def compare_figure(run_a: str | Path, run_b: str | Path, epoch: int | None = None) -> Figure:
    """The comparison picture (see the module docstring)."""
    config_a, config_b = _read_config(run_a), _read_config(run_b)
    epoch = common_epoch(run_a, run_b, epoch)
    names = [Path(run).resolve().name for run in (run_a, run_b)]
    if names[0] == names[1]:
        names = [str(run_a), str(run_b)]
    figure = Figure(figsize=(11, 8.5), layout="constrained")
    top, bottom = figure.subfigures(2, 1, height_ratios=[2, 1])
    for axes, run, name, letter in zip(top.subplots(1, 2), (run_a, run_b), names, "AB", strict=True):
        with Image.open(RunPaths(run).epoch_grid(epoch)) as grid:
            axes.imshow(np.asarray(grid.convert("RGB")))
        axes.set_title(f"{letter}: {name}, epoch {epoch}")
        axes.axis("off")
    curves = bottom.subplots(1, 1)
    for run, name, style in zip((run_a, run_b), names, ("-", "--"), strict=True):
        rows = _log_rows(run)
        epochs = [int(r["epoch"]) for r in rows]
        for key, colour in (("d_loss", "tab:blue"), ("g_loss", "tab:orange")):
            values = [float(r[key]) if r.get(key) else np.nan for r in rows]
            curves.plot(epochs, values, style, marker="o", markersize=3, color=colour,
                        label=f"{key} {name}")  # markers: a one-epoch run is a point
    curves.axvline(epoch, color="grey", alpha=0.4)
    curves.set_xlabel("epoch")
    curves.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    curves.set_xlim(0.5, max(epoch, *(int(r["epoch"]) for run in (run_a, run_b) for r in _log_rows(run))) + 0.5)
    curves.legend(fontsize=8, ncol=2)
    curves.grid(alpha=0.3)
    figure.suptitle(caption(config_a, config_b, same_latents(run_a, run_b)), fontsize=9,
                    wrap=True)
    return figure


def caption(config_a: Config, config_b: Config, shared_latents: bool) -> str:
    """The settings that differ, 'field: A -> B', and whether the grids share their latents."""
    differences = config_difference(config_a, config_b)
    text = ("; ".join(f"{name}: {a} -> {b}" for name, a, b in differences)
            if differences else "same settings")
    return text + ("  (same latents)" if shared_latents else "  (different latents: the grids "
                                                              "do not show the same faces)")


def compare_runs(run_a: str | Path, run_b: str | Path, epoch: int | None = None,
                 out: str | Path = "compare.png") -> Path:
    """Save the comparison of two runs as a PNG at `out`; return its path."""
    if Path(out).suffix.lower() != ".png":
        raise DcganError(f"--out {out}: must be a .png file")
    figure = compare_figure(run_a, run_b, epoch)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    atomic_write_bytes(out, buffer.getvalue())
    return Path(out)
