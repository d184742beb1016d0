"""Latent editing: a photo into the latent space, face arithmetic, named attribute directions
(dcgan.editing), their commands, and the explorer's named sliders and photo starts."""

import json

import numpy as np
import pytest
from PIL import Image

from conftest import assert_one_line_error
from dcgan.data.attributes import (Labels, check_attributes, demo_labelled_images, read_labels,
                                   write_demo_folder, write_labels)
from dcgan.data.demo_faces import DEMO_ATTRIBUTES, demo_attributes, demo_faces
from dcgan.errors import DataError, DcganError

backends = pytest.mark.backends  # also on JAX and PyTorch (tests/test_backends.py)


# ------------------------------------------------------------------ labels
def test_demo_attributes_are_what_the_faces_were_drawn_with():
    names, labels = demo_attributes(600)
    assert names == list(DEMO_ATTRIBUTES) and labels.shape == (600, len(names))
    assert set(np.unique(labels)) == {-1, 1}
    assert 0.35 < (labels > 0).mean(0).min() and (labels > 0).mean(0).max() < 0.65  # balanced
    assert np.array_equal(demo_attributes(300)[1], labels[:300])  # image i's labels whatever n is
    faces = demo_faces(600, 32).astype(np.float32)
    pale = labels[:, names.index("Pale_Skin")] > 0
    cheek = faces[:, 18:22, 12:20].mean(axis=(1, 2, 3))  # below the eyes, beside the nose
    assert cheek[pale].mean() > cheek[~pale].mean() + 15  # the labels describe these very images


def test_labels_read_in_kaggles_csv_and_the_original_txt_layout(tmp_path):
    csv = write_labels(tmp_path / "list_attr_celeba.csv", ["Smiling", "Male"], ["a.jpg", "b.jpg"],
                       np.array([[1, -1], [-1, 1]]))
    txt = tmp_path / "list_attr_celeba.txt"
    txt.write_text("2\nSmiling Male \n a.jpg  1 -1\nsub/b.jpg -1  1\n")
    for path in (csv, txt):
        labels = read_labels(path)
        assert labels.names == ["Smiling", "Male"] and labels.files == ["a.jpg", "b.jpg"]
        assert labels.values.tolist() == [[1, -1], [-1, 1]]


@pytest.mark.parametrize("text, words", [
    ("image_id,Smiling\na.jpg,2\n", "must be 1 or -1"),
    ("image_id,Smiling\na.jpg,yes\n", "must be 1 or -1"),
    ("image_id,Smiling\na.jpg,1,1\n", "line 2 has 3 fields"),
    ("image_id\n", "header line and at least one"),
])
def test_a_malformed_labels_file_is_one_clear_error(tmp_path, text, words):
    path = tmp_path / "labels.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=words):
        read_labels(path)
    with pytest.raises(DataError, match="no such labels file"):
        read_labels(tmp_path / "missing.csv")


def test_a_column_of_one_value_is_refused_by_name_and_skipped_otherwise():
    labels = Labels(["Smiling", "Bald"], ["a", "b"], np.array([[1, -1], [-1, -1]], np.int8))
    assert check_attributes(labels, None, "f.csv") == ["Smiling"]
    with pytest.raises(DataError, match="'Bald' is -1 for every image"):
        check_attributes(labels, ["Bald"], "f.csv")
    with pytest.raises(DataError, match="no attribute 'Eyeglasses'; it has Smiling, Bald"):
        check_attributes(labels, ["Eyeglasses"], "f.csv")


# ------------------------------------------------------------------ boundaries
def test_a_linear_boundary_recovers_the_normal_that_made_the_labels():
    from dcgan.editing.directions import linear_boundary

    rng = np.random.default_rng(0)
    z = rng.standard_normal((3000, 16)).astype(np.float32)
    truth = rng.standard_normal(16)
    truth /= np.linalg.norm(truth)
    noisy = z @ truth + 0.3 * rng.standard_normal(3000) > 0.2
    normal, separation = linear_boundary(z, noisy)
    assert abs(np.linalg.norm(normal) - 1) < 1e-5
    assert normal @ truth > 0.97 and separation > 0.85


