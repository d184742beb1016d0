"""One call per notebook cell: environment report, Drive, data, models, training, results.

The notebook in notebooks/ only sets parameters and calls these; nothing here is needed
outside a notebook, and everything works in a plain Jupyter kernel too (the Colab-only
branches are skipped).  Imported inside a kernel, this module also makes dcgan speak
there as on a terminal: its log lines (resume point, settings chosen, skipped files)
appear under the cell, and an error of the user's making is one line naming the form
field to change, not a traceback.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from pathlib import Path

from dcgan.config import Config, comma_list
from dcgan.data.pipeline import load_real_images
from dcgan.data.download import CELEBA_LICENCE, download_celeba
from dcgan.env import environment, in_notebook
from dcgan.errors import DataError, DcganError
from dcgan.hardware import local_accelerator
from dcgan import settings
from dcgan.data.hub import CELEBA_HUB_ID
from dcgan.outputs.images import save_grid, show_image
from dcgan.models.architectures import build_discriminator, build_generator, count_macs
from dcgan.outputs.folder import IF_EXISTS, RunPaths, next_free_folder
from dcgan.outputs.sampling import generate, interpolate
from dcgan.apps import notebook_editing as _editing

log = logging.getLogger("dcgan")
DRIVE_MOUNT = "/content/drive"
_last_run: str | None = None  # the folder nb.train used last in this kernel
_licence_shown = False
_celeba_found: dict[str, str] = {}  # where "celeba" was found in this kernel, by folder


# ------------------------------------------------------------- speaking in the notebook
def notebook_words(message: str) -> str:
    """A CLI-worded error in the notebook's words: `--d-learning-rate` and `config field
    d_learning_rate=...` become the form field D_LEARNING_RATE where the form has one."""
    def field(name: str) -> str | None:
        upper = name.replace("-", "_").upper()
        return upper if upper in FORM_FIELDS else None

    message = re.sub(r"config field (\w+)=", lambda m: f"{field(m[1])} = " if field(m[1])
                     else m[0], message)
    message = re.sub(r"--out\b", "RUN_NAME", message)
    return re.sub(r"--([a-z][a-z0-9-]*)", lambda m: field(m[1]) or m[0], message)


# The notebook form's fields (notebooks/make_notebook.py), for naming them in errors.
FORM_FIELDS = {"PRESET", "DATA", "IMAGE_SIZE", "LATENT_DIM", "BATCH_SIZE", "D_LEARNING_RATE",
               "G_LEARNING_RATE", "LABEL_NOISE", "EPOCHS", "STEPS_PER_EPOCH", "RUN_NAME", "SEED",
               "PRECISION", "IF_RUN_EXISTS", "USE_DRIVE", "BACKEND", "MINUTES", "SAMPLE_MINUTES",
               "CHECKPOINT_MINUTES", "TAKE_HOME"}


def _one_line_error(shell, kind, value, traceback, tb_offset=None):
    """IPython's handler for DcganError: one line on stderr; the cell still fails, so Run all
    stops there."""
    print(f"error: {notebook_words(str(value))}", file=sys.stderr)  # IPython shows no more


def attach_to_kernel() -> None:
    """Show dcgan's log lines under the cells and its errors as one line (idempotent)."""
    logger = logging.getLogger("dcgan")
    if not any(getattr(h, "_dcgan_notebook", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._dcgan_notebook = True
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    from IPython import get_ipython  # only called inside a kernel

    shell = get_ipython()
    if shell is not None:
        shell.set_custom_exc((DcganError,), _one_line_error)


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
    info["auto_precision"] = settings.precision("auto", accelerator)
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


def output_root(use_drive: bool = True, drive_folder: str = "dcgan", local: str = "runs",
                mount_point: str = DRIVE_MOUNT) -> str:
    """Where runs go: a Google Drive folder in Colab when asked (survives disconnects), else `local`.

    Only checkpoints, grids and logs go there; images and the decoded-image cache stay on the
    local disk (Drive times out on folders of many thousands of files).
    """
    if not use_drive:
        return local
    if not in_colab():
        print(f"runs go to the local folder '{local}' (Google Drive is a Colab thing)")
        return local
    from google.colab import drive  # exists only in Colab

    try:  # asks the user to authorise Drive once per session; nobody may be there to answer
        drive.mount(mount_point)
        root = Path(mount_point) / "MyDrive" / drive_folder
        root.mkdir(parents=True, exist_ok=True)
    except Exception as e:  # a timed-out consent dialog, a refusal, Drive down: go on (Run all)
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"WARNING: Google Drive did not mount ({reason}); runs go to this runtime's disk, "
              f"'{local}', which a runtime reset deletes. Run this cell again to use Drive.")
        return local
    print(f"runs (checkpoints, grids, logs) go to Google Drive: {root}")
    return str(root)


def prepare_data(source: str, preset: str = "seed128", local_folder: str = "data/celeba") -> str:
    """Resolve the notebook's DATA choice to a `--data` value: "demo", "celeba", "hf:ORG/NAME",
    or a path (folder, archive, parquet).

    "celeba" tries Kaggle (anonymously, or with the KAGGLE_API_TOKEN secret), then the
    token-free Hugging Face Hub mirror; if both fail it stops with one line saying what
    to do.  It never trains another preset on the demo faces instead: only the demo
    preset falls back to them.
    """
    global _licence_shown
    if source != "celeba":
        return source
    if not _licence_shown:
        print(CELEBA_LICENCE)
        _licence_shown = True
    key = str(Path(local_folder).resolve())
    if key in _celeba_found:  # a re-run of the cell: ask nobody again
        return _celeba_found[key]
    try:
        _celeba_found[key] = str(download_celeba(local_folder, progress=True))
        return _celeba_found[key]
    except DcganError as kaggle_error:
        print(f"Kaggle: {kaggle_error}\ntrying the Hugging Face Hub's copy instead "
              f"(hf:{CELEBA_HUB_ID}, 1.4 GB, no account needed)")
        kaggle = str(kaggle_error)
    try:
        from dcgan.data.sources import open_source

        open_source(f"hf:{CELEBA_HUB_ID}")  # downloads once; training reads the same files
        _celeba_found[key] = f"hf:{CELEBA_HUB_ID}"
        return _celeba_found[key]
    except DcganError as hub_error:
        hub = str(hub_error)
    if preset == "demo":
        print("CelebA is not available; the demo preset trains on the built-in demo faces")
        return "demo"
    raise DataError(f"CelebA could not be fetched (Kaggle: {kaggle.split(';')[0]}; Hub: "
                    f"{hub.split(';')[0]}); add the KAGGLE_API_TOKEN secret, check the "
                    'connection, or set DATA to your own images (or "demo")')


# Form values that mean themselves even at 0 (0 steps: one pass; 0 minutes: off).
_ZERO_MEANS_ITSELF = ("steps_per_epoch", "seed", "minutes", "sample_minutes", "checkpoint_minutes")


def make_config(preset: str, **values) -> Config:
    """The preset with the notebook's form values applied; 0 (or -1 for label_noise) keeps the
    preset's own value, so switching presets never needs other edits.  Prints the values the
    form's fields resolved to (what "0 = the preset's value" became)."""
    keep = {name: -1 if name == "label_noise" else 0 for name in values}
    changes = {k: v for k, v in values.items() if v != keep[k] or k in _ZERO_MEANS_ITSELF}
    config = Config.from_preset(preset, **changes)
    shown = [name for name in values if name not in ("data", "out_dir")]
    print(f"{preset}: " + ", ".join(
        f"{name.upper()} = {getattr(config, name)!r}" + ("" if name in changes else " (preset)")
        for name in shown))
    return config


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


def train(config: Config, if_exists: str = "resume") -> str:
    """Train `config` in its run folder, with a live view; return the folder used.

    `if_exists` (the form's IF_RUN_EXISTS) says what to do when the folder holds a run:
    "resume" it as saved, "resume_changed" with these settings (printing what changed),
    start a "new_run" beside it (RUN_NAME-2, -3, ...), or "overwrite" it."""
    global _last_run
    from dcgan.training.loop import train as train_run  # lazy: Keras

    if if_exists not in IF_EXISTS:
        raise DcganError(f"IF_RUN_EXISTS = {if_exists!r}: choose one of {', '.join(IF_EXISTS)}")
    if if_exists == "new_run":
        folder = str(next_free_folder(config.out_dir))
        if folder != config.out_dir:
            print(f"{config.out_dir} holds a run; this new one goes to {folder}")
        config = config.replace(out_dir=folder)
    warning = drive_warning(config.out_dir, in_colab())
    if warning:
        print(warning)
    _last_run = config.out_dir
    train_run(config, if_exists=if_exists, live_view=True)
    return config.out_dir


def drive_warning(out_dir: str, colab: bool) -> str | None:
    """What to tell a Colab user whose run folder a runtime reset would delete; else None."""
    if not colab or Path(out_dir).resolve().is_relative_to(DRIVE_MOUNT):
        return None
    return (f"WARNING: {out_dir} is on this runtime's disk: a disconnect or runtime reset "
            "deletes the run and its checkpoints. Set USE_DRIVE = True to keep it on Google Drive.")


def run_folder(out_root: str, run_name: str) -> str:
    """The run to show: the one nb.train used last in this kernel (a new_run may have
    numbered it RUN_NAME-2), else OUT_ROOT/RUN_NAME (e.g. in a fresh runtime)."""
    default = Path(out_root) / run_name
    if _last_run and Path(_last_run).parent == default.parent and (
            Path(_last_run).name == run_name or Path(_last_run).name.startswith(f"{run_name}-")):
        return _last_run
    return str(default)


def show_results(run: str | os.PathLike, n: int = 64, seed_from: int = 3, seed_to: int = 7,
                 best: bool = True) -> dict:
    """Loss curves, the progress GIF, a fresh grid and an interpolation; return their paths.

    The faces come from the best-scoring generator the run kept (checkpoints/best/) when
    there is one and `best`, else from the last.  Needs only the run folder (no data), so
    it works in a fresh runtime; the inline GIF is a small copy (progress_preview.gif: a
    dozen frames at most, 384 px), the full one stays on disk."""
    from dcgan.evaluation.best import read_best

    from IPython.display import Image as IPythonImage  # only inside a notebook kernel
    from IPython.display import display

    from dcgan.outputs.plots import progress_preview

    paths = RunPaths(run)
    if not paths.export("generator").exists():
        raise DcganError(f"{paths.root}: no trained generator there yet (RUN_NAME and USE_DRIVE "
                         "name the run; train it first)")
    files = {"losses": paths.losses_plot, "progress": paths.progress_preview,
             "faces": paths.faces, "walk": paths.walk}
    record = read_best(paths) if best else None
    if record:
        floor = f", real-vs-real {record['floor']:.3f}" if record.get("floor") is not None else ""
        print(f"faces from the best generator: epoch {record['epoch']} "
              f"({record['metric'].upper()} {record['value']:.3f}{floor})")
    generate(run, n=n, seed=0, out=files["faces"], best=bool(record))
    interpolate(run, seed_from, seed_to, steps=8, out=files["walk"], best=bool(record))
    for name in ("losses", "faces", "walk"):
        if files[name].exists():
            show_image(files[name], name)
    if progress_preview(paths.epoch_grids(), files["progress"]):
        display(IPythonImage(filename=str(files["progress"])))
    folder = paths.best if record else paths.checkpoints
    generator = next((p for p in (folder / "generator_ema.keras", folder / "generator.keras")
                      if p.exists()), None)
    print(f"saved generator: {generator}\nrun folder: {paths.root}")
    return {k: str(v) for k, v in files.items()}


# ------------------------------------------------------------- looking at a trained run
def explore(run: str | os.PathLike, directions: int = 32, starts: dict | None = None):
    """The latent explorer (seed, walk, truncation, one slider per direction, named where the run
    has attribute directions); `starts`: `project`'s {name: latent file}, offered as starting
    faces.  See dcgan.apps.widgets."""
    from dcgan.apps.notebook_editing import starts_of
    from dcgan.apps.widgets import explore as show_explorer

    return show_explorer(run, directions, starts_of(starts))


def compare(run: str | os.PathLike, other: str = "", epoch: int = 0) -> str | None:
    """`run` beside `other` (a run folder, or a run's name beside `run`): both grids at one
    epoch (0: the latest both have), their loss curves and the settings that differ; shown and
    saved as compare.png in `run`; return its path.  Without `other`, one line naming the runs
    there are to compare with."""
    from dcgan.apps.compare import compare_runs

    root = Path(run).parent
    if not other:
        others = sorted(p.parent.name for p in root.glob("*/config.json")
                        if p.parent.resolve() != Path(run).resolve())
        print("COMPARE_WITH: name another run to compare with"
              + (f" (beside this one: {', '.join(others)})" if others else " (none beside this one yet)"))
        return None
    other_path = Path(other) if ("/" in str(other) or Path(other).is_absolute()) else root / other
    out = compare_runs(run, other_path, epoch or None, out=Path(run) / "compare.png")
    show_image(out, None)
    return str(out)


def nearest(run: str | os.PathLike, n: int = 6, k: int = 5, best: bool = True) -> str:
    """Generated faces beside their nearest training images (is it copying?); return the PNG."""
    from dcgan.evaluation.best import read_best
    from dcgan.evaluation.nearest import nearest_faces

    out = RunPaths(run).root / "nearest.png"
    found = nearest_faces(run, n=n, k=k, out=out, best=best and read_best(RunPaths(run)) is not None)
    show_image(out, "each row: a generated face, then its nearest training images")
    print("nearest distances (RMS, images in [-1, 1]; near 0 = a copy): "
          + " ".join(f"{d:.3f}" for d in found.distances[:, 0]))
    return str(out)


def score(run: str | os.PathLike, metrics: str = "fid,kid", n: int = 10_000, best: bool = True) -> dict:
    """FID/KID (the standard FID Inception, downloaded once) or SWD of the best (or last)
    generator against the run's data, each beside its real-vs-real floor; return the results."""
    from dcgan.evaluation.best import read_best
    from dcgan.evaluation.scoring import evaluate, summary

    use_best = best and read_best(RunPaths(run)) is not None
    names = comma_list(metrics)
    print(f"scoring the {'best' if use_best else 'last'} generator of {run}: {', '.join(names)} "
          f"on {n} generated and {n} real images ...", flush=True)
    results = evaluate(run, metrics=names, n=n, best=use_best)
    print(summary(results))
    return results


def take_home(run: str | os.PathLike, download: bool = False) -> str | None:
    """With `download` (the form's TAKE_HOME box), zip the run's generators, grids, GIF, log
    and config (dcgan.apps.export) and offer the zip for download on Colab, a link elsewhere;
    return its path.  Without it, one line and nothing built (Run all downloads nothing)."""
    from dcgan.apps.export import export_members, export_run

    if not download:
        print("TAKE_HOME is off: tick it and run this cell to zip the run and download it")
        return None
    out = export_run(run)
    print(f"{out}: {len(export_members(run))} files, {out.stat().st_size / 1e6:.1f} MB")
    if in_colab():
        from google.colab import files  # type: ignore[import-not-found]

        files.download(str(out))
    else:
        from IPython.display import FileLink, display

        display(FileLink(str(out)))
    return str(out)


def load_pretrained(name_or_url: str, n: int = 16) -> str:
    """Fetch a released generator (a name or an http(s) URL of a .keras file, `#sha256=HEX`
    checked; downloaded once, loaded safely) and show `n` of its faces; return its local path,
    which explore/share take, and which `init_from` fine-tunes from."""
    from dcgan.outputs.sampling import load_pretrained as fetch_and_load

    _, path = fetch_and_load(name_or_url)
    out = Path(path).with_name("faces.png")
    generate(path, n=n, seed=0, out=out)
    show_image(out, f"faces from {name_or_url}")
    return str(path)


def share(run: str | os.PathLike, port: int = 0):
    """Serve the run's web page (dcgan.apps.serve) from this kernel and show it: inline (and with a
    link through Colab's proxy) on Colab, as an inline frame elsewhere; return (server, url)."""
    from dcgan.apps.serve import serve_in_background

    server, url = serve_in_background(run, port=port)
    port = server.server_address[1]
    if in_colab():
        from google.colab import output  # type: ignore[import-not-found]

        url = output.eval_js(f"google.colab.kernel.proxyPort({port})")
        output.serve_kernel_port_as_iframe(port, height=720)
    else:
        from IPython.display import IFrame, display

        display(IFrame(url, width="100%", height=720))
    print(f"the page: {url} (served by this notebook's kernel while it runs)")
    return server, url


# The latent-editing cells (dcgan.apps.notebook_editing): nb.directions, nb.project, nb.arithmetic.
directions, project, arithmetic = _editing.directions, _editing.project, _editing.arithmetic

if in_notebook():
    attach_to_kernel()
