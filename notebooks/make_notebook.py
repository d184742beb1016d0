"""Writes dcgan_celeba.ipynb from the cells below (run it after editing; outputs stay empty).

    python notebooks/make_notebook.py
"""

from pathlib import Path

import nbformat

BADGE = ("[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
         "(https://colab.research.google.com/github/OWNER/dcgan/blob/main/notebooks/dcgan_celeba.ipynb)")

CELLS = [
    ("markdown", f"""# DCGAN faces: train on CelebA, watch the faces improve

{BADGE}

Pick a **GPU runtime** (Runtime → Change runtime type → GPU), set the data source and
hyperparameters in the *Hyperparameters* cell, then **Runtime → Run all**. Every cell calls the
`dcgan` package; nothing here re-implements it. Re-running the training cell after a disconnect
**resumes** from the last checkpoint."""),
    ("code", """#@title Setup: install the package (Colab already has TensorFlow, Keras, numpy, kagglehub)
REPO_URL = "https://github.com/OWNER/dcgan"  #@param {type:"string"}
import importlib.util, subprocess, sys
if importlib.util.find_spec("dcgan") is None:
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", f"git+{REPO_URL}"])
import dcgan
from dcgan import Config, train
from dcgan import notebook as nb
nb.report_environment();"""),
    ("code", """#@title Optional: keep checkpoints and grids on Google Drive (survives disconnects)
USE_DRIVE = False  #@param {type:"boolean"}
OUT_ROOT = nb.output_root(USE_DRIVE)
print("runs go to", OUT_ROOT)"""),
    ("code", """#@title Hyperparameters (0, or -1 for LABEL_NOISE, keeps the preset's value)
PRESET = "seed128"  #@param ["seed128", "dcgan64", "demo"]
DATA = "celeba"  #@param {type:"string"}
IMAGE_SIZE = 0  #@param {type:"integer"}
LATENT_DIM = 0  #@param {type:"integer"}
BATCH_SIZE = 0  #@param {type:"integer"}
D_LEARNING_RATE = 0  #@param {type:"number"}
G_LEARNING_RATE = 0  #@param {type:"number"}
LABEL_NOISE = -1  #@param {type:"number"}
EPOCHS = 25  #@param {type:"integer"}
STEPS_PER_EPOCH = 0  #@param {type:"integer"}
RUN_NAME = "celeba128"  #@param {type:"string"}
SEED = 0  #@param {type:"integer"}""", ["parameters"]),
    ("code", """#@title Data: CelebA through kagglehub (falls back to the built-in demo faces), then a look
config = nb.make_config(
    PRESET, data=nb.prepare_data(DATA), image_size=IMAGE_SIZE, latent_dim=LATENT_DIM,
    batch_size=BATCH_SIZE, d_learning_rate=D_LEARNING_RATE, g_learning_rate=G_LEARNING_RATE,
    label_noise=LABEL_NOISE, epochs=EPOCHS, steps_per_epoch=STEPS_PER_EPOCH, seed=SEED,
    out_dir=f"{OUT_ROOT}/{RUN_NAME}")
nb.show_real_images(config)"""),
    ("code", """#@title Model
nb.show_models(config)"""),
    ("code", """#@title Train (re-run after a disconnect: it resumes from the last checkpoint)
gan, history = train(config, resume="auto")"""),
    ("code", """#@title Results: losses, progress GIF, fresh faces, a walk through latent space
results = nb.show_results(config.out_dir)"""),
]


def build() -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata = {"accelerator": "GPU", "colab": {"provenance": []},
                         "kernelspec": {"name": "python3", "display_name": "Python 3"},
                         "language_info": {"name": "python"}}
    for kind, source, *tags in CELLS:
        cell = (nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell)(source)
        if tags:
            cell.metadata["tags"] = tags[0]
        notebook.cells.append(cell)
    for i, cell in enumerate(notebook.cells):
        cell.id = f"cell-{i}"
    return notebook


if __name__ == "__main__":
    path = Path(__file__).with_name("dcgan_celeba.ipynb")
    nbformat.write(build(), path)
    print("wrote", path)
