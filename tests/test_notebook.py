"""The Colab notebook: committed clean, in sync with its generator, and runnable top to bottom."""

import json
import re
import subprocess
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
    assert 'REPO_URL = "https://github.com/ada/faces"' in cell and 'pip_install(f"git+{REPO_URL}")' in cell
    with pytest.raises(SystemExit, match="expected https://github.com/NAME/REPO"):
        make_notebook.set_repository("github.com/ada", root=tmp_path)


def _notebook(backend, epochs, extra=""):
    """The committed notebook for a tiny demo run: BACKEND set, and a cell after the form
    overriding its values (papermill's convention); returns (notebook, injected cell)."""
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    setup = next(c for c in notebook.cells if 'BACKEND = "auto"' in c.source)
    setup.source = setup.source.replace('BACKEND = "auto"', f'BACKEND = "{backend}"')
    scoring = next(c for c in notebook.cells if "SCORE = False" in c.source)
    scoring.source = (scoring.source.replace("SCORE = False", "SCORE = True")
                      .replace('SCORE_METRICS = "fid,kid"', 'SCORE_METRICS = "swd"')
                      .replace("SCORE_IMAGES = 10000", "SCORE_IMAGES = 64"))
    editing = {"LABELLED_IMAGES = 8192": "LABELLED_IMAGES = 256", "PROJECT_STEPS = 500": "PROJECT_STEPS = 20"}
    for old, new in editing.items():  # the editing cells at a tiny run's scale
        cell = next(c for c in notebook.cells if old in c.source)
        cell.source = cell.source.replace(old, new)
    index = next(i for i, c in enumerate(notebook.cells) if "parameters" in c.metadata.get("tags", []))
    injected = nbformat.v4.new_code_cell(_overrides(epochs, extra))
    injected.metadata["tags"] = ["injected-parameters"]
    notebook.cells.insert(index + 1, injected)
    return notebook, injected


def _overrides(epochs, extra=""):
    return (f'PRESET, DATA, EPOCHS, STEPS_PER_EPOCH, BATCH_SIZE = "demo", "demo", {epochs}, 3, 16\n'
            f'RUN_NAME = "nbtest"\n{extra}')


def _client(notebook, tmp_path):
    nbclient = pytest.importorskip("nbclient")
    return nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                   resources={"metadata": {"path": str(tmp_path)}})


def _execute(tmp_path, epochs, backend):
    notebook, _ = _notebook(backend, epochs)
    _client(notebook, tmp_path).execute()
    return notebook


def _texts(cell, name=None):
    return "".join(o.get("text", "") for o in cell.get("outputs", [])
                   if name is None or o.get("name") == name)


COLAB_STANDIN = {  # google.colab for a kernel: Drive's consent dialog times out, nobody there
    "__init__.py": "",
    "drive.py": "def mount(path):\n"
                "    raise TimeoutError('Timed out waiting for the authorization dialog')\n",
    "files.py": "import os\n"
                "def download(path):\n"
                "    with open(os.environ['COLAB_DOWNLOADS'], 'a') as f:\n"
                "        f.write(str(path) + '\\n')\n",
    "output.py": "def eval_js(script):\n    return 'https://proxy.invalid/'\n"
                 "def serve_kernel_port_as_iframe(port, height=0):\n    pass\n"
                 "def enable_custom_widget_manager():\n    pass\n",
}


def _colab_standin(tmp_path, monkeypatch):
    """A kernel that is 'in Colab' (google.colab imported first), with the stand-in above."""
    package = tmp_path / "standin" / "google" / "colab"
    package.mkdir(parents=True)
    for name, text in COLAB_STANDIN.items():
        (package / name).write_text(text)
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path / 'standin'}:{ROOT}")
    monkeypatch.setenv("COLAB_DOWNLOADS", str(tmp_path / "downloads.txt"))


