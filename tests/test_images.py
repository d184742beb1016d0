import numpy as np
from PIL import Image

from dcgan.images import make_grid, save_grid, to_uint8, to_unit_range


def test_range_mapping_round_trips():
    x = np.array([-1.0, 0.0, 1.0, 2.0, -3.0])
    np.testing.assert_array_equal(to_uint8(x), [0, 128, 255, 255, 0])
    u = np.arange(256, dtype=np.uint8)
    np.testing.assert_array_equal(to_uint8(to_unit_range(u)), u)


def test_grid_places_each_image(tmp_path):
    images = np.stack([np.full((4, 4, 3), v, np.uint8) for v in (10, 20, 30, 40, 50)])
    grid = make_grid(images, columns=3, pad=1)
    assert grid.shape == (2 * 5 + 1, 3 * 5 + 1, 3)
    assert grid[1, 1, 0] == 10 and grid[1, 6, 0] == 20 and grid[6, 6, 0] == 50
    assert grid[6, 11, 0] == 255  # the empty sixth cell stays white
    save_grid(tmp_path / "g.png", images, columns=3)
    assert np.asarray(Image.open(tmp_path / "g.png")).shape == (2 * 6 + 2, 3 * 6 + 2, 3)
