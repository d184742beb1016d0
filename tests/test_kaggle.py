"""CelebA through the real kagglehub client, against a Kaggle API stand-in on localhost.

kagglesdk's `KAGGLE_API_ENVIRONMENT=TEST` points the client at http://localhost:7777; the
stand-in below answers the two calls a dataset download makes (GetDataset, DownloadDataset)
with a small CelebA-shaped zip. In Colab, kagglehub instead asks the runtime (at
`TBE_RUNTIME_ADDR`) to mount its cached copy; the stand-in answers that protocol too.
"""

import base64
import errno
import http.server
import json
import threading
import zipfile

import pytest

from dcgan.config import Config
from dcgan.data.pipeline import load_real_images
from dcgan.data.download import CREDENTIALS_HINT, MARKER, download_celeba
from dcgan.errors import DataError
from dcgan.data.sources import open_source
from test_download import celeba_like_zip

pytest.importorskip("kagglehub")
KAGGLE_TEST_PORT = 7777  # fixed by kagglesdk for KAGGLE_API_ENVIRONMENT=TEST


class KaggleStandIn(http.server.BaseHTTPRequestHandler):
    """Answers kagglehub's dataset calls; optionally demands HTTP basic auth."""

    def log_message(self, *args):
        pass

    def do_POST(self):
        state = self.server.state
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        state["calls"].append((self.path, body, self.headers.get("Authorization")))
        if state["user"] and self.headers.get("Authorization") != state["auth"]:
            return self._reply(401, {"code": 401, "message": "Unauthenticated"})
        if self.path.endswith("/GetDataset"):
            return self._reply(200, {"currentVersionNumber": 2})
        if self.path.endswith("/DownloadDataset"):
            data = state["zip"].read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/zip")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            return self.wfile.write(data)
        if self.path == "/kagglehub/datasets/is_supported":
            return self._reply(200, {})
        if self.path == "/kagglehub/datasets/mount":  # Colab mounts its cached copy
            with zipfile.ZipFile(state["zip"]) as z:
                z.extractall(state["mount"] / body["dataset"])
            return self._reply(200, {"slug": body["dataset"]})
        self._reply(404, {"code": 404, "message": f"no route {self.path}"})

    def _reply(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def kaggle(tmp_path, monkeypatch):
    try:
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", KAGGLE_TEST_PORT), KaggleStandIn)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            pytest.skip(f"port {KAGGLE_TEST_PORT} (kagglesdk's test endpoint) is in use")
        raise
    celeba_like_zip(tmp_path / "celeba.zip")
    httpd.state = {"calls": [], "user": None, "auth": None, "zip": tmp_path / "celeba.zip",
                   "mount": tmp_path / "colab-mount"}
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("KAGGLE_API_ENVIRONMENT", "TEST")
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "kagglehub-cache"))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "no-kaggle-config"))
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "TBE_RUNTIME_ADDR"):
        monkeypatch.delenv(name, raising=False)
    yield httpd.state
    httpd.shutdown()
    httpd.server_close()


def _require_login(state, user="ada", key="s3cret"):
    state["user"] = user
    state["auth"] = "Basic " + base64.b64encode(f"{user}:{key}".encode()).decode()


def test_kagglehub_download_without_a_token_explains_how_to_log_in(kaggle, monkeypatch, tmp_path):
    _require_login(kaggle)
    target = tmp_path / "data" / "celeba"
    with pytest.raises(DataError) as error:
        download_celeba(target)
    message = str(error.value)
    assert "Kaggle refused the CelebA download" in message and CREDENTIALS_HINT in message
    assert "\n" not in message
    assert not (target / MARKER).exists() and not (target / ".kaggle.partial").exists()


def test_kagglehub_download_with_a_token_lands_and_trains(kaggle, monkeypatch, tmp_path):
    _require_login(kaggle)
    monkeypatch.setenv("KAGGLE_USERNAME", "ada")
    monkeypatch.setenv("KAGGLE_KEY", "s3cret")
    target = tmp_path / "data" / "celeba"
    assert download_celeba(target) == target
    paths = [call[0].rsplit("/", 1)[-1] for call in kaggle["calls"]]
    assert paths == ["GetDataset", "DownloadDataset"]
    assert kaggle["calls"][1][1] == {"ownerSlug": "jessicali9530", "datasetSlug": "celeba-dataset",
                                     "datasetVersionNumber": 2}
    assert all(call[2] == kaggle["auth"] for call in kaggle["calls"])
    assert sorted(p.name for p in target.iterdir()) == [MARKER, "img_align_celeba",
                                                        "list_eval_partition.csv"]
    source = open_source(str(target))
    assert source.is_celeba and len(source.entries) == 12
    config = Config.from_preset("demo", image_size=16, g_widths=(32, 16), data=str(target),
                                split="train", cache_dir=str(tmp_path / "cache"))
    faces = load_real_images(config).astype(int)
    assert faces.shape == (8, 16, 16, 3)
    assert (faces[..., 1] > 200).all() and (faces[..., 0] < 60).all()  # the green crop window
    # A re-run asks Kaggle nothing.
    assert download_celeba(target) == target and len(kaggle["calls"]) == 2


def test_colab_uses_kagglehubs_mounted_copy_without_copying(kaggle, monkeypatch, tmp_path):
    monkeypatch.setenv("TBE_RUNTIME_ADDR", f"127.0.0.1:{KAGGLE_TEST_PORT}")
    monkeypatch.setenv("COLAB_CACHE_MOUNT_FOLDER", str(kaggle["mount"]))
    target = tmp_path / "data" / "celeba"
    located = download_celeba(target)
    assert located == kaggle["mount"] / "celeba-dataset"
    assert [call[0] for call in kaggle["calls"]] == ["/kagglehub/datasets/is_supported",
                                                     "/kagglehub/datasets/mount"]
    assert sorted(p.name for p in target.iterdir()) == [MARKER]  # nothing copied
    assert json.loads((target / MARKER).read_text())["path"] == str(located)
    config = Config.from_preset("demo", data=str(located), split="test",
                                cache_dir=str(tmp_path / "cache"))
    assert len(load_real_images(config)) == 2
    assert download_celeba(target) == located and len(kaggle["calls"]) == 2  # re-run: no calls
