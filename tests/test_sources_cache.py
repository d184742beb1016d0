"""Image sources and the decoded-image cache: every format, broken files, interrupted builds."""

import io
import json
import logging
import os
import signal
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, features

from dcgan.data.cache import cache_key, open_cache
from dcgan.config import Config
from dcgan.data.pipeline import load_real_images, make_dataset
from dcgan.errors import DataError
from dcgan.data.sources import open_source

ROOT = Path(__file__).resolve().parents[1]


def _solid(colour, size=(24, 20), mode="RGB"):
    return Image.new("RGB", size, colour).convert(mode) if mode != "RGB" else Image.new(mode, size, colour)


def make_mixed_folder(folder: Path):
    """Good images in every supported format and mode, broken files, and things to ignore.

    Returns (good: {name: expected mean RGB}, broken: [names]).
    """
    folder.mkdir(parents=True)
    good = {}

    def save(name, image, expected, **kwargs):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path, **kwargs)
        good[name] = expected

    save("rgb.jpg", _solid((200, 40, 40)), (200, 40, 40), quality=95)
    save("grey.jpg", _solid((90, 90, 90), mode="L"), (90, 90, 90), quality=95)
    cmyk = _solid((30, 160, 60)).convert("CMYK")
    save("cmyk.jpg", cmyk, tuple(np.asarray(cmyk.convert("RGB")).reshape(-1, 3).mean(0)), quality=95)
    rgba = Image.new("RGBA", (20, 20), (10, 20, 230, 128))
    save("alpha.png", rgba, (10, 20, 230))
    save("palette.png", _solid((250, 200, 0)).convert("P"), (250, 200, 0))
    sixteen = Image.fromarray(np.full((16, 16), 40000, np.uint16))
    save("deep16.png", sixteen, (40000 / 65535 * 255,) * 3)
    save("bitmap.bmp", _solid((0, 120, 120)), (0, 120, 120))
    frames = [_solid((220, 0, 220)).convert("P"), _solid((0, 0, 0)).convert("P")]
    frames[0].save(folder / "anim.gif", save_all=True, append_images=frames[1:], duration=50)
    good["anim.gif"] = (220, 0, 220)  # the first frame
    if features.check("webp"):
        save("leaf.webp", _solid((60, 180, 90)), (60, 180, 90), lossless=True)
    save("UPPER.JPG", _solid((120, 60, 200)), (120, 60, 200), quality=95)
    save("nested/deeper/gesicht_äöü 顔.png", _solid((5, 250, 5)), (5, 250, 5))

    jpeg = io.BytesIO()
    _solid((1, 2, 3), size=(64, 64)).save(jpeg, format="JPEG")
    broken = {
        "truncated.jpg": jpeg.getvalue()[: len(jpeg.getvalue()) // 3],
        "empty.png": b"",
        "mislabelled.jpg": b"this is a text file, not a JPEG\n" * 4,
        "noise.png": np.random.default_rng(0).integers(0, 256, 500, dtype=np.uint8).tobytes(),
    }
    for name, data in broken.items():
        (folder / name).write_bytes(data)
    (folder / ".hidden.png").write_bytes(b"")
    (folder / "readme.txt").write_text("not an image")
    return good, sorted(broken)


def _config(tmp_path, data, **changes):
    return Config.from_preset("demo", image_size=16, g_widths=(32, 16), batch_size=4, data=str(data),
                              cache_dir=str(tmp_path / "cache"), **changes)


def test_every_format_is_used_and_every_broken_file_is_named(tmp_path, caplog):
    good, broken = make_mixed_folder(tmp_path / "mixed")
    source = open_source(str(tmp_path / "mixed"))
    assert len(source.entries) == len(good) + len(broken)  # hidden and non-image files ignored
    caplog.set_level(logging.WARNING, logger="dcgan.data.pipeline")
    cache = open_cache(source, 16, 0, tmp_path / "cache", progress=False)
    assert cache.count == len(good)
    assert sorted(Path(name).name for name, _ in cache.meta["skipped"]) == broken
    for name in broken:  # each named once in a warning...
        assert sum(f"skipping {tmp_path / 'mixed' / name}" in r.message for r in caplog.records) == 1
    summary = [r.message for r in caplog.records if r.message.startswith("skipped ")]
    assert summary == [summary[0]] and summary[0].startswith(f"skipped {len(broken)} of "
                                                             f"{len(good) + len(broken)} files: ")
    # ...and every good image decoded to its own colour, as 8-bit RGB.
    means = cache.read(np.arange(cache.count)).reshape(cache.count, -1, 3).mean(axis=1)
    for expected in good.values():
        assert np.abs(means - np.asarray(expected)).max(axis=1).min() < 12, expected


def test_training_runs_through_a_folder_with_broken_files(tmp_path):
    make_mixed_folder(tmp_path / "mixed")
    config = _config(tmp_path, tmp_path / "mixed")
    dataset, count = make_dataset(config)
    batches = [b.numpy() for b in dataset.take(3 * (count // 4))]  # three epochs, nothing fails
    assert all(b.shape == (4, 16, 16, 3) for b in batches)
    assert all(b.min() >= -1 and b.max() <= 1 for b in batches)


def test_archives_and_globs_are_sources(tmp_path):
    make_mixed_folder(tmp_path / "mixed")
    with zipfile.ZipFile(tmp_path / "faces.zip", "w") as z:
        for path in sorted((tmp_path / "mixed").rglob("*")):
            if path.is_file():
                z.write(path, f"faces/{path.relative_to(tmp_path / 'mixed')}")
    with tarfile.open(tmp_path / "faces.tar.gz", "w:gz") as t:
        t.add(tmp_path / "mixed", arcname="faces")
    folder_count = open_cache(open_source(str(tmp_path / "mixed")), 16, 0, tmp_path / "c",
                              progress=False).count
    for archive in ("faces.zip", "faces.tar.gz"):
        source = open_source(str(tmp_path / archive))
        assert source.kind == "archive"
        assert open_cache(source, 16, 0, tmp_path / "c", progress=False).count == folder_count
    globbed = open_source(str(tmp_path / "mixed" / "*.png"))
    assert sorted(Path(e).name for e in globbed.entries) == [
        "alpha.png", "deep16.png", "empty.png", "noise.png", "palette.png"]


def test_a_source_with_no_usable_image_fails_before_training(tmp_path):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "bad" / "b.png").write_bytes(b"")
    with pytest.raises(DataError, match=r"bad: 0 usable image\(s\)"):
        make_dataset(_config(tmp_path, tmp_path / "bad"))


def test_the_cache_is_reused_and_rebuilt_when_the_source_changes(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(6):
        _solid((i * 40, 0, 0)).save(folder / f"{i}.png")
    config = _config(tmp_path, folder)
    first = load_real_images(config)
    assert len(list((tmp_path / "cache").glob("*.u8"))) == 1
    assert np.array_equal(first, load_real_images(config))  # reused
    assert len(list((tmp_path / "cache").glob("*.u8"))) == 1
    _solid((0, 255, 0)).save(folder / "6.png")
    assert len(load_real_images(config)) == 7  # a new file: a new cache
    assert len(load_real_images(config.replace(image_size=32, g_widths=(64, 32, 16)))) == 7
    assert len(list((tmp_path / "cache").glob("*.u8"))) == 3


BUILD_SCRIPT = """
import sys
from dcgan.data.cache import open_cache
from dcgan.data.sources import open_source
open_cache(open_source(sys.argv[1]), 32, 0, sys.argv[2], progress=False)
"""


def test_a_build_killed_midway_does_not_break_the_next_run(tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(1500):
        Image.fromarray(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)).save(folder / f"{i:04d}.png")
    cache_root = tmp_path / "cache"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    process = subprocess.Popen([sys.executable, "-c", BUILD_SCRIPT, str(folder), str(cache_root)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        partials = list(cache_root.glob("*.partial-*"))
        if partials and partials[0].stat().st_size > 0:
            break
        assert process.poll() is None, "the build finished before it could be interrupted"
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert list(cache_root.glob("*.partial-*")), "the kill should leave a partial file"
    assert not list(cache_root.glob("*.u8")) and not list(cache_root.glob("*.json"))

    source = open_source(str(folder))
    cache = open_cache(source, 32, 0, cache_root, progress=False)
    assert cache.count == 1500
    assert not list(cache_root.glob("*.partial-*"))  # the stale partial is gone
    assert cache.path.name == f"{cache_key(source, 32, 0)}.u8"
    expected = np.asarray(Image.open(folder / "0000.png").resize((32, 32), Image.BILINEAR))
    assert np.abs(cache.read([0])[0].astype(int) - expected).mean() < 4


def test_a_damaged_cache_file_is_rebuilt(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(4):
        _solid((0, i * 60, 0)).save(folder / f"{i}.png")
    source = open_source(str(folder))
    cache = open_cache(source, 16, 0, tmp_path / "cache", progress=False)
    with open(cache.path, "r+b") as f:
        f.truncate(100)
    again = open_cache(open_source(str(folder)), 16, 0, tmp_path / "cache", progress=False)
    assert again.count == 4 and again.path.stat().st_size == 4 * 16 * 16 * 3
    assert json.loads(again.path.with_suffix(".json").read_text())["count"] == 4


def _four_images(folder):
    folder.mkdir(parents=True)
    for i in range(4):
        _solid((i * 60, 30, 30)).save(folder / f"{i}.png")


def _skipped(cache):
    return {Path(name).name: reason for name, reason in cache.meta["skipped"]}


def test_broken_links_and_vanished_files_are_skipped_and_named(tmp_path, caplog):
    folder = tmp_path / "imgs"
    _four_images(folder)
    (folder / "gone.png").symlink_to(tmp_path / "nowhere.png")  # a dangling link
    (folder / "loop.jpg").symlink_to(folder / "loop.jpg")  # a link to itself: stat fails
    (folder / "later.png").write_bytes((folder / "0.png").read_bytes())
    source = open_source(str(folder))
    (folder / "later.png").unlink()  # vanishes between listing and reading
    caplog.set_level(logging.WARNING, logger="dcgan.data.pipeline")
    cache = open_cache(source, 16, 0, tmp_path / "cache", progress=False)
    assert cache.count == 4
    skipped = _skipped(cache)
    assert sorted(skipped) == ["gone.png", "later.png", "loop.jpg"]
    assert "missing" in skipped["gone.png"] and "missing" in skipped["later.png"]
    assert [r.message for r in caplog.records if r.message.startswith("skipped ")] == [
        "skipped 3 of 7 files: gone.png, later.png, loop.jpg"]
    # The same through a glob and through a tar archive holding a link that leads nowhere.
    globbed = open_cache(open_source(str(folder / "*.png")), 16, 0, tmp_path / "cache", progress=False)
    assert globbed.count == 4 and sorted(_skipped(globbed)) == ["gone.png"]
    with tarfile.open(tmp_path / "faces.tar", "w") as t:
        for i in range(4):
            t.add(folder / f"{i}.png", arcname=f"faces/{i}.png")
        link = tarfile.TarInfo("faces/dangling.png")
        link.type, link.linkname = tarfile.SYMTYPE, "faces/not-there.png"
        t.addfile(link)
    archived = open_cache(open_source(str(tmp_path / "faces.tar")), 16, 0, tmp_path / "cache",
                          progress=False)
    assert archived.count == 4 and sorted(_skipped(archived)) == ["dangling.png"]


def test_images_far_below_the_training_size_are_skipped_unless_asked(tmp_path, caplog):
    folder = tmp_path / "imgs"
    _four_images(folder)  # 24x20: short side 20
    _solid((9, 9, 9), size=(1, 1)).save(folder / "dot.png")
    _solid((9, 9, 9), size=(40, 7)).save(folder / "sliver.jpg", quality=95)
    _solid((9, 9, 9), size=(8, 8)).convert("CMYK").save(folder / "tiny-cmyk.jpg")  # Pillow's path
    caplog.set_level(logging.WARNING, logger="dcgan.data.pipeline")
    config = _config(tmp_path, folder).replace(image_size=32, g_widths=(64, 32, 16))  # floor 8
    images = load_real_images(config)
    assert len(images) == 5  # the four 24x20 images and the 8x8 one (exactly at the floor)
    cache = open_cache(open_source(str(folder)), 32, 0, tmp_path / "cache", progress=False, min_side=8)
    assert sorted(_skipped(cache)) == ["dot.png", "sliver.jpg"]
    assert "too small (1 px" in _skipped(cache)["dot.png"]
    assert "--min-image-side 0" in _skipped(cache)["dot.png"]
    assert any(r.message.startswith("skipped 2 of 7 files: ") for r in caplog.records)
    assert len(load_real_images(config.replace(min_image_side=0))) == 7  # kept when asked
    assert len(load_real_images(config.replace(min_image_side=21))) == 0  # every short side < 21


def test_an_older_format_cache_is_removed_when_its_successor_is_built(tmp_path, caplog):
    folder = tmp_path / "imgs"
    _four_images(folder)
    root = tmp_path / "cache"
    cache = open_cache(open_source(str(folder)), 16, 0, root, progress=False)
    # Make it look like a cache written by the previous format (version 1, another key).
    meta = json.loads(cache.path.with_suffix(".json").read_text())
    (root / "old.json").write_text(json.dumps({**meta, "version": 1}))
    cache.path.rename(root / "old.u8")
    cache.path.with_suffix(".json").unlink()
    other = dict(meta, version=1, source="elsewhere")  # another source's old cache stays
    (root / "other.json").write_text(json.dumps(other))
    (root / "other.u8").write_bytes(b"\0" * 10)
    caplog.set_level(logging.INFO, logger="dcgan.data.pipeline")
    rebuilt = open_cache(open_source(str(folder)), 16, 0, root, progress=False)
    assert rebuilt.count == 4
    assert not (root / "old.u8").exists() and not (root / "old.json").exists()
    assert (root / "other.u8").exists() and (root / "other.json").exists()
    assert any("removed old.u8, an older-format cache" in r.getMessage() for r in caplog.records)


def test_pillow_decoder_for_jax_and_torch_agrees_with_tensorflows(tmp_path):
    from dcgan.backends.tensorflow import decode_all as decode_all_with_tensorflow
    from dcgan.data.decode import decode_all_with_pillow
    from dcgan.data.demo_faces import demo_faces

    for i, face in enumerate(demo_faces(12, 160, seed=1)):  # CelebA-shaped JPEGs and PNGs
        Image.fromarray(face).resize((178, 218)).save(
            tmp_path / f"{i:03d}.{'jpg' if i % 3 else 'png'}", quality=95)
    source = open_source(str(tmp_path), "all")
    for size, crop in [(64, 108), (32, 0)]:
        pillow = list(decode_all_with_pillow(source, size, crop, threads=3))
        tensorflow = list(decode_all_with_tensorflow(source, size, crop))
        assert [i for i, _, _ in pillow] == [i for i, _, _ in tensorflow] == list(range(12))
        assert [s for _, _, s in pillow] == [s for _, _, s in tensorflow] == [178] * 12
        for (_, a, _), (_, b, _) in zip(pillow, tensorflow):
            assert a.shape == b.shape == (size, size, 3)
            assert np.abs(a.astype(int) - b.astype(int)).mean() < 5  # of 255 levels (a shifted crop: > 20)


def test_each_file_that_fails_is_decoded_once_and_named_once(tmp_path, monkeypatch, caplog):
    import dcgan.data.decode

    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.full((20, 20, 3), 60 * i, np.uint8)).save(folder / f"good{i}.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    (folder / "text.png").write_bytes(b"hello")
    calls = []
    pillow = dcgan.data.decode.decode_one_with_pillow

    def counting(data, size, crop):
        calls.append(bytes(data[:8]))
        return pillow(data, size, crop)

    monkeypatch.setattr(dcgan.data.decode, "decode_one_with_pillow", counting)
    caplog.set_level(logging.WARNING, logger="dcgan.data.pipeline")
    cache = open_cache(open_source(str(folder)), 16, 0, tmp_path / "cache", progress=False)
    assert cache.count == 3
    assert calls.count(b"hello") == 1 and calls.count(b"\xff\xd8\xff not ") == 1
    assert sorted(Path(name).name for name, _ in cache.meta["skipped"]) == ["broken.jpg", "text.png"]
    named = [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipping")]
    assert len(named) == 2


def test_pixels_from_another_decoder_get_a_cache_of_their_own(tmp_path, monkeypatch):
    """TensorFlow's and Pillow's resizes differ a little: a cache is reused only by the decoder
    that made it (a run moved from TensorFlow to JAX decodes again, with Pillow)."""
    from dcgan import backend

    folder = tmp_path / "imgs"
    _four_images(folder)
    root = tmp_path / "cache"
    first = open_cache(open_source(str(folder)), 16, 0, root, progress=False)
    assert open_cache(open_source(str(folder)), 16, 0, root, progress=False).path == first.path
    monkeypatch.setattr(backend, "decode_all", None)  # as on JAX and PyTorch: Pillow only
    second = open_cache(open_source(str(folder)), 16, 0, root, progress=False)
    assert second.path != first.path and len(list(root.glob("*.u8"))) == 2
    assert second.meta["decoder"] == "pillow" != first.meta["decoder"]
