"""The Colab notebook: committed clean, in sync with its generator, and runnable top to bottom."""

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "dcgan_celeba.ipynb"


def test_committed_notebooks_carry_no_outputs():
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks
    for path in notebooks:
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [] and cell["execution_count"] is None, path


def test_notebook_matches_its_generator():
    nbformat = pytest.importorskip("nbformat")
    make_notebook = _make_notebook()
    assert nbformat.reads(NOTEBOOK.read_text(), as_version=4) == make_notebook.build()
    parameters = [c for c in make_notebook.build().cells if "parameters" in c.metadata.get("tags", [])]
    assert len(parameters) == 1 and "#@param" in parameters[0].source
    assert "colab.research.google.com" in NOTEBOOK.read_text()


def _make_notebook():
    sys.path.insert(0, str(ROOT / "notebooks"))
    try:
        import make_notebook
    finally:
        sys.path.pop(0)
    return make_notebook


def test_badges_and_install_cell_follow_the_repository_url(tmp_path):
    pytest.importorskip("nbformat")
    make_notebook = _make_notebook()
    url = make_notebook.repository_url()
    link = make_notebook.colab_link(url) + "main/notebooks/dcgan_celeba.ipynb"
    for path in (ROOT / "README.md", ROOT / "notebooks" / "README.md", NOTEBOOK):
        assert link in path.read_text(encoding="utf-8"), path
    assert f'REPO_URL = \\"{url}\\"' in NOTEBOOK.read_text()
    # Publishing under another name is one command; try it on a copy of the files.
    (tmp_path / "notebooks").mkdir()
    for name in ("pyproject.toml", "README.md", "notebooks/README.md"):
        (tmp_path / name).write_text((ROOT / name).read_text(encoding="utf-8"), encoding="utf-8")
    make_notebook.set_repository("https://github.com/ada/faces", root=tmp_path)
    assert make_notebook.repository_url(tmp_path) == "https://github.com/ada/faces"
    for name in ("README.md", "notebooks/README.md"):
        text = (tmp_path / name).read_text(encoding="utf-8")
        assert "colab.research.google.com/github/ada/faces/blob/main/notebooks/" in text
        assert link not in text
    cell = make_notebook.build("https://github.com/ada/faces").cells[1].source
    assert 'REPO_URL = "https://github.com/ada/faces"' in cell and 'f"git+{REPO_URL}"' in cell
    with pytest.raises(SystemExit, match="expected https://github.com/NAME/REPO"):
        make_notebook.set_repository("github.com/ada", root=tmp_path)


