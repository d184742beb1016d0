"""Looking at and sharing a trained generator: export, compare, nearest real faces, the latent
explorer (core and widgets) and the web page (in a real headless Chromium)."""

import io
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dcgan.config import Config
from dcgan.errors import DcganError
from conftest import TINY_JIT

ROOT = Path(__file__).resolve().parents[1]


def _tiny(out, **changes):
    values = dict(image_size=16, g_widths=(32, 16), batch_size=16, demo_images=64, num_samples=9,
                  jit_compile=TINY_JIT, out_dir=str(out))
    return Config.from_preset("demo", **{**values, **changes})


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two finished runs that differ in one setting and in length."""
    from dcgan.training.loop import train

    root = tmp_path_factory.mktemp("runs")
    train(_tiny(root / "a", epochs=2))
    train(_tiny(root / "b", epochs=3, g_learning_rate=5e-4))
    return root / "a", root / "b"


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "dcgan", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


# ---------------------------------------------------------------- export
def test_export_zips_exactly_the_results_and_nothing_else(runs, tmp_path):
    from dcgan.apps.export import export_run

    run = runs[0]
    out = export_run(run, tmp_path / "take-home.zip")
    with zipfile.ZipFile(out) as archive:
        names = sorted(archive.namelist())
        for name in names:  # byte for byte the run's files
            assert archive.read(name) == (run / name.split("/", 1)[1]).read_bytes()
    expected = {"config.json", "environment.json", "log.csv", "losses.png", "progress.gif",
                "checkpoints/generator.keras", "checkpoints/generator_ema.keras",
                "samples/latents.npy", "samples/real.png",
                "samples/epoch_000.png", "samples/epoch_001.png", "samples/epoch_002.png"}
    assert names == sorted(f"a/{name}" for name in expected)  # no ckpt-*, no discriminator
    assert (run / "checkpoints" / "discriminator.keras").exists()


def test_an_export_that_fails_leaves_no_half_written_zip(runs, tmp_path, monkeypatch):
    from dcgan.apps.export import export_run

    real_write, written = zipfile.ZipFile.write, []

    def write_then_fail(self, *args, **kwargs):
        if len(written) == 3:
            raise OSError("disk full")
        written.append(args[0])
        return real_write(self, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "write", write_then_fail)
    with pytest.raises(OSError, match="disk full"):
        export_run(runs[0], tmp_path / "out.zip")
    assert len(written) == 3 and list(tmp_path.iterdir()) == []


def test_export_of_a_folder_without_a_generator_is_one_line(tmp_path):
    (tmp_path / "run").mkdir()
    _tiny(tmp_path / "run").to_json(tmp_path / "run" / "config.json")
    result = _cli("export", str(tmp_path / "run"), cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "no generator saved yet" in result.stderr
    result = _cli("export", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert result.returncode == 2 and "not a run folder" in result.stderr


# ---------------------------------------------------------------- compare
def test_compare_shows_both_grids_at_one_epoch_and_the_difference(runs, tmp_path):
    from dcgan.apps.compare import caption, compare_figure, common_epoch, config_difference

    a, b = runs
    assert common_epoch(a, b) == 2  # the latest epoch both have
    figure = compare_figure(a, b)
    shown = [ax.images[0].get_array() for ax in figure.axes if ax.images]
    for picture, run in zip(shown, runs, strict=True):
        assert np.array_equal(np.asarray(picture), np.asarray(Image.open(run / "samples" / "epoch_002.png").convert("RGB")))
    difference = {name: (x, y) for name, x, y in config_difference(Config.from_json(a / "config.json"),
                                                                    Config.from_json(b / "config.json"))}
    preset_rate = Config.from_preset("demo").g_learning_rate  # run a keeps the preset's
    assert difference == {"epochs": (2, 3), "g_learning_rate": (preset_rate, 5e-4)}
    text = caption(Config.from_json(a / "config.json"), Config.from_json(b / "config.json"), True)
    assert f"g_learning_rate: {preset_rate} -> 0.0005" in text and "same latents" in text
    curves = [line.get_label() for ax in figure.axes for line in ax.lines]
    assert {"d_loss a", "g_loss a", "d_loss b", "g_loss b"} <= set(curves)

    result = _cli("compare", str(a), str(b), "--epoch", "1", "--out", "c.png", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert Image.open(tmp_path / "c.png").size[0] > 500
    result = _cli("compare", str(a), str(b), "--epoch", "3", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert f"{a} has grids for epochs 0-2 only" in result.stderr


# ---------------------------------------------------------------- nearest real faces
def test_nearest_finds_a_planted_copy_of_a_generated_face(runs, tmp_path):
    from dcgan.outputs.sampling import generate_images
    from dcgan.outputs.images import to_uint8
    from dcgan.evaluation.nearest import nearest_faces
    from dcgan.outputs.sampling import load_generator, seed_latents

    generator = load_generator(runs[0])
    copy = to_uint8(generate_images(generator, seed_latents([2], 32)))[0]
    data = tmp_path / "photos"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(60):  # smooth random blobs: not the generated face
        blob = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
        Image.fromarray(blob).resize((16, 16), Image.BILINEAR).save(data / f"{i:03d}.png")
    Image.fromarray(copy).save(data / "030b-copy.png")
    found = nearest_faces(runs[0], data=str(data), n=4, k=3, out=tmp_path / "nearest.png")
    assert np.array_equal(found.real[2, 0], copy)
    assert found.distances[2, 0] < 1e-3 < found.distances[2, 1]
    assert all(found.distances[i, 0] > 10 * found.distances[2, 0] for i in (0, 1, 3))
    assert (np.diff(found.distances, axis=1) >= 0).all()  # closest first
    grid = np.asarray(Image.open(tmp_path / "nearest.png"))
    assert grid.shape[:2] == (4 * 18 + 2, 4 * 18 + 2)  # 4 rows of 1 + 3 faces


def test_nearest_reads_the_data_in_batches_with_the_same_answer():
    from dcgan.data.demo_faces import DemoImages
    from dcgan.evaluation.nearest import nearest_real

    images = DemoImages(300, 16, 0)
    queries = images.read(np.array([7, 150, 299]))
    whole = nearest_real(queries, images, k=4, batch=4096)
    streamed = nearest_real(queries, images, k=4, batch=7)
    assert np.array_equal(whole.indices, streamed.indices)
    assert np.allclose(whole.distances, streamed.distances)
    assert list(whole.indices[:, 0]) == [7, 150, 299]


# ---------------------------------------------------------------- the explorer's faces
def test_explorer_draws_what_generate_draws_and_moves_with_its_controls(runs):
    from dcgan.apps.explore import FaceExplorer
    from dcgan.outputs.sampling import generate_images
    from dcgan.outputs.images import to_uint8
    from dcgan.outputs.sampling import load_generator, seed_latents

    explorer = FaceExplorer(runs[0])
    generator = load_generator(runs[0])
    expected = to_uint8(generate_images(generator, seed_latents([5, 9], 32)))
    assert np.array_equal(explorer.face(5), expected[0])
    assert np.array_equal(explorer.face(5, to=9, t=1.0), expected[1])
    assert not np.array_equal(explorer.face(5, to=9, t=0.5), expected[0])
    assert not np.array_equal(explorer.face(5, offsets=[0.0, 2.0]), expected[0])
    assert np.array_equal(explorer.face(5, psi=0.0), explorer.face(9, psi=0.0))  # the mean face
    assert explorer.info() == {"latent_dim": 32, "size": 16, "directions": 32,
                               "direction_kind": "dimensions", "names": [f"z{i}" for i in range(32)],
                               "starts": []}
    for bad in ({"to": -1}, {"t": 2.0}, {"offsets": [0.0] * 33}):
        with pytest.raises(DcganError):
            explorer.face(1, **bad)


def test_principal_directions_of_a_wide_latent_are_orthonormal_and_ordered():
    import keras

    from dcgan.apps.explore import latent_directions

    keras.utils.set_random_seed(0)
    # a generator that only listens to latent dimensions 3 and 40 (40 more strongly)
    inputs = keras.Input((100,))
    mask = np.zeros((100, 1), np.float32)
    mask[3], mask[40] = 1.0, 3.0
    dense = keras.layers.Dense(4 * 4 * 3, use_bias=False)
    outputs = keras.layers.Reshape((4, 4, 3))(dense(inputs * keras.ops.convert_to_tensor(mask[:, 0])))
    generator = keras.Model(inputs, outputs)
    directions = latent_directions(generator, 8)
    assert directions.shape == (8, 100)
    assert np.allclose(directions @ directions.T, np.eye(8), atol=1e-4)
    assert set(np.argsort(-np.abs(directions[:2]).max(axis=0))[:2]) == {3, 40}


def test_explorer_picks_up_a_generator_saved_later(runs, tmp_path):
    from dcgan.errors import CheckpointError
    from dcgan.apps.explore import FaceExplorer

    run = tmp_path / "training"
    (run / "checkpoints").mkdir(parents=True)
    explorer = FaceExplorer(run)
    with pytest.raises(CheckpointError, match="no generator yet"):
        explorer.face(0)
    shutil.copy(runs[0] / "checkpoints" / "generator_ema.keras", run / "checkpoints")
    assert explorer.face(0).shape == (16, 16, 3)


# ---------------------------------------------------------------- the notebook's widgets
def test_latent_explorer_widgets_redraw_what_generate_draws(runs):
    pytest.importorskip("ipywidgets")
    from dcgan.apps.explore import FaceExplorer
    from dcgan.apps.widgets import LatentExplorer

    view = LatentExplorer(runs[0])
    faces = FaceExplorer(runs[0])
    assert len(view.sliders) == 32
    first = view.image.value
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(first))), faces.face(0))
    view.seed.value = 11
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(view.image.value))), faces.face(11))
    view.sliders[4].value = 2.5
    assert view.last_choices["offsets"][4] == 2.5
    offsets = [0.0] * 4 + [2.5]
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(view.image.value))),
                          faces.face(11, offsets=offsets))
    view.generator.value = "raw"
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(view.image.value))),
                          faces.face(11, offsets=offsets, ema=False))
    assert view.which.disabled  # no best generator kept in this run
    assert "drawn in" in view.status.value


# ---------------------------------------------------------------- the web page
def _browser():
    chromium = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                     if shutil.which(n)), None)
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip("no Chromium and chromedriver here (apt install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver))


SHOWN_FACE = """
const img = document.getElementById('face');
if (!img.complete || !img.naturalWidth) return null;
const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
c.getContext('2d').drawImage(img, 0, 0);
return c.toDataURL('image/png');
"""


def _shown(browser):
    import base64

    from selenium.webdriver.support.ui import WebDriverWait

    url = WebDriverWait(browser, 60).until(lambda b: b.execute_script(SHOWN_FACE))
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"))


def _status(browser, predicate):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, 60).until(
        lambda b: (text := b.find_element("id", "status").text) and predicate(text) and text)


def test_the_web_page_in_a_real_browser(runs, tmp_path):
    from dcgan.apps.explore import FaceExplorer
    from dcgan.apps.serve import serve_in_background

    browser = _browser()
    server, url = serve_in_background(runs[0])
    faces = FaceExplorer(runs[0])
    try:
        browser.get(url)
        _status(browser, lambda t: t.startswith("seed 0"))
        assert np.array_equal(_shown(browser), faces.face(0))
        assert len(browser.find_elements("css selector", "#sliders input")) == 32
        assert browser.find_elements("css selector", "#sliders label")[3].text.strip() == "z3"
        seed = browser.find_element("id", "seed")
        seed.clear()
        seed.send_keys("42")
        _status(browser, lambda t: t.startswith("seed 42"))
        assert np.array_equal(_shown(browser), faces.face(42))
        link = browser.find_element("id", "download")
        assert link.get_attribute("download") == "face-seed42.png" and link.get_attribute("href").startswith("blob:")

        browser.execute_script("const s = document.getElementById('seed'); s.value = '-5';"
                               "s.dispatchEvent(new Event('input'));")
        assert "a seed is a whole number" in _status(browser, lambda t: "seed -5" in t)
        assert browser.find_element("id", "status").get_attribute("class") == "error"
        browser.execute_script("const s = document.getElementById('seed'); s.value = '7';"
                               "s.dispatchEvent(new Event('input'));")
        _status(browser, lambda t: t.startswith("seed 7"))  # still serving
        assert np.array_equal(_shown(browser), faces.face(7))
    finally:
        server.shutdown()

    # A run with named attribute directions: its sliders carry their names.
    from dcgan.editing.directions import Directions

    named = Path(shutil.copytree(runs[0], tmp_path / "named"))
    Directions(["Smiling", "Bangs"], np.eye(32, dtype=np.float32)[[3, 7]], {}, {}).save(
        named / "directions.npz")
    server, url = serve_in_background(named)
    try:
        browser.get(url)
        _status(browser, lambda t: t.startswith("seed 0"))
        labels = [e.text.strip() for e in browser.find_elements("css selector", "#sliders label")]
        assert labels == ["Smiling", "Bangs"]
        assert "named attribute directions" in browser.find_element("id", "kind").text
    finally:
        server.shutdown()

    # A run with no generator yet: the page says so, then shows faces once one is saved.
    training = tmp_path / "training"
    (training / "checkpoints").mkdir(parents=True)
    server, url = serve_in_background(training)
    try:
        browser.get(url)
        assert "no generator yet" in _status(browser, lambda t: "generator" in t)
        shutil.copy(runs[0] / "checkpoints" / "generator_ema.keras", training / "checkpoints")
        _status(browser, lambda t: t.startswith("seed 0"))
        assert np.array_equal(_shown(browser), faces.face(0))
    finally:
        server.shutdown()
        browser.quit()


def _get(url):
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_the_web_page_bounds_what_the_network_can_ask(runs, caplog, monkeypatch):
    import threading

    from dcgan.apps import serve

    server, url = serve.serve_in_background(runs[0])
    try:
        # capped inputs, refused before they are parsed
        status, body = _get(url + "face.png?seed=1&d=" + ",".join(["0.1"] * 200))
        assert status == 400 and b"more than 64 values" in body
        status, body = _get(url + "face.png?seed=1&psi=" + "1" * 3000)
        assert status == 414
        assert _get(url + "face.png?seed=99999999999")[0] == 400
        assert _get(url + "face.png?seed=3")[0] == 200
        # an unexpected error: a generic line to the client, the details in the server's log
        def broken(*args, **kwargs):
            raise RuntimeError("/home/someone/secret/path")

        monkeypatch.setattr(serve.FaceExplorer, "face_png", broken)
        with caplog.at_level("WARNING", logger="dcgan.apps.serve"):
            status, body = _get(url + "face.png?seed=3")
        assert status == 500 and b"secret" not in body and b"RuntimeError" not in body
        assert "secret/path" in caplog.text
    finally:
        server.shutdown()
        server.server_close()

    # a bounded pool: with every worker busy and the queue full, the next request is a 503
    release = threading.Event()
    monkeypatch.setattr(serve.FaceExplorer, "face_png", lambda *a, **k: release.wait(30) and b"")
    server = serve.PooledHTTPServer(("127.0.0.1", 0), serve.make_handler(serve.FaceExplorer(runs[0]), "x"),
                                    workers=1, queued=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        first = threading.Thread(target=_get, args=(url + "face.png?seed=1",))
        first.start()
        for _ in range(200):  # until the first request holds the only worker
            if server.slots._value == 0:
                break
            threading.Event().wait(0.01)
        status, body = _get(url + "face.png?seed=2")
        assert status == 503 and b"busy" in body
    finally:
        release.set()
        first.join(30)
        server.shutdown()
        server.server_close()

    # bound off loopback: a warning says who can see it
    with caplog.at_level("WARNING", logger="dcgan.apps.serve"):
        serve.make_server(runs[0], host="0.0.0.0", port=0).server_close()
    assert "anyone who can reach this machine" in caplog.text


def test_serve_cli_errors_are_one_line(tmp_path):
    result = _cli("serve", "--checkpoint", str(tmp_path / "missing"), cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "no such run folder" in result.stderr


# ---------------------------------------------------------------- pretrained generators
@pytest.fixture
def release(runs, tmp_path, monkeypatch, https_server):
    """A generator .keras served over https on 127.0.0.1, as a release would be; counts the
    downloads."""
    import hashlib
    import http.server

    monkeypatch.setenv("DCGAN_CACHE", str(tmp_path / "cache"))
    served = tmp_path / "served"
    served.mkdir()
    shutil.copy(runs[0] / "checkpoints" / "generator_ema.keras", served / "generator.keras")
    downloads = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            downloads.append(self.path)
            super().do_GET()

    digest = hashlib.sha256((served / "generator.keras").read_bytes()).hexdigest()
    yield f"{https_server(served, Handler)}/generator.keras", digest, downloads


def test_a_released_generator_is_fetched_once_checked_and_loaded_safely(runs, release, tmp_path):
    from dcgan.errors import CheckpointError
    from dcgan.outputs.sampling import generate_images
    from dcgan.outputs.sampling import load_pretrained
    from dcgan.outputs.sampling import load_generator, seed_latents

    url, digest, downloads = release
    generator, path = load_pretrained(f"{url}#sha256={digest}")
    assert path.is_file() and str(tmp_path / "cache" / "pretrained") in str(path)
    z = seed_latents([3], 32)
    original = load_generator(runs[0])
    assert np.array_equal(generate_images(generator, z), generate_images(original, z))
    load_pretrained(f"{url}#sha256={digest}")
    assert downloads == ["/generator.keras"]  # cached: downloaded once
    with pytest.raises(CheckpointError, match="sha256"):
        load_pretrained(f"{url}#sha256={'0' * 64}")
    assert (path.parent / "generator.keras").is_file()  # a bad checksum keeps the good copy
    with pytest.raises(CheckpointError, match="nor a released generator"):
        load_pretrained("celeba128")
    # a URL must say which file it means, and come over https (what loads runs through Keras)
    before = len(downloads)
    with pytest.raises(CheckpointError, match="no sha256 given"):
        load_pretrained(url)
    with pytest.raises(CheckpointError, match="over https only"):
        load_pretrained(url.replace("https://", "http://") + f"#sha256={digest}")
    assert len(downloads) == before  # refused before anything is fetched
    assert load_pretrained(path.as_uri())[1] == path  # file:// and local paths as they are
    from dcgan.apps import notebook as nb

    assert nb.load_pretrained(f"{url}#sha256={digest}") == str(path)  # the notebook's cell
    assert path.with_name("faces.png").is_file()
    # the CLI takes the URL wherever it takes a checkpoint
    result = _cli("generate", "--checkpoint", f"{url}#sha256={digest}", "--n", "4", "--out", "f.png",
                  cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert Image.open(tmp_path / "f.png").size == (2 * 18 + 2, 2 * 18 + 2)


def test_a_new_run_can_start_from_a_trained_generator(runs, release, tmp_path):
    from dcgan.errors import CheckpointError
    from dcgan.outputs.sampling import load_generator
    from dcgan.training.loop import build_gan, start_from

    url, digest, _ = release
    gan = build_gan(_tiny(tmp_path / "fine"))
    start_from(gan, f"{url}#sha256={digest}")
    trained = load_generator(runs[0])
    for mine, theirs in zip(gan.generator.get_weights(), trained.get_weights(), strict=True):
        assert np.array_equal(mine, theirs)
    for mine, theirs in zip(gan.ema_generator.get_weights(), trained.get_weights(), strict=True):
        assert np.array_equal(mine, theirs)
    wider = build_gan(_tiny(tmp_path / "wide", g_widths=(64, 16)))
    with pytest.raises(CheckpointError, match="does not fit this config"):
        start_from(wider, str(runs[0]))
    result = _cli("train", "--preset", "demo", "--image-size", "16", "--g-widths", "32,16",
                  "--batch-size", "16", "--demo-images", "64", "--num-samples", "9", "--epochs", "1",
                  "--init-from", str(runs[0]), "--out", "fine", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"the generator starts from {runs[0]}" in result.stderr
    assert Config.from_json(tmp_path / "fine" / "config.json").init_from == str(runs[0])


def test_without_ipywidgets_the_explorer_is_one_line_and_a_grid(runs, monkeypatch, capsys):
    from dcgan.apps.widgets import explore

    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # as if it were not installed
    assert explore(runs[1]) is None
    assert capsys.readouterr().out.splitlines()[0] == (
        "the latent explorer needs ipywidgets (pip install ipywidgets); a static grid instead")
    assert Image.open(runs[1] / "faces.png").size == (4 * 18 + 2, 4 * 18 + 2)
