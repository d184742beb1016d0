"""Writes dcgan_celeba.ipynb from the cells below (run it after editing; outputs stay empty).

    python notebooks/make_notebook.py                # regenerate the notebook
    python notebooks/make_notebook.py --repo URL     # point badges and installs at the repository

The repository's address lives in pyproject.toml ([project.urls] Repository); the notebook's
install cell and the "Open in Colab" badges (here, README.md, notebooks/README.md) follow it.
"""

import argparse
import re
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "dcgan_celeba.ipynb"
BADGE_FILES = ("README.md", "notebooks/README.md")  # relative to the repository root
_REPOSITORY_LINE = re.compile(r'^Repository = "(?P<url>[^"]+)"$', re.M)
_COLAB_LINK = re.compile(r"https://colab\.research\.google\.com/github/[^/\s]+/[^/\s]+/blob/")


def repository_url(root: Path = ROOT) -> str:
    """The repository's https address, from pyproject.toml."""
    match = _REPOSITORY_LINE.search((root / "pyproject.toml").read_text(encoding="utf-8"))
    if not match:
        raise SystemExit("pyproject.toml has no [project.urls] Repository line")
    return match["url"]


def colab_link(url: str) -> str:
    owner_and_name = url.removeprefix("https://github.com/").removesuffix(".git").strip("/")
    return f"https://colab.research.google.com/github/{owner_and_name}/blob/"


def set_repository(url: str, root: Path = ROOT) -> None:
    """Point pyproject.toml and every Colab badge at `url` (https://github.com/NAME/REPO)."""
    if not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url.rstrip("/")):
        raise SystemExit(f"--repo {url}: expected https://github.com/NAME/REPO")
    url = url.rstrip("/")
    pyproject = root / "pyproject.toml"
    pyproject.write_text(_REPOSITORY_LINE.sub(f'Repository = "{url}"', pyproject.read_text()))
    for path in (root / name for name in BADGE_FILES):
        path.write_text(_COLAB_LINK.sub(colab_link(url), path.read_text(encoding="utf-8")),
                        encoding="utf-8")


def badge(url: str) -> str:
    return ("[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
            f"({colab_link(url)}main/notebooks/dcgan_celeba.ipynb)")