def _execute(tmp_path, epochs, backend):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    setup = next(c for c in notebook.cells if 'BACKEND = "auto"' in c.source)
    setup.source = setup.source.replace('BACKEND = "auto"', f'BACKEND = "{backend}"')
    index = next(i for i, c in enumerate(notebook.cells) if "parameters" in c.metadata.get("tags", []))
    # papermill's convention: a cell after the parameters cell overrides them.
    injected = nbformat.v4.new_code_cell(
        f'PRESET, DATA, EPOCHS, STEPS_PER_EPOCH, BATCH_SIZE = "demo", "demo", {epochs}, 3, 16\n'
        'RUN_NAME = "nbtest"')
    injected.metadata["tags"] = ["injected-parameters"]
    notebook.cells.insert(index + 1, injected)
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    return notebook


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_notebook_runs_top_to_bottom_and_resumes_when_rerun(backend, tmp_path, monkeypatch):
    # The kernel imports this checkout of dcgan (CI installs it; this also covers a bare checkout).
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)  # as in a fresh Colab kernel
    monkeypatch.delenv("KERAS_BACKEND", raising=False)  # the notebook's BACKEND decides
    notebook = _execute(tmp_path, epochs=1, backend=backend)
    run = tmp_path / "runs" / "nbtest"
    assert (run / "samples" / "epoch_001.png").exists()
    assert (run / "checkpoints" / "ckpt-0001" / "meta.json").exists()
    assert (run / "faces.png").exists() and (run / "walk.png").exists()
    text = "".join(o.get("text", "") for c in notebook.cells for o in c.get("outputs", []))
    assert f"on {backend}" in text and "GMAC" in text
    assert json.loads((run / "environment.json").read_text())["backend"] == backend
    stderr = "".join(o.get("text", "") for c in notebook.cells for o in c.get("outputs", [])
                     if o.get("name") == "stderr")
    from dcgan.quiet import NOISE

    noise = [line for line in stderr.splitlines() if NOISE.match(line) or "XLA" in line]
    assert noise == [], noise  # no red C++ log lines under the training cell
    images = sum("image/png" in o.get("data", {}) for c in notebook.cells for o in c.get("outputs", []))
    assert images >= 4  # real images, epoch grids, losses, faces, walk
    _execute(tmp_path, epochs=2, backend=backend)  # a re-run continues the same run
    rows = (run / "log.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows] == ["epoch", "1", "2"]


def test_notebook_helpers_outside_colab(capsys):
    from dcgan import notebook as nb

    assert not nb.in_colab()
    assert nb.output_root(True, local="runs") == "runs"  # Drive asked for, but not in Colab
    assert "not Colab" in capsys.readouterr().out
    info = nb.report_environment()
    assert info["device"].startswith("CPU") and "no GPU" in capsys.readouterr().out
    # 0 (and -1 for label_noise) keep the preset's values, so any preset works unedited.
    config = nb.make_config("dcgan64", image_size=0, latent_dim=0, batch_size=0, label_noise=-1,
                            d_learning_rate=0, epochs=3, seed=0, steps_per_epoch=0)
    assert (config.image_size, config.latent_dim, config.label_noise, config.epochs) == (64, 100, 0.0, 3)
    assert nb.make_config("demo", label_noise=0.0).label_noise == 0.0
    assert nb.prepare_data("demo") == "demo" and nb.prepare_data("some/folder") == "some/folder"


def test_gpu_advice_for_each_runtime():
    from dcgan import notebook as nb

    assert nb.gpu_advice("GPU 0: Tesla T4", colab=True) is None
    assert nb.gpu_advice("GPU 0: NVIDIA H100 80GB HBM3", colab=False) is None
    colab = nb.gpu_advice("CPU (2 cores)", colab=True)
    assert colab.startswith("WARNING") and "Change runtime type > GPU" in colab
    assert "demo preset" in nb.gpu_advice("CPU (2 cores)", colab=False)


@pytest.fixture
def fake_colab(monkeypatch, tmp_path):
    """google.colab as Colab provides it, with drive.mount creating the mount's MyDrive folder."""
    import types

    mounted = []

    def mount(path):
        mounted.append(path)
        (Path(path) / "MyDrive").mkdir(parents=True, exist_ok=True)

    colab = types.ModuleType("google.colab")
    colab.drive = types.SimpleNamespace(mount=mount)
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    return mounted


def test_drive_branch_sends_runs_to_drive_and_keeps_data_local(fake_colab, tiny_demo, tmp_path,
                                                               capsys):
    from dcgan import notebook as nb
    from dcgan.training import train

    assert nb.in_colab()
    mount = tmp_path / "content" / "drive"
    root = nb.output_root(True, mount_point=str(mount))
    assert fake_colab == [str(mount)] and Path(root) == mount / "MyDrive" / "dcgan"
    assert "Google Drive" in capsys.readouterr().out
    assert nb.output_root(False) == "runs"  # Drive off: nothing mounted
    assert fake_colab == [str(mount)]
    import numpy as np
    from PIL import Image

    images, cache = tmp_path / "content" / "data", tmp_path / "content" / "cache"
    images.mkdir(parents=True)
    for i in range(32):
        Image.fromarray(np.full((20, 20, 3), 8 * i, np.uint8)).save(images / f"{i}.png")
    config = tiny_demo.replace(out_dir=f"{root}/faces", data=str(images), steps_per_epoch=2,
                               cache_dir=str(cache))
    train(config)
    run = mount / "MyDrive" / "dcgan" / "faces"
    assert (run / "checkpoints" / "ckpt-0001" / "meta.json").exists()
    assert (run / "samples" / "epoch_001.png").exists()
    # The decoded images stay on the local disk; Drive gets only the run's own files.
    assert list(cache.glob("*.u8")) and not [p for p in mount.rglob("*") if p.suffix == ".u8"]
