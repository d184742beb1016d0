import numpy as np

from dcgan.data.demo_faces import demo_faces


def test_shape_dtype_and_determinism():
    a = demo_faces(20, 32, seed=3)
    assert a.shape == (20, 32, 32, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, demo_faces(20, 32, seed=3))
    assert not np.array_equal(a, demo_faces(20, 32, seed=4))


def test_image_i_does_not_depend_on_n():
    np.testing.assert_array_equal(demo_faces(300, 16)[:5], demo_faces(5, 16))
    np.testing.assert_array_equal(demo_faces(300, 16)[256:260], demo_faces(260, 16)[256:])


def test_faces_vary_and_have_structure():
    faces = demo_faces(200, 64).astype(np.float32)
    # Colours vary between images...
    assert faces.mean(axis=(1, 2)).std(axis=0).min() > 10
    # ...and so does layout: the pixel-wise spread across images is large everywhere it matters.
    assert faces.std(axis=0).mean() > 30
    # A face sits in the middle: the centre differs from the corners in almost every image.
    centre = faces[:, 24:40, 24:40].mean(axis=(1, 2))
    corner = faces[:, :6, :6].mean(axis=(1, 2))
    assert (np.abs(centre - corner).max(axis=1) > 20).mean() > 0.9


def test_every_supported_size():
    for size in (16, 32, 64, 128):
        assert demo_faces(2, size).shape == (2, size, size, 3)


def test_a_range_of_faces_is_drawn_alone_and_equals_the_same_images_of_the_whole_set():
    whole = demo_faces(600, 16, seed=3)
    assert np.array_equal(demo_faces(100, 16, seed=3, first=250), whole[250:350])  # across blocks
    assert np.array_equal(demo_faces(3, 16, seed=3, first=597), whole[597:])
    assert demo_faces(0, 16, first=9).shape == (0, 16, 16, 3)