def test_a_conditional_direction_holds_the_other_attribute_fixed():
    from dcgan.editing.directions import Directions, apply_edits, parse_edits

    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((3, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    found = Directions(["Smiling", "Male", "Young"], vectors, {}, {})
    held = found.vector("Smiling|Male")
    assert abs(held @ vectors[1]) < 1e-6 and held @ vectors[0] > 0.5
    both = found.vector("Smiling | Male, Young")
    assert max(abs(both @ vectors[1]), abs(both @ vectors[2])) < 1e-6
    assert parse_edits("Smiling|Male,Young=+2,Male=-1") == {"Smiling|Male,Young": 2.0, "Male": -1.0}
    z = np.zeros((2, 8), np.float32)
    assert np.allclose(apply_edits(z, found, {"Smiling": 2, "Male": -1}), 2 * vectors[0] - vectors[1])
    for bad, words in [("Smiling", "NAME=AMOUNT"), ("Smiling=x", "'x' is not a number"),
                       ("=2", "NAME=AMOUNT")]:
        with pytest.raises(DcganError, match=words):
            parse_edits(bad)
    with pytest.raises(DcganError, match="no direction 'Frowning'; this run has Smiling, Male, Young"):
        found.vector("Frowning")


# ------------------------------------------------------------------ arithmetic
@pytest.mark.parametrize("expression, words", [
    ("", "empty expression"), ("3 + + 4", "two operators in a row"), ("3 4", r"without \+ or -"),
    ("3 -", "ends with an operator"), ("3 + Frowning", "term 'Frowning': not a seed"),
    ("1-40", "1 to 16 seeds"), ("3 + nothere.npy", "no such latent file"),
])
def test_a_malformed_expression_is_one_clear_error(trained_tiny_run, expression, words):
    from dcgan.editing.arithmetic import face_arithmetic

    with pytest.raises(DcganError, match=words):
        face_arithmetic(trained_tiny_run, expression.split(" ") if expression else [], out=None)


@backends
def test_arithmetic_adds_the_mean_latents_of_its_terms(trained_tiny_run, tmp_path):
    from dcgan.editing.arithmetic import face_arithmetic, split_expression
    from dcgan.outputs.sampling import seed_latents

    assert split_expression("- 3,17 + 2*Smiling|Male - 0.5*me.npy") == [
        (-1.0, "3,17"), (2.0, "Smiling|Male"), (-0.5, "me.npy")]
    latent_dim = 32
    np.save(tmp_path / "me.npy", np.full(latent_dim, 0.5, np.float32))
    result = face_arithmetic(trained_tiny_run, ["smiling woman", "-", "5,6,7", "+", "8-10",
                                                "+", f"2*{tmp_path / 'me.npy'}"],
                             defines={"smiling woman": "3,17,41"}, out=tmp_path / "sum.png",
                             variations=3)
    a, b, c = (seed_latents(s, latent_dim).mean(0) for s in ([3, 17, 41], [5, 6, 7], [8, 9, 10]))
    assert np.allclose(result.latent, a - b + c + 1.0, atol=1e-5)
    assert result.variations.shape == (3, 16, 16, 3) and not np.allclose(result.variations[0], result.image)
    picture = np.asarray(Image.open(tmp_path / "sum.png"))
    assert picture.shape[0] == 5 * (64 + 4) + 4  # a row per term and the result's


# ------------------------------------------------------------------ projection
def _generated_photos(run, tmp_path, count):
    from dcgan.outputs.sampling import generate_images, latents_for, load_generator

    generator = load_generator(run)
    faces = generate_images(generator, latents_for(count, int(generator.input_shape[-1]), 99))
    return generator, faces


@backends
def test_projecting_a_generated_face_recovers_its_image(trained_tiny_run, tmp_path):
    from dcgan.editing.projection import ProjectionSettings, load_discriminator, project_images
    from dcgan.outputs.sampling import generator_file

    generator, faces = _generated_photos(trained_tiny_run, tmp_path, 3)
    discriminator = load_discriminator(generator_file(trained_tiny_run))
    assert discriminator is not None
    found = project_images(generator, faces, discriminator, ProjectionSettings(steps=150, starts=2))
    assert found.psnr.min() > 25, found.psnr  # the bound, at 16x16
    random = np.sqrt(np.mean(np.square(faces[:, None] - found.frames[0][None]).reshape(3, 3, -1), -1))
    assert found.distances.max() < 0.5 * random.min()  # far better than where the search started
    assert found.latents.shape == (3, 32) and len(found.frames) > 2
    # A lone generator file has no discriminator beside it: pixels alone find the face too.
    alone = project_images(generator, faces[:1], None, ProjectionSettings(steps=150, starts=2))
    assert alone.psnr[0] > 25, alone.psnr


def test_project_writes_latents_pictures_and_gifs(cli, trained_tiny_run, tmp_path):
    photos = []
    for i, face in enumerate(demo_faces(66, 64)[-2:]):  # demo faces past the run's training set
        photos += ["--image", str(tmp_path / f"face{i}.png")]
        Image.fromarray(face).save(tmp_path / f"face{i}.png")
    result = cli("project", "--checkpoint", str(trained_tiny_run), *photos, "--out", "found",
                 "--steps", "30", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "face0.png: distance" in result.stdout
    summary = json.loads((tmp_path / "found" / "projection.json").read_text())
    assert [p["name"] for p in summary["photos"]] == ["face0", "face1"]
    assert summary["reference_distance"] > 0  # the run's own images, projected the same way
    assert np.load(tmp_path / "found" / "face0.npy").shape == (32,)
    assert Image.open(tmp_path / "found" / "face1.png").size == (2 * 128, 128)  # photo | found
    assert Image.open(tmp_path / "found" / "face1.gif").n_frames > 2
    assert not any(p["far"] for p in summary["photos"])
    flag = np.zeros((64, 64, 3), np.uint8)  # magenta | green: nothing a face generator draws
    flag[:, :32], flag[:, 32:] = (255, 0, 255), (0, 255, 0)
    Image.fromarray(flag).save(tmp_path / "flag.png")
    result = cli("project", "--checkpoint", str(trained_tiny_run), "--image", "flag.png",
                 "--out", "found", "--steps", "30", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "flag.png: not found well" in result.stdout


def test_project_refuses_bad_photos_in_one_line(cli, trained_tiny_run, tmp_path):
    (tmp_path / "notes.png").write_text("not a picture")
    Image.fromarray(np.zeros((6, 6, 3), np.uint8)).save(tmp_path / "tiny.png")
    Image.fromarray(np.zeros((40, 30, 3), np.uint8)).save(tmp_path / "small.png")
    run = str(trained_tiny_run)
    for args, words in [(["--image", "notes.png"], ("notes.png", "not an image")),
                        (["--image", "tiny.png"], ("tiny.png", "too small")),
                        (["--image", "small.png", "--crop", "64"], ("small.png", "smaller than the 64 px")),
                        (["--image", "gone.png"], ("gone.png", "no such photo")),
                        (["--image", "small.png", "--steps", "0"], ("--steps 0",)),
                        (["--image", "small.png", "--pixel-weight", "0", "--feature-weight", "0"],
                         ("nothing to match",))]:
        assert_one_line_error(cli("project", "--checkpoint", run, *args, cwd=tmp_path), *words)


def test_a_celeba_runs_crop_is_the_same_share_of_any_photo():
    from dcgan.config import Config
    from dcgan.editing.projection import photo_crop

    celeba = Config.from_preset("seed128", data="data/celeba/img_align_celeba")
    assert photo_crop(celeba, 178) == 140 and photo_crop(celeba, 356) == 280
    assert photo_crop(Config.from_preset("demo"), 500) == 500  # whole images
    assert photo_crop(Config.from_preset("demo", crop=48), 500) == 48  # the pixels it was given


# ------------------------------------------------------------------ directions
@backends
def test_directions_are_learned_saved_and_used_by_name(tiny_run, tmp_path):
    from dcgan.editing.directions import Directions, directions_file, learn_directions, load_directions
    from dcgan.outputs.sampling import generate, seed_latents, generate_images, load_generator

    found = learn_directions(tiny_run, images=512, samples=1024, epochs=2)
    assert directions_file(tiny_run) == tiny_run / "directions.npz"
    loaded = load_directions(tiny_run)
    assert isinstance(loaded, Directions) and loaded.names == found.names and len(found.names) >= 2
    assert np.allclose(np.linalg.norm(loaded.vectors, axis=1), 1, atol=1e-5)
    assert all(0 <= loaded.accuracy[n] <= 1 for n in loaded.names)
    assert (tiny_run / "attributes.keras").is_file()
    # generate --edit: every face moved by the same latent offset
    name = found.names[0]
    shift = 2.0 * loaded.vector(name)
    edited = generate(tiny_run, seeds=[4, 5], shift=shift)
    by_hand = generate_images(load_generator(tiny_run), seed_latents([4, 5], 32) + shift)
    assert np.allclose(edited, by_hand, atol=1e-5)


def test_directions_from_a_labels_file_beside_a_folder_of_images(cli, tiny_run, tmp_path):
    labels = write_demo_folder(tmp_path / "faces", n=120, size=16)
    assert (tmp_path / "faces" / "images" / "000120.png").is_file()
    assert read_labels(labels).names == list(DEMO_ATTRIBUTES)
    args = ["directions", "--checkpoint", str(tiny_run), "--images", "120", "--samples", "256",
            "--epochs", "1"]
    result = cli(*args, "--labels", str(labels), "--data", str(tmp_path / "faces" / "images"),
                 "--attributes", "Light_Hair,Pale_Skin", "--out", "d.npz", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Light_Hair: classifier" in result.stdout and (tmp_path / "d.npz").is_file()
    other = tmp_path / "other.csv"
    write_labels(other, ["Smiling"], ["elsewhere.jpg"], np.array([[1]]))
    for extra, words in [(["--labels", str(other), "--data", str(tmp_path / "faces" / "images")],
                          ("none of its 1 file names (e.g. elsewhere.jpg)",)),
                         (["--labels", str(labels), "--data", str(tmp_path / "faces" / "images"),
                           "--attributes", "Eyeglasses"], ("no attribute 'Eyeglasses'",)),
                         (["--labels", str(labels)], ("with the demo data",)),
                         (["--images", "5"], ("at least 20 labelled images",))]:
        assert_one_line_error(cli(*args, *extra, cwd=tmp_path), *words)


def test_edits_and_arithmetic_with_directions_through_the_command_line(cli, tiny_run, tmp_path):
    from dcgan.editing.directions import Directions

    rng = np.random.default_rng(2)
    vectors = rng.standard_normal((2, 32)).astype(np.float32)
    Directions(["Smiling", "Bangs"], vectors / np.linalg.norm(vectors, axis=1, keepdims=True),
               {"Smiling": 0.9, "Bangs": 0.8}, {}).save(tiny_run / "directions.npz")
    run = str(tiny_run)
    result = cli("generate", "--checkpoint", run, "--n", "4", "--edit", "Smiling=+2,Bangs|Smiling=-1",
                 "--out", "edited.png", cwd=tmp_path)
    assert result.returncode == 0 and "edited Smiling=+2,Bangs|Smiling=-1" in result.stdout
    plain = cli("generate", "--checkpoint", run, "--n", "4", "--out", "plain.png", cwd=tmp_path)
    assert plain.returncode == 0
    assert not np.array_equal(np.asarray(Image.open(tmp_path / "edited.png")),
                              np.asarray(Image.open(tmp_path / "plain.png")))
    result = cli("arithmetic", "--checkpoint", run, "--define", "smiling woman=3,17,41",
                 "smiling woman", "-", "5,6,7", "+", "2*Smiling", "--save-latent", "sum.npy",
                 "--out", "sum.png", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "smiling woman - 5,6,7 + 2*Smiling = result" in result.stdout
    assert np.load(tmp_path / "sum.npy").shape == (32,)
    assert_one_line_error(cli("generate", "--checkpoint", run, "--edit", "Frowning=1", cwd=tmp_path),
                          "no direction 'Frowning'; this run has Smiling, Bangs")
    assert_one_line_error(cli("arithmetic", "--checkpoint", run, "--define", "oops", "3",
                              cwd=tmp_path), "--define oops")
    (tiny_run / "directions.npz").unlink()
    assert_one_line_error(cli("generate", "--checkpoint", run, "--edit", "Smiling=1", cwd=tmp_path),
                          "no attribute directions yet", "python -m dcgan directions")


def test_the_explorer_names_its_sliders_and_starts_from_a_photos_latent(tiny_run):
    from dcgan.apps.explore import FaceExplorer
    from dcgan.editing.directions import Directions

    plain = FaceExplorer(tiny_run)
    assert plain.info()["names"][:2] == ["z0", "z1"]
    vectors = np.eye(32, dtype=np.float32)[[3, 7]]
    Directions(["Smiling", "Bangs"], vectors, {}, {}).save(tiny_run / "directions.npz")
    mine = np.linspace(-1, 1, 32).astype(np.float32)
    explorer = FaceExplorer(tiny_run, starts={"me": mine})
    info = explorer.info()
    assert info["names"] == ["Smiling", "Bangs"] and info["direction_kind"] == "named attribute directions"
    assert info["starts"] == ["me"]
    z = explorer.latent(0, start="me", offsets=[1.5, -1.0])
    expected = mine.copy()
    expected[3] += 1.5
    expected[7] -= 1.0
    assert np.allclose(z[0], expected)
    with pytest.raises(DcganError, match="start 'you': not one of me"):
        explorer.latent(0, start="you")


def test_the_demo_faces_written_as_a_data_set_match_the_built_in_ones(tmp_path):
    labels = write_demo_folder(tmp_path, n=5, size=32)
    images, built_in = demo_labelled_images(5, 32)
    on_disk = read_labels(labels)
    assert on_disk.files == built_in.files and np.array_equal(on_disk.values, built_in.values)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "images" / "000003.png")), images[2])


def test_the_fid_networks_features_join_the_search_when_asked(trained_tiny_run):
    from dcgan.editing.projection import ProjectionSettings, _search_model, fid_features, project_images
    from dcgan.evaluation.inception import fid_inception

    generator, faces = _generated_photos(trained_tiny_run, None, 1)
    inception = fid_inception()  # random weights: the search's wiring, not its quality
    model, _, counts = _search_model(generator, None, inception)
    assert counts == [0, 1] and model.outputs[-1].shape[-1] == 2048
    found = project_images(generator, faces, None, ProjectionSettings(
        steps=2, starts=1, candidates=4, feature_weight=0, inception_weight=1.0), inception)
    assert np.isfinite(found.distances).all()
    assert fid_features(ProjectionSettings(inception_weight=0)) is None
    assert fid_features(ProjectionSettings()) is None  # auto, on a CPU: off
    with pytest.raises(DcganError, match="--inception-weight -2"):
        ProjectionSettings(inception_weight=-2).checked()


def test_the_notebooks_explorer_offers_photo_starts_and_named_sliders(tiny_run):
    import io

    pytest.importorskip("ipywidgets")
    from dcgan.apps.widgets import LatentExplorer
    from dcgan.editing.directions import Directions

    Directions(["Smiling", "Bangs"], np.eye(32, dtype=np.float32)[[3, 7]], {}, {}).save(
        tiny_run / "directions.npz")
    mine = np.linspace(-1, 1, 32).astype(np.float32)
    view = LatentExplorer(tiny_run, starts={"me": mine})
    assert [s.description for s in view.sliders] == ["Smiling", "Bangs"]
    view.start.value = "me"
    view.sliders[0].value = 1.5
    assert view.last_choices["start"] == "me"
    shown = np.asarray(Image.open(io.BytesIO(view.image.value)))
    assert np.array_equal(shown, view.explorer.face(0, start="me", offsets=[1.5, 0.0]))
