import math

import numpy as np
import pytest

from ganet_lib.method.enhance import enhance, enhancement_steps, minmax_per_slice, transfer_curve


def enhance_scalar(i: float, lam: float = -0.8) -> float:
    """Eqs. (13)-(17) for one pixel of a slice that spans [0, 1], written out with `math` only."""

    def img4(x: float) -> float:
        img1 = 1.0 / math.log(2.0) * math.log(x + 1)  # (13) with max(I) = 1
        img2 = 1 - math.exp(-x)  # (14)
        img3 = (img1 + img2) / (lam + img1 * img2)  # (15)
        return math.erf(lam * math.atan(math.exp(img3)) - 0.5 * img3)  # (16)

    return (img4(i) - img4(0.0)) / (img4(1.0) - img4(0.0))  # (17): min at I = 0, max at I = 1


def test_hand_computed_values():
    # A 1 x 5 "slice" spanning [0, 1]; IMG4(0) = erf(-0.8 * pi / 4) = -0.6258, IMG4(1) ~ 1.
    ramp = np.array([[0.0, 0.1, 0.3, 0.5, 1.0]])
    out = enhance(ramp)[0]
    expected = [enhance_scalar(v) for v in ramp[0]]
    np.testing.assert_allclose(out, expected, atol=3e-5)
    # The values SPEC section 2 quotes from the authors' curve.
    np.testing.assert_allclose(out[1:4], [0.14, 0.49, 0.81], atol=0.01)
    assert out[0] == 0.0 and out[-1] == pytest.approx(1.0, abs=1e-6)


def test_intermediate_steps_at_one_half():
    steps = enhancement_steps(np.array([[0.0, 0.5, 1.0]]))
    assert steps["IMG1"][0, 1] == pytest.approx(math.log(1.5) / math.log(2), rel=1e-5)  # 0.58496
    assert steps["IMG2"][0, 1] == pytest.approx(1 - math.exp(-0.5), rel=1e-5)  # 0.39347
    assert steps["IMG3"][0, 1] == pytest.approx(-1.71703, rel=1e-4)
    assert steps["IMG4"][0, 0] == pytest.approx(math.erf(-0.8 * math.pi / 4), rel=1e-5)


def test_each_slice_is_scaled_on_its_own():
    rng = np.random.default_rng(0)
    stack = rng.uniform(0, 1, size=(3, 2, 8, 8)).astype(np.float32)
    stack[1] = stack[1] * 400 + 20  # another intensity range: same result after min-max
    out = enhance(stack)
    assert out.shape == stack.shape and out.dtype == np.float32
    for s in range(3):
        for c in range(2):
            np.testing.assert_allclose(out[s, c], enhance(stack[s, c]), atol=1e-6)
    np.testing.assert_allclose(enhance(stack[1]), enhance((stack[1] - 20) / 400), atol=3e-5)


def test_constant_slice_gives_zeros_not_nan():
    out = enhance(np.full((2, 5, 5), 7.0))
    assert np.all(out == 0)
    assert np.all(minmax_per_slice(np.zeros((4, 4))) == 0)


def test_lookup_table_matches_the_equations():
    images = np.random.default_rng(1).gamma(2.0, 100.0, size=(4, 3, 16, 16))
    np.testing.assert_allclose(enhance(images), enhancement_steps(images)["IMG5"], atol=2e-5)


def test_non_monotone_lambda_falls_back_to_the_equations():
    ramp, curve = transfer_curve(-0.5)
    assert not np.all(np.diff(curve) >= 0)  # Eq. (15) has a pole inside [0, 1] for lambda > -0.632
    images = np.random.default_rng(2).uniform(0, 1, size=(2, 8, 8))
    np.testing.assert_array_equal(enhance(images, -0.5), enhancement_steps(images, -0.5)["IMG5"])


def test_transfer_curve_is_monotone_and_brightening():
    ramp, curve = transfer_curve(-0.8, points=101)
    assert np.all(np.diff(curve) >= 0)
    assert np.all(curve[1:-1] > ramp[1:-1])