# (kind, source[, tags]); REPO_URL and BADGE are filled in from pyproject.toml.
CELLS = [
    ("markdown", """# DCGAN faces: train on CelebA, watch the faces improve

{BADGE}

Pick a **GPU runtime** (Runtime → Change runtime type → GPU), then **Runtime → Run all**. CelebA
comes from Kaggle or, with no account, from the Hugging Face Hub. The training cell shows the
newest faces, the loss curves and the time left, redrawn in place. `PRECISION = "auto"` trains a
T4 in float16 (with loss scaling) and an L4 or A100 in bfloat16, both with float32 weights.

**The loop**: change a hyperparameter in the *Hyperparameters* form and run the cells below it
again. `IF_RUN_EXISTS` says what happens to the run already in `RUN_NAME`: `resume` it as saved
(also what you want after a disconnect), `resume_changed` with the new settings, start a
`new_run` beside it (`RUN_NAME-2`, ...), or `overwrite` it. Runs live on Google Drive by default,
so a runtime reset loses at most `CHECKPOINT_MINUTES` of training (a checkpoint that often, inside
epochs too; a resume from one is exact). A new grid appears every `SAMPLE_MINUTES`; training
stops after `MINUTES` (with a checkpoint) and the first steps print how long the whole run would
take and where `MINUTES` stops it: *Run all* again goes on. Every cell calls the `dcgan` package;
nothing here re-implements it.

**Presets**: `seed128` is the model this project is named for (128x128); `faces64` is the recipe
measured best on real face photos (DCGAN-64 with DiffAugment translation; see
docs/real_faces.md); `dcgan64` is Radford et al.'s DCGAN as published; `demo` is small enough for a CPU."""),
    ("code", """#@title Setup: install the package and pick the Keras backend (Colab has the rest)
REPO_URL = "{REPO_URL}"  #@param {type:"string"}
PACKAGE = ""  #@param {type:"string"}
BACKEND = "auto"  #@param ["auto", "tensorflow", "jax", "torch"]
# PACKAGE, instead of REPO_URL: a dcgan wheel (.whl) or a zip of a checkout, on Drive or uploaded.
import importlib.util, pathlib, subprocess, sys
def pip_install(target):
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", target],
                          capture_output=True, text=True)
    if done.returncode:  # pip's own last lines, not a Python traceback
        tail = "\\n".join((done.stdout + done.stderr).strip().splitlines()[-6:])
        raise SystemExit(f"pip could not install {target}:\\n{tail}")
    importlib.invalidate_caches()  # import what was just installed, in this very process
if importlib.util.find_spec("dcgan") is None:
    if pathlib.Path("../dcgan/__init__.py").exists():  # opened from a checkout: use it as it is
        sys.path.insert(0, str(pathlib.Path("..").resolve()))
    elif PACKAGE:
        pip_install(PACKAGE)
    elif "/OWNER/" in REPO_URL:
        raise SystemExit("REPO_URL still says OWNER: set it to the repository's address "
                         "(https://github.com/NAME/dcgan), or PACKAGE to a dcgan wheel or zip")
    else:
        pip_install(f"git+{REPO_URL}")
import dcgan
dcgan.use_backend(BACKEND)  # before Keras loads; "auto": JAX on a TPU, or a GPU where JAX has CUDA; else TensorFlow
from dcgan.apps import notebook as nb  # also shows dcgan's messages here, errors as one line
nb.report_environment();"""),
    ("code", """#@title Keep runs on Google Drive (a runtime reset deletes everything else)
USE_DRIVE = True  #@param {type:"boolean"}
OUT_ROOT = nb.output_root(USE_DRIVE)"""),
    ("code", """#@title Hyperparameters (0, or -1 for LABEL_NOISE, keeps the preset's value; 0 MINUTES: no limit)
PRESET = "seed128"  #@param ["seed128", "faces64", "dcgan64", "demo"]
DATA = "celeba"  #@param ["celeba", "hf:nielsr/CelebA-faces", "demo"] {allow-input: true}
IMAGE_SIZE = 0  #@param {type:"integer"}
LATENT_DIM = 0  #@param {type:"integer"}
BATCH_SIZE = 0  #@param {type:"integer"}
D_LEARNING_RATE = 0  #@param {type:"number"}
G_LEARNING_RATE = 0  #@param {type:"number"}
LABEL_NOISE = -1  #@param {type:"number"}
EPOCHS = 25  #@param {type:"integer"}
STEPS_PER_EPOCH = 0  #@param {type:"integer"}
MINUTES = 90  #@param {type:"number"}
SAMPLE_MINUTES = 2  #@param {type:"number"}
CHECKPOINT_MINUTES = 10  #@param {type:"number"}
RUN_NAME = "celeba128"  #@param {type:"string"}
IF_RUN_EXISTS = "resume"  #@param ["resume", "resume_changed", "new_run", "overwrite"]
SEED = 0  #@param {type:"integer"}
PRECISION = "auto"  #@param ["auto", "float32", "mixed_float16", "mixed_bfloat16"]""", ["parameters"]),
    ("code", """#@title Data: CelebA from Kaggle or the Hugging Face Hub (or your own), then a look
config = nb.make_config(
    PRESET, data=nb.prepare_data(DATA, PRESET), image_size=IMAGE_SIZE, latent_dim=LATENT_DIM,
    batch_size=BATCH_SIZE, d_learning_rate=D_LEARNING_RATE, g_learning_rate=G_LEARNING_RATE,
    label_noise=LABEL_NOISE, epochs=EPOCHS, steps_per_epoch=STEPS_PER_EPOCH, seed=SEED,
    precision=PRECISION, minutes=MINUTES, sample_minutes=SAMPLE_MINUTES,
    checkpoint_minutes=CHECKPOINT_MINUTES, out_dir=f"{OUT_ROOT}/{RUN_NAME}")
nb.show_real_images(config)"""),
    ("code", """#@title Model
nb.show_models(config)"""),
    ("code", """#@title Train: the plan, then a live view of the newest faces, the curves and the time left
RUN = nb.train(config, IF_RUN_EXISTS)"""),
    ("code", """#@title Results (needs only the run folder: works in a fresh runtime after Setup and Drive)
RUN_FOLDER = nb.run_folder(OUT_ROOT, RUN_NAME)
results = nb.show_results(RUN_FOLDER)"""),
    ("markdown", """## Look at it, edit it, compare, share

Each cell below needs only the run folder, but *Nearest* and *Score*, which also read the
training data (run the Data cell first in a fresh runtime). *Named sliders* learns attribute
directions (Smiling, Bangs, ...) from labelled photos; *Your photos* finds the latent of a photo
of yours; the explorer redraws a face as you move a seed (or start from your photo), a walk to
a second seed, truncation or one slider per direction; *Face arithmetic* adds and subtracts
faces (smiling woman - neutral woman + neutral man); *Compare* puts this run
beside another (grids at one epoch, loss curves, the settings that differ); *Nearest* shows
whether generated faces copy training photos; *Score* gives FID/KID with the standard FID
network (its weights are downloaded once); *Take home* zips generators, grids, GIF, log and
config; *Share* serves a web page of the faces from this runtime."""),
    ("code", """#@title Named sliders: learn Smiling, Bangs, ... from labelled photos (a minute or two)
LEARN_DIRECTIONS = True  #@param {type:"boolean"}
LABELS = ""  #@param {type:"string"}
LABELLED_IMAGES = 8192  #@param {type:"integer"}
# LABELS: CelebA's list_attr_celeba.csv (empty: found beside the data; the demo faces carry their own)
DIRECTIONS = nb.directions(RUN_FOLDER, LABELS, LABELLED_IMAGES) if LEARN_DIRECTIONS else print("LEARN_DIRECTIONS is off")"""),
    ("code", """#@title Your photos in the latent space: upload (Colab) or give paths; each is searched for
UPLOAD = False  #@param {type:"boolean"}
PHOTOS = ""  #@param {type:"string"}
PROJECT_STEPS = 500  #@param {type:"integer"}
# PHOTOS: photo files or a folder, comma-separated (empty on a demo run: two faces it never saw)
PROJECTED = nb.project(RUN_FOLDER, PHOTOS, UPLOAD, PROJECT_STEPS)"""),
    ("code", """#@title Explore the latent space (seed or your photo, walk, truncation, sliders)
explorer = nb.explore(RUN_FOLDER, starts=PROJECTED)"""),
    ("code", """#@title Face arithmetic, as in Radford et al.'s Fig. 7 (terms: seeds, 3,17,41 averaged, a photo's name, 2*Smiling)
EXPRESSION = "3,17,41 - 5,6,7 + 8,9,10"  #@param {type:"string"}
ARITHMETIC = nb.arithmetic(RUN_FOLDER, EXPRESSION, PROJECTED)"""),
    ("code", """#@title Compare with another run (its RUN_NAME, beside this one)
COMPARE_WITH = ""  #@param {type:"string"}
COMPARE_EPOCH = 0  #@param {type:"integer"}
nb.compare(RUN_FOLDER, COMPARE_WITH, COMPARE_EPOCH);"""),
    ("code", """#@title Nearest training images: is it drawing new faces or copying?
nb.nearest(RUN_FOLDER);"""),
    ("code", """#@title Score (FID/KID: minutes on a GPU; compare FID only at equal SCORE_IMAGES)
SCORE = False  #@param {type:"boolean"}
SCORE_METRICS = "fid,kid"  #@param ["fid,kid", "fid", "swd"]
SCORE_IMAGES = 10000  #@param {type:"integer"}
scores = nb.score(RUN_FOLDER, SCORE_METRICS, SCORE_IMAGES) if SCORE else print("SCORE is off")"""),
    ("code", """#@title Take home: one zip of generators, grids, GIF, log and config
TAKE_HOME = False  #@param {type:"boolean"}
ZIP = nb.take_home(RUN_FOLDER, download=TAKE_HOME)"""),
    ("code", """#@title Share: a web page of the faces, served from this runtime
server, URL = nb.share(RUN_FOLDER)"""),
]


def build(url: str | None = None) -> nbformat.NotebookNode:
    """The notebook, with no outputs, for the repository at `url` (default: pyproject's)."""
    notebook = nbformat.v4.new_notebook()
    notebook.metadata = {"accelerator": "GPU", "colab": {"provenance": []},
                         "kernelspec": {"name": "python3", "display_name": "Python 3"},
                         "language_info": {"name": "python"}}
    url = url or repository_url()
    for kind, source, *tags in CELLS:
        source = source.replace('"{REPO_URL}"', f'"{url}"').replace("{BADGE}", badge(url))
        cell = (nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell)(source)
        if tags:
            cell.metadata["tags"] = tags[0]
        notebook.cells.append(cell)
    for i, cell in enumerate(notebook.cells):
        cell.id = f"cell-{i}"
    return notebook


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", help="the repository's address, https://github.com/NAME/REPO")
    args = parser.parse_args()
    if args.repo:
        set_repository(args.repo)
    nbformat.write(build(), NOTEBOOK)
    print(f"wrote {NOTEBOOK} for {repository_url()}")


if __name__ == "__main__":
    main()
