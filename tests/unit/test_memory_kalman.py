"""The motion strategy's Kalman filter against steps computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from samstream.video.memory import kalman
from samstream.video.memory.kalman import KalmanNoise, KalmanState

H = 0.2  # box height in all hand-computed steps: position std h/20 = 0.01, velocity std h/160 = 0.00125


def test_box_conversions():
    np.testing.assert_allclose(kalman.xyxy_to_xyah([0.1, 0.2, 0.3, 0.6]), [0.2, 0.4, 0.5, 0.4])
    np.testing.assert_allclose(kalman.xyah_to_xyxy([0.2, 0.4, 0.5, 0.4]), [0.1, 0.2, 0.3, 0.6])
    with pytest.raises(ValueError, match="positive height"):
        kalman.xyxy_to_xyah([0.1, 0.2, 0.3, 0.2])


def test_initiate_by_hand():
    state = kalman.initiate([0.5, 0.4, 0.5, H])
    np.testing.assert_allclose(state.mean, [0.5, 0.4, 0.5, H, 0, 0, 0, 0])
    # std: 2 h/20 = 0.02 for positions and height, 10 h/160 = 0.0125 for their velocities,
    # 1e-2 for the aspect ratio and 1e-5 for its velocity
    want = np.diag([0.02**2, 0.02**2, 1e-4, 0.02**2, 0.0125**2, 0.0125**2, 1e-10, 0.0125**2])
    np.testing.assert_allclose(state.covariance, want, rtol=1e-12, atol=0)


def test_predict_by_hand():
    cov = np.diag([4e-4, 4e-4, 1e-4, 4e-4, 1.5625e-4, 1.5625e-4, 1e-10, 1.5625e-4])
    state = KalmanState(np.array([0.5, 0.4, 0.5, H, 0.01, -0.02, 0.0, 0.005]), cov)
    out = kalman.predict(state)
    np.testing.assert_allclose(out.mean, [0.51, 0.38, 0.5, 0.205, 0.01, -0.02, 0.0, 0.005])
    # x: P00 + P44 + (h/20)^2 = 4e-4 + 1.5625e-4 + 1e-4; cross term P44; vx: P44 + (h/160)^2
    assert out.covariance[0, 0] == pytest.approx(6.5625e-4, rel=1e-12)
    assert out.covariance[0, 4] == pytest.approx(1.5625e-4, rel=1e-12)
    assert out.covariance[4, 0] == pytest.approx(1.5625e-4, rel=1e-12)
    assert out.covariance[4, 4] == pytest.approx(1.578125e-4, rel=1e-12)
    # aspect: 1e-4 + 1e-10 + (1e-2)^2; its velocity: 1e-10 + (1e-5)^2
    assert out.covariance[2, 2] == pytest.approx(2e-4 + 1e-10, rel=1e-12)
    assert out.covariance[6, 6] == pytest.approx(2e-10, rel=1e-12)
    assert out.covariance[0, 1] == 0.0 and out.covariance[0, 5] == 0.0  # x and y stay independent


def test_update_by_hand():
    """Each coordinate is its own 2-state (position, velocity) filter: the gain is P[:, 0] / S."""
    predicted = kalman.predict(kalman.initiate([0.5, 0.4, 0.5, H]))
    measured = [0.51, 0.4, 0.5, H]  # the centre moved 0.01 to the right
    out = kalman.update(predicted, measured)
    s = 6.5625e-4 + 1e-4  # P00 + (h/20)^2
    gain_x, gain_vx = 6.5625e-4 / s, 1.5625e-4 / s
    assert out.mean[0] == pytest.approx(0.5 + gain_x * 0.01, rel=1e-12)
    assert out.mean[4] == pytest.approx(gain_vx * 0.01, rel=1e-12)
    np.testing.assert_allclose(out.mean[[1, 2, 3, 5, 6, 7]], [0.4, 0.5, H, 0, 0, 0], atol=1e-15)
    assert out.covariance[0, 0] == pytest.approx(6.5625e-4 - 6.5625e-4**2 / s, rel=1e-12)
    assert out.covariance[0, 4] == pytest.approx(1.5625e-4 - 6.5625e-4 * 1.5625e-4 / s, rel=1e-12)
    assert out.covariance[4, 4] == pytest.approx(1.578125e-4 - 1.5625e-4**2 / s, rel=1e-12)
    # aspect ratio: measurement noise 1e-1 dominates, so a changed aspect barely moves it
    out2 = kalman.update(predicted, [0.5, 0.4, 0.6, H])
    p = 2e-4 + 1e-10
    assert out2.mean[2] == pytest.approx(0.5 + p / (p + 1e-2) * 0.1, rel=1e-12)


def test_noise_weights_are_settings():
    state = kalman.initiate([0.5, 0.4, 0.5, H], KalmanNoise(position=0.1, velocity=0.01))
    assert state.covariance[0, 0] == pytest.approx((2 * 0.1 * H) ** 2)
    assert state.covariance[4, 4] == pytest.approx((10 * 0.01 * H) ** 2)


def test_constant_velocity_is_learned():
    """Fed a box moving at constant speed, the filter predicts where it goes next."""
    box = np.array([0.1, 0.3, 0.3, 0.5])
    step = np.array([0.02, 0.01, 0.02, 0.01])
    state = kalman.initiate(kalman.xyxy_to_xyah(box))
    for t in range(1, 40):
        state = kalman.update(kalman.predict(state), kalman.xyxy_to_xyah(box + t * step))
    np.testing.assert_allclose(kalman.predict(state).box(), box + 40 * step, atol=1e-4)
    np.testing.assert_allclose(state.mean[4:6], [0.02, 0.01], atol=1e-4)
