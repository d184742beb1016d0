"""CelebA and archive downloads through the real code, from an HTTP server on 127.0.0.1."""

import functools
import http.server
import io
import os
import subprocess
import sys
import tarfile
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dcgan.config import Config
from dcgan.data.pipeline import load_real_images, make_dataset
from dcgan.data.download import MARKER, download_celeba, extract_archive
from dcgan.errors import DataError
from dcgan.data.sources import open_source

ROOT = Path(__file__).resolve().parents[1]


def celeba_like_zip(path: Path, count: int = 12):
    """Kaggle's CelebA layout: 178x218 JPEGs twice-nested, plus list_eval_partition.csv.

    Each face is green inside the centred 108x108 crop window and red outside it.
    """
    rows = ["image_id,partition"]
    with zipfile.ZipFile(path, "w") as z:
        for i in range(1, count + 1):
            pixels = np.zeros((218, 178, 3), np.uint8)
            pixels[..., 0] = 255
            pixels[55:163, 35:143] = (0, 255, 0)
            buffer = io.BytesIO()
            Image.fromarray(pixels).save(buffer, format="JPEG", quality=95)
            name = f"{i:06d}.jpg"
            z.writestr(f"img_align_celeba/img_align_celeba/{name}", buffer.getvalue())
            rows.append(f"{name},{0 if i <= 8 else 1 if i <= 10 else 2}")
        z.writestr("list_eval_partition.csv", "\n".join(rows) + "\n")


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path == "/short.zip":  # promises more bytes than it sends, then hangs up
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"PK" + b"\0" * 1000)
            self.wfile.flush()
            self.close_connection = True
            return
        if self.path == "/slow.zip":  # the served file in slices, slowly: downloads overlap
            body = (Path(self.directory) / "celeba.zip").read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            for start in range(0, len(body), len(body) // 8 + 1):
                self.wfile.write(body[start:start + len(body) // 8 + 1])
                self.wfile.flush()
                threading.Event().wait(0.05)
            return
        super().do_GET()


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_celeba_zip_over_http_is_downloaded_cropped_and_batched(server, tmp_path):
    root, url = server
    celeba_like_zip(root / "celeba.zip")
    target = tmp_path / "data" / "celeba"
    download_celeba(target, source=f"{url}/celeba.zip", progress=False)
    assert (target / MARKER).exists()
    assert len(list((target / "img_align_celeba" / "img_align_celeba").glob("*.jpg"))) == 12
    assert not [p for p in target.iterdir() if ".partial" in p.name]

    source = open_source(str(target))
    assert source.is_celeba and len(source.entries) == 12
    config = Config.from_preset("demo", image_size=16, g_widths=(32, 16), batch_size=4,
                                data=str(target), cache_dir=str(tmp_path / "cache"))
    dataset, count = make_dataset(config)
    batch = next(iter(dataset)).numpy()
    assert count == 12 and batch.shape == (4, 16, 16, 3)
    assert batch.min() >= -1 and batch.max() <= 1
    # The automatic CelebA crop (108 px, centred) keeps only the green face window.
    faces = load_real_images(config).astype(int)
    assert faces[..., 1].min() > 200 and faces[..., 0].max() < 60
    # The official split, from list_eval_partition.csv.
    assert len(load_real_images(config.replace(split="train"))) == 8
    assert len(load_real_images(config.replace(split="test"))) == 2


def test_rerun_skips_finished_work(server, tmp_path):
    root, url = server
    celeba_like_zip(root / "celeba.zip", count=3)
    target = tmp_path / "celeba"
    download_celeba(target, source=f"{url}/celeba.zip", progress=False)
    (root / "celeba.zip").unlink()  # a second download would now fail
    assert download_celeba(target, source=f"{url}/celeba.zip", progress=False) == target


def test_a_cut_download_leaves_nothing_that_looks_complete(server, tmp_path):
    _, url = server
    target = tmp_path / "celeba"
    with pytest.raises(DataError, match="short.zip"):
        download_celeba(target, source=f"{url}/short.zip", progress=False)
    assert sorted(p.name for p in target.iterdir()) == []


def test_a_web_page_served_as_the_zip_is_named_and_not_kept(server, tmp_path):
    root, url = server
    # What Google Drive sends when its quota is exceeded, under the archive's name.
    (root / "img_align_celeba.zip").write_text(
        "<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head>")
    target = tmp_path / "celeba"
    with pytest.raises(DataError, match=r"img_align_celeba.zip: the server sent a web page \(HTML\)"):
        download_celeba(target, source=f"{url}/img_align_celeba.zip", progress=False)
    assert not (target / MARKER).exists() and not (target / "img_align_celeba.zip").exists()
    assert not [p for p in target.iterdir() if ".partial" in p.name]
    # A page saved earlier by another tool, given with --from: named too.
    saved = tmp_path / "saved.zip"
    saved.write_text("<html><body>Quota exceeded</body></html>")
    with pytest.raises(DataError, match=r"saved.zip: a web page \(HTML\), not an archive"):
        download_celeba(tmp_path / "other", source=str(saved), progress=False)


def test_checksum_mismatch_is_refused(server, tmp_path):
    root, url = server
    celeba_like_zip(root / "celeba.zip", count=2)
    with pytest.raises(DataError, match="sha256"):
        download_celeba(tmp_path / "c", source=f"{url}/celeba.zip", sha256="0" * 64, progress=False)
    assert not (tmp_path / "c" / "celeba.zip").exists() and not (tmp_path / "c" / MARKER).exists()


def test_a_zip_file_can_be_trained_on_without_extracting(tmp_path):
    celeba_like_zip(tmp_path / "celeba.zip", count=6)
    source = open_source(str(tmp_path / "celeba.zip"))
    assert source.kind == "archive" and source.is_celeba
    config = Config.from_preset("demo", image_size=16, g_widths=(32, 16), batch_size=2,
                                data=str(tmp_path / "celeba.zip"), cache_dir=str(tmp_path / "cache"))
    assert load_real_images(config)[..., 1].min() > 200
    assert len(load_real_images(config.replace(split="train"))) == 6


def test_path_traversal_entries_are_refused(tmp_path):
    target = tmp_path / "deep" / "target"
    target.mkdir(parents=True)
    with zipfile.ZipFile(tmp_path / "evil.zip", "w") as z:
        z.writestr("../escaped.txt", "no")
        z.writestr("/absolute.txt", "no")
        z.writestr("ok/../../../escaped2.txt", "no")
        z.writestr("ok/fine.txt", "yes")
        link = zipfile.ZipInfo("ok/link")
        link.external_attr = (0o120777 << 16)
        z.writestr(link, "/etc/passwd")
    refused = extract_archive(tmp_path / "evil.zip", target)
    assert sorted(refused) == sorted(["../escaped.txt", "/absolute.txt",
                                      "ok/../../../escaped2.txt", "ok/link"])
    assert (target / "ok" / "fine.txt").read_text() == "yes"
    assert not (target / "ok" / "link").exists()
    outside = [p for p in tmp_path.rglob("*") if "escaped" in p.name or p.name == "absolute.txt"]
    assert outside == []

    with tarfile.open(tmp_path / "evil.tar", "w") as t:
        for name, kind in (("../up.txt", tarfile.REGTYPE), ("good.txt", tarfile.REGTYPE),
                           ("sym", tarfile.SYMTYPE), ("hard", tarfile.LNKTYPE)):
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = "/etc/passwd" if kind != tarfile.REGTYPE else ""
            data = b"x" if kind == tarfile.REGTYPE else b""
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    refused = extract_archive(tmp_path / "evil.tar", target)
    assert sorted(refused) == ["../up.txt", "hard", "sym"]
    assert (target / "good.txt").exists() and not (tmp_path / "deep" / "up.txt").exists()


def test_cli_download_from_url(server, tmp_path):
    root, url = server
    celeba_like_zip(root / "celeba.zip", count=2)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "dcgan", "download", "celeba", "--from", f"{url}/celeba.zip",
               "--to", "data/celeba"]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "--data data/celeba" in result.stdout
    assert (tmp_path / "data/celeba" / MARKER).exists()
    missing = subprocess.run([*command[:-4], "--from", "nope.zip", "--to", "x"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and missing.stderr.strip() == (
        "error: nope.zip: no such file; give a .zip/.tar path or an http(s) URL")


def test_two_downloads_of_one_file_at_once_each_finish_intact(server, tmp_path):
    """Each download writes its own partial file (two notebooks or workers at once)."""
    import hashlib

    from dcgan.data.download import fetch

    root, url = server
    celeba_like_zip(root / "celeba.zip", count=6)
    digest = hashlib.sha256((root / "celeba.zip").read_bytes()).hexdigest()
    folder = tmp_path / "downloads"
    folder.mkdir()
    results, errors = [], []

    def download():
        try:
            results.append(fetch(f"{url}/slow.zip", folder, sha256=digest, progress=False))
        except Exception as e:  # noqa: BLE001 - collected for the assertion below
            errors.append(e)

    threads = [threading.Thread(target=download) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == [] and len(results) == 2
    assert hashlib.sha256((folder / "slow.zip").read_bytes()).hexdigest() == digest
    assert [p.name for p in folder.iterdir()] == ["slow.zip"]


def test_a_download_never_removes_what_the_user_keeps_in_the_target(server, tmp_path):
    root, url = server
    celeba_like_zip(root / "celeba.zip", count=3)
    target = tmp_path / "celeba"
    mine = target / "img_align_celeba" / "my_notes.txt"  # a same-named folder of the user's
    mine.parent.mkdir(parents=True)
    mine.write_text("keep me")
    download_celeba(target, source=f"{url}/celeba.zip", progress=False)
    assert mine.read_text() == "keep me"
    assert len(list((target / "img_align_celeba" / "img_align_celeba").glob("*.jpg"))) == 3
    # a file of the user's where the archive has another: refused in one line, kept as it was
    other = tmp_path / "other"
    (other / "list_eval_partition.csv").parent.mkdir(parents=True)
    (other / "list_eval_partition.csv").write_text("my own split\n")
    with pytest.raises(DataError, match="already exists and differs"):
        download_celeba(other, source=f"{url}/celeba.zip", progress=False)
    assert (other / "list_eval_partition.csv").read_text() == "my own split\n"
    assert not (other / MARKER).exists()
