import numpy as np
import pytest

from dcgan.data.demo_faces import demo_faces
from dcgan.evaluation.scoring import evaluate_images
from dcgan.evaluation.metrics import (frechet_distance, kernel_inception_distance,
                           laplacian_pyramid, real_floor, sliced_wasserstein)

FAST = dict(patches_per_image=32, directions=64, repeats=2)


@pytest.fixture(scope="module")
def faces():
    return demo_faces(256, 32, seed=0)


def test_identical_sets_score_zero_and_results_repeat(faces):
    same = sliced_wasserstein(faces[:128], faces[:128], **FAST)
    assert same["swd_x1e3_avg"] == 0 and set(same["swd_x1e3"]) == {"32", "16"}
    a = sliced_wasserstein(faces[:128], faces[128:], seed=3, **FAST)
    assert a == sliced_wasserstein(faces[:128], faces[128:], seed=3, **FAST)


def test_swd_grows_with_the_amount_of_change(faces):
    rng = np.random.default_rng(0)
    scores = []
    for sigma in (0, 8, 24, 64):
        noisy = np.clip(faces[128:].astype(float) + rng.normal(0, sigma, faces[128:].shape), 0, 255)
        scores.append(sliced_wasserstein(faces[:128], noisy.astype(np.uint8), **FAST)["swd_x1e3_avg"])
    assert scores == sorted(scores) and scores[-1] > 2 * scores[0]
    # A copy shifted sideways: 0 when unshifted, growing with the shift.
    shifted = [sliced_wasserstein(faces[:128], np.roll(faces[:128], s, axis=2), **FAST)["swd_x1e3_avg"]
               for s in (0, 2, 6, 12)]
    assert shifted[0] == 0 and shifted == sorted(shifted) and shifted[1] > 0
    floor = real_floor(faces, metric=lambda a, b, seed: sliced_wasserstein(a, b, seed=seed, **FAST))
    assert 0 < floor["swd_x1e3_avg"] < scores[-1]


def test_laplacian_pyramid_reconstructs_the_image(faces):
    from dcgan.evaluation.metrics import _upsample

    levels = laplacian_pyramid(faces[:4])
    assert [lv.shape[1] for lv in levels] == [32, 16]
    rebuilt = levels[-1]
    for level in reversed(levels[:-1]):
        rebuilt = level + _upsample(rebuilt)
    np.testing.assert_allclose(rebuilt, faces[:4].astype(float), atol=1e-9)


def test_frechet_distance_matches_the_scipy_reference():
    linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(0)
    a = rng.standard_normal((300, 16)) @ rng.standard_normal((16, 16))
    b = rng.standard_normal((300, 16)) * 1.5 + 0.3
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(s_a @ s_b).real
    reference = ((mu_a - mu_b) ** 2).sum() + np.trace(s_a + s_b - 2 * root)
    assert frechet_distance(a, b) == pytest.approx(reference, rel=1e-7)
    assert frechet_distance(a, a) == pytest.approx(0, abs=1e-7)


def test_kid_is_near_zero_for_the_same_distribution_and_positive_otherwise():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((400, 32)), rng.standard_normal((400, 32))
    same, _ = kernel_inception_distance(a, b, subsets=5, subset_size=200)
    shifted, _ = kernel_inception_distance(a, b + 0.5, subsets=5, subset_size=200)
    assert abs(same) < 0.02 and shifted > 10 * max(abs(same), 1e-3)


@pytest.mark.parametrize("network", ["fid", "keras"])
def test_fid_and_kid_pipeline_end_to_end_offline(faces, network):
    """Untrained networks exercise resizing to 299, features and both metrics offline."""
    noise = np.random.default_rng(0).integers(0, 256, faces[:12].shape).astype(np.uint8)
    results = evaluate_images(faces[:12], noise, metrics=("fid", "kid"), floor=faces[12:24],
                              fid_network=network, inception_weights="untrained")
    assert "untrained" in results["fid_network"] and results["fid_comparable"] is False
    assert results["fid"] > results["fid_floor"] >= 0
    assert results["kid"][0] > results["kid_floor"][0]
    with pytest.raises(ValueError, match="unknown metric"):
        evaluate_images(faces[:4], faces[:4], metrics=("is",))