@pytest.fixture
def kernel_env(monkeypatch):
    # The kernel imports this checkout of dcgan (CI installs it; this also covers a bare checkout).
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)  # as in a fresh Colab kernel
    monkeypatch.delenv("KERAS_BACKEND", raising=False)  # the notebook's BACKEND decides


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_notebook_runs_top_to_bottom_and_resumes_when_rerun(backend, tmp_path, kernel_env):
    pytest.importorskip(backend)  # Colab's versions (make test-colab) come without JAX, torch
    notebook = _execute(tmp_path, epochs=1, backend=backend)
    run = tmp_path / "runs" / "nbtest"
    assert (run / "samples" / "epoch_001.png").exists()
    assert (run / "checkpoints" / "ckpt-0001" / "meta.json").exists()
    assert (run / "faces.png").exists() and (run / "walk.png").exists()
    text = "".join(_texts(c) for c in notebook.cells)
    assert f"on {backend}" in text and "GMAC" in text
    assert json.loads((run / "environment.json").read_text())["backend"] == backend
    stderr = "".join(_texts(c, "stderr") for c in notebook.cells)
    # An independent pattern for C++ log lines (glog/absl: "I0000 00:00:... file.cc:12]") and
    # TensorFlow's banners, not the filter's own regex.
    noise = [line for line in stderr.splitlines()
             if re.search(r"\.(cc|h):\d+\]|absl::InitializeLog|XLA|oneDNN|cuda", line)]
    assert noise == [], noise  # no red C++ log lines under the training cell
    assert "precision float32, compiled step" in stderr  # dcgan's own log lines do show
    train_cell = next(c for c in notebook.cells if "nb.train(" in c.source)
    views = [o for o in train_cell.outputs if "text/html" in o.get("data", {})]
    assert len(views) == 2  # one status line and one picture, redrawn in place
    assert "epoch 1/1 done" in views[0]["data"]["text/html"]
    # real images, losses, faces, walk: each an <img> at its own resolution, not a figure
    images = sum(o.get("data", {}).get("text/html", "").count("<img src='data:image/png;base64,")
                 for c in notebook.cells if "nb.train(" not in c.source for o in c.get("outputs", []))
    assert images >= 4
    # The cells after Results: explorer widget, compare's hint, nearest, score, zip, web page.
    def cell_with(text):
        return next(c for c in notebook.cells if text in c.source)

    widgets = [o for o in cell_with("nb.explore(").outputs
               if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(widgets) == 1
    # The editing cells: directions learned (or one line why not, for 3 steps of training), two
    # held-out demo faces projected, the arithmetic figure drawn.
    learned = _texts(cell_with("nb.directions("))
    assert "slider ready" in learned or learned.startswith("skipped: "), learned
    assert (run / "projected" / "example-1.png").exists() and (run / "projected" / "example-2.npy").exists()
    assert "latents: example-1, example-2" in _texts(cell_with("nb.project("))
    assert (run / "arithmetic.png").exists()
    assert "COMPARE_WITH: name another run" in _texts(cell_with("nb.compare("))
    assert (run / "nearest.png").exists() and "nearest distances" in _texts(cell_with("nb.nearest("))
    assert re.search(r"SWDx1e3 [\d.]+ \(real-vs-real [\d.]+\) on 64 images", _texts(cell_with("nb.score(")))
    assert not (run / "nbtest-results.zip").exists()  # TAKE_HOME is off: Run all downloads nothing
    assert "TAKE_HOME is off" in _texts(cell_with("nb.take_home("))
    page = re.search(r"the page: (http://127\.0\.0\.1:\d+/)", _texts(cell_with("nb.share(")))
    assert page, _texts(cell_with("nb.share("))
    if backend != "tensorflow":
        return  # a re-run's resume is the same code on every backend (test_backends resumes across them)
    rerun = _execute(tmp_path, epochs=2, backend=backend)  # a re-run continues the same run
    rows = (run / "log.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows] == ["epoch", "1", "2"]
    assert "resuming runs/nbtest from ckpt-0001 (epoch 1" in "".join(_texts(c) for c in rerun.cells)


def test_the_colab_loop_tweak_a_value_and_rerun_under_each_choice(tmp_path, kernel_env, monkeypatch):
    """Run all, then change a learning rate in the form and run the cells below it again, as a
    user does, under each IF_RUN_EXISTS choice; then look at the results in a fresh kernel."""
    nbclient = pytest.importorskip("nbclient")
    _colab_standin(tmp_path, monkeypatch)  # Run all with nobody to answer Drive's dialog
    notebook, injected = _notebook("tensorflow", epochs=1)
    notebook.cells[1].source = "import google.colab  # as Colab's kernels have it\n" + notebook.cells[1].source
    client = _client(notebook, tmp_path)
    form = next(i for i, c in enumerate(notebook.cells)
                if "injected-parameters" in c.metadata.get("tags", []))
    # The loop is about the run folder: rerun from the form down to Results (the cells after it
    # only look at the run, and the first Run all executes them)
    results = next(i for i, c in enumerate(notebook.cells) if "nb.show_results(" in c.source)
    run, outputs = tmp_path / "runs" / "nbtest", {}

    def rerun(choice, epochs):
        injected.source = _overrides(epochs, f'D_LEARNING_RATE = 3e-4\nIF_RUN_EXISTS = "{choice}"')
        for index in range(form, results + 1):
            cell = notebook.cells[index]
            if cell.cell_type != "code":
                continue
            try:
                client.execute_cell(cell, index)
            except nbclient.exceptions.CellExecutionError:
                outputs[choice] = _texts(cell)
                return False
        outputs[choice] = "".join(_texts(c) for c in notebook.cells[form:results + 1])
        return True

    with client.setup_kernel():
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type == "code":
                client.execute_cell(cell, index)
        drive = _texts(next(c for c in notebook.cells if "nb.output_root(" in c.source))
        assert drive.count("\n") == 1 and "Google Drive did not mount (Timed out" in drive, drive
        assert "runs go to this runtime's disk, 'runs'" in drive
        data = _texts(next(c for c in notebook.cells if "nb.make_config(" in c.source))
        assert "BATCH_SIZE = 16, D_LEARNING_RATE = 0.0002 (preset)" in data, data
        train_text = _texts(next(c for c in notebook.cells if "nb.train(" in c.source))
        assert train_text.count("plan: ") == 1 and "minutes=90 " in train_text, train_text
        assert not (tmp_path / "downloads.txt").exists()  # Take home asked nobody to download
        assert rerun("resume", epochs=2) is False  # the settings differ: stop, say what to choose
        # one line (after the warning that Drive did not mount, so runs are on the runtime's disk)
        said = [line for line in outputs["resume"].splitlines() if not line.startswith("WARNING: ")]
        assert len(said) == 1 and said[0].startswith("error: "), outputs["resume"]
        assert 'IF_RUN_EXISTS = "resume_changed"' in outputs["resume"]
        assert "Traceback" not in outputs["resume"] and "--" not in outputs["resume"]
        assert rerun("resume_changed", epochs=2)
        assert "d_learning_rate  0.0002 -> 0.0003" in outputs["resume_changed"]
        assert json.loads((run / "config.json").read_text())["d_learning_rate"] == 3e-4
        assert [r.split(",")[0] for r in (run / "log.csv").read_text().splitlines()] == ["epoch", "1", "2"]
        assert rerun("new_run", epochs=1)
        assert "runs/nbtest-2" in outputs["new_run"]
        assert (tmp_path / "runs" / "nbtest-2" / "faces.png").exists()
        assert rerun("overwrite", epochs=1)
        assert [r.split(",")[0] for r in (run / "log.csv").read_text().splitlines()] == ["epoch", "1"]

    # A fresh runtime: Setup, Drive and the form, then Results; no data cell, no training.
    fresh, _ = _notebook("tensorflow", epochs=1)
    fresh.cells = [c for c in fresh.cells if c.cell_type == "code" and not any(
        word in c.source for word in ("nb.make_config", "nb.show_models", "nb.train("))]
    _client(fresh, tmp_path).execute()
    results = next(c for c in fresh.cells if "nb.show_results(" in c.source)
    assert "run folder: runs/nbtest" in _texts(results)
    preview = run / "progress_preview.gif"
    assert preview.exists() and preview.stat().st_size < 3 * 2**20


def _setup_cell_install_part():
    source = _make_notebook().build().cells[1].source
    return source[: source.index("import dcgan")]


@pytest.mark.parametrize("package, expected", [
    ("", "REPO_URL still says OWNER: set it to the repository's address"),
    ("/nowhere/dcgan-0.4.0-py3-none-any.whl",
     "pip could not install /nowhere/dcgan-0.4.0-py3-none-any.whl:"),
])
def test_the_install_cell_says_what_to_do(tmp_path, monkeypatch, package, expected):
    pytest.importorskip("nbformat")
    monkeypatch.delenv("PYTHONPATH", raising=False)
    code = _setup_cell_install_part().replace('PACKAGE = ""', f"PACKAGE = {package!r}")
    # -S: no site-packages, so the package is not importable, as on a fresh Colab runtime.
    done = subprocess.run([sys.executable, "-S", "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1 and expected in done.stderr
    assert "Traceback" not in done.stderr
    if package:  # pip's own words come through
        assert "ERROR" in done.stderr


def test_notebook_helpers_outside_colab(capsys):
    from dcgan.apps import notebook as nb

    assert not nb.in_colab()
    assert nb.output_root(True, local="runs") == "runs"  # Drive asked for, but not in Colab
    assert "Colab thing" in capsys.readouterr().out
    info = nb.report_environment()
    assert info["device"].startswith("CPU") and "no GPU" in capsys.readouterr().out
    # 0 (and -1 for label_noise) keep the preset's values, so any preset works unedited.
    config = nb.make_config("dcgan64", image_size=0, latent_dim=0, batch_size=0, label_noise=-1,
                            d_learning_rate=0, epochs=3, seed=0, steps_per_epoch=0)
    assert (config.image_size, config.latent_dim, config.label_noise, config.epochs) == (64, 100, 0.0, 3)
    assert nb.make_config("demo", label_noise=0.0).label_noise == 0.0
    assert nb.prepare_data("demo") == "demo" and nb.prepare_data("some/folder") == "some/folder"


def test_runs_off_drive_in_colab_get_a_warning_and_errors_speak_the_forms_words():
    from dcgan.apps import notebook as nb

    warning = nb.drive_warning("runs/celeba128", colab=True)
    assert warning.startswith("WARNING: runs/celeba128 is on this runtime's disk") and "USE_DRIVE = True" in warning
    assert nb.drive_warning("/content/drive/MyDrive/dcgan/celeba128", colab=True) is None
    assert nb.drive_warning("runs/celeba128", colab=False) is None
    assert nb.notebook_words("config field d_learning_rate=-1.0: must be positive") == \
        "D_LEARNING_RATE = -1.0: must be positive"
    assert nb.notebook_words("--data x: no such file; give --data demo, or use a new --out") == \
        "DATA x: no such file; give DATA demo, or use a new RUN_NAME"
    assert nb.notebook_words("config field ema_decay=2: must be in [0, 1)") == \
        "config field ema_decay=2: must be in [0, 1)"  # not in the form: left as it is


def test_gpu_advice_for_each_runtime():
    from dcgan.apps import notebook as nb

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
    from dcgan.apps import notebook as nb
    from dcgan.training.loop import train

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


def test_drive_that_times_out_leaves_runs_on_the_runtime_disk_in_one_line(monkeypatch, capsys):
    import types

    from dcgan.apps import notebook as nb

    def mount(path):
        raise TimeoutError("Timed out waiting for the authorization dialog")

    colab = types.ModuleType("google.colab")
    colab.drive = types.SimpleNamespace(mount=mount)
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    assert nb.output_root(True, local="runs") == "runs"
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "Timed out waiting" in out and "runtime reset deletes" in out


def test_take_home_builds_and_offers_the_zip_only_when_ticked(tiny_run, capsys):
    pytest.importorskip("IPython")
    from dcgan.apps import notebook as nb

    run = str(tiny_run)
    assert nb.take_home(run) is None and "TAKE_HOME is off" in capsys.readouterr().out
    assert not list(Path(run).glob("*.zip"))
    zipped = nb.take_home(run, download=True)
    assert Path(zipped).is_file() and zipped.endswith(".zip")
