import numpy as np
import pytest
from PIL import Image

from dcgan.backends.pydataset import ImageBatches
from dcgan.data.pipeline import BatchReader, load_real_images, make_dataset
from dcgan.data.sources import open_source
from dcgan.errors import DataError


def first_batches(dataset, n: int) -> list[np.ndarray]:
    """The first `n` batches of a `batches()` stream as numpy arrays (either kind)."""
    if isinstance(dataset, ImageBatches):
        return [dataset[b] for b in range(n)]
    return [b.numpy() for b in dataset.take(n)]


def _write_images(folder, count, size=(40, 24)):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"img{i}.{'png' if i % 2 else 'jpg'}")


def test_demo_dataset_batches_in_unit_range(tiny_demo):
    dataset, count = make_dataset(tiny_demo)
    assert count == tiny_demo.demo_images
    batch = first_batches(dataset, 1)[0]
    assert batch.shape == (16, 16, 16, 3) and batch.dtype == np.float32
    assert batch.min() >= -1 and batch.max() <= 1 and batch.min() < -0.5 and batch.max() > 0.5


def test_folder_is_searched_recursively_and_cropped_square(tmp_path, tiny_demo):
    _write_images(tmp_path / "faces" / "a", 10)
    _write_images(tmp_path / "faces" / "b" / "c", 8, size=(20, 30))
    (tmp_path / "faces" / "notes.txt").write_text("not an image")
    (tmp_path / "faces" / ".hidden.png").write_bytes(b"")
    assert len(open_source(str(tmp_path / "faces")).entries) == 18
    config = tiny_demo.replace(data=str(tmp_path / "faces"), batch_size=6)
    dataset, count = make_dataset(config)
    assert count == 18
    batches = first_batches(dataset, 3)  # one epoch: 18 images, batches of 6
    assert all(b.shape == (6, 16, 16, 3) for b in batches)
    # Each epoch shows every image once: the three batches hold 18 different images.
    assert len({b.tobytes() for batch in batches for b in batch}) == 18
    assert load_real_images(config, 4).shape == (4, 16, 16, 3)


def test_centre_crop_keeps_the_middle(tmp_path, tiny_demo):
    # A wide image: red left third, green middle, blue right third. The square crop is all green.
    pixels = np.zeros((30, 90, 3), np.uint8)
    pixels[:, :30, 0] = pixels[:, 30:60, 1] = pixels[:, 60:, 2] = 255
    (tmp_path / "wide").mkdir()
    Image.fromarray(pixels).save(tmp_path / "wide" / "x.png")
    image = load_real_images(tiny_demo.replace(data=str(tmp_path / "wide")))[0]
    assert image[..., 1].min() > 200 and image[..., 0].max() < 50 and image[..., 2].max() < 50


@pytest.mark.parametrize("make,message", [
    (lambda p: p / "missing", "no such file or folder"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "no images found"),
    (lambda p: (p / "f.txt").write_text("x") and p / "f.txt", "not a folder"),
])
def test_bad_sources_name_themselves(tmp_path, tiny_demo, make, message):
    source = str(make(tmp_path))
    with pytest.raises(DataError) as err:
        make_dataset(tiny_demo.replace(data=source))
    assert source in str(err.value) and message in str(err.value)


def test_fewer_images_than_a_batch_is_refused(tmp_path, tiny_demo):
    _write_images(tmp_path / "few", 3)
    with pytest.raises(DataError, match="fewer than batch_size=16"):
        make_dataset(tiny_demo.replace(data=str(tmp_path / "few")))


def test_epoch_order_is_a_stateless_permutation_so_resume_sees_the_same_batches():
    class Indices:  # an image set whose "images" are their own indices
        count, size = 10, 1

        def read(self, indices):
            return np.asarray(indices, np.uint8).reshape(-1, 1, 1, 1).repeat(3, axis=3)

    def order(seed, first_epoch, n):
        reader = BatchReader(Indices(), 3, seed, first_epoch)
        return [np.round((reader(b)[:, 0, 0, 0] + 1) * 127.5).astype(int) for b in range(n)]

    batches = order(4, 0, 9)  # 3 epochs of 3 batches
    epochs = [np.concatenate(batches[i:i + 3]) for i in (0, 3, 6)]
    for epoch in epochs:
        assert len(set(epoch)) == 9 and set(epoch) <= set(range(10))  # remainder dropped
    assert not np.array_equal(epochs[0], epochs[1])  # reshuffled every epoch
    np.testing.assert_array_equal(np.concatenate(order(4, 2, 3)), epochs[2])  # resumed at epoch 2
    assert not np.array_equal(np.concatenate(order(5, 0, 3)), epochs[0])
