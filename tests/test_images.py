import numpy as np
from PIL import Image

from dcgan.data.pipeline import BatchReader
from dcgan.data.demo_faces import DemoImages
from dcgan.outputs.images import make_grid, save_grid, to_uint8


def test_range_mapping_round_trips():
    x = np.array([-1.0, 0.0, 1.0, 2.0, -3.0])
    np.testing.assert_array_equal(to_uint8(x), [0, 128, 255, 255, 0])
    # the training batches' scaling and the generator's output mapping are inverses
    images = DemoImages(8, 16, 0)
    reader = BatchReader(images, 8, seed=0)
    batch = reader(0)
    assert batch.dtype == np.float32 and batch.min() >= -1 and batch.max() <= 1
    np.testing.assert_array_equal(to_uint8(batch), images.read(reader.indices(0)))


def test_grid_places_each_image(tmp_path):
    images = np.stack([np.full((4, 4, 3), v, np.uint8) for v in (10, 20, 30, 40, 50)])
    grid = make_grid(images, columns=3, pad=1)
    assert grid.shape == (2 * 5 + 1, 3 * 5 + 1, 3)
    assert grid[1, 1, 0] == 10 and grid[1, 6, 0] == 20 and grid[6, 6, 0] == 50
    assert grid[6, 11, 0] == 255  # the empty sixth cell stays white
    save_grid(tmp_path / "g.png", images, columns=3)
    assert np.asarray(Image.open(tmp_path / "g.png")).shape == (2 * 6 + 2, 3 * 6 + 2, 3)


def test_loss_plot_labels_whole_epochs_only(tmp_path):
    from dcgan.outputs.plots import loss_figure

    rows = ["epoch,d_loss,g_loss,d_real,d_fake,seconds,images_per_s"]
    rows += [f"{e},1.2,0.8,0.3,0.6,1.0,10" for e in (1, 2, 3)]
    (tmp_path / "log.csv").write_text("\n".join(rows) + "\n")
    figure = loss_figure(tmp_path / "log.csv")
    for axes in figure.axes:
        ticks = [t for t in axes.get_xticks() if axes.get_xlim()[0] <= t <= axes.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks


def test_gif_frames_and_timing(tmp_path):
    from dcgan.outputs.images import save_gif

    frames = [np.full((8, 8, 3), v, np.uint8) for v in (0, 120, 240)]
    save_gif(tmp_path / "a.gif", frames, [100, 100, 400])
    gif = Image.open(tmp_path / "a.gif")
    assert gif.n_frames == 3
    gif.seek(2)
    assert gif.info["duration"] == 400 and np.asarray(gif.convert("RGB"))[0, 0, 0] > 200
