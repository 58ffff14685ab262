"""A constant-velocity Kalman filter on a box, as pure functions (the motion strategy's model).

The state is (cx, cy, a, h, vcx, vcy, va, vh): the box centre, its aspect ratio a = w / h,
its height, and their velocities per frame. Measurements are (cx, cy, a, h). The noise is
the DeepSORT / ByteTrack choice: standard deviations proportional to the box height, with
weight 1/20 for positions and 1/160 for velocities; the aspect ratio gets small fixed
deviations. Units are whatever the boxes are in (samstream uses [0, 1] of the model input,
which is square, so the aspect ratio is that of the model's view).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_DIM = 4  # measured quantities: cx, cy, a, h


@dataclass(frozen=True)
class KalmanNoise:
    """Noise weights: standard deviations are ``weight * h`` (positions, heights and their
    velocities); the aspect ratio has fixed deviations."""

    position: float = 1.0 / 20.0
    velocity: float = 1.0 / 160.0
    aspect_init: float = 1e-2  # std of a when a filter starts
    aspect_velocity_init: float = 1e-5
    aspect_process: float = 1e-2  # per prediction step
    aspect_velocity_process: float = 1e-5
    aspect_measurement: float = 1e-1


@dataclass(frozen=True)
class KalmanState:
    """mean [8] (cx, cy, a, h and their velocities), covariance [8, 8]."""

    mean: np.ndarray
    covariance: np.ndarray

    def box(self) -> np.ndarray:
        """The state's box [4] (x0, y0, x1, y1)."""
        return xyah_to_xyxy(self.mean[:_DIM])


def xyxy_to_xyah(box) -> np.ndarray:
    """(x0, y0, x1, y1) -> (cx, cy, a, h); a box of zero height is refused."""
    x0, y0, x1, y1 = np.asarray(box, dtype=np.float64).reshape(4)
    h = y1 - y0
    if h <= 0:
        raise ValueError(f"box must have a positive height, got {[x0, y0, x1, y1]}")
    return np.array([(x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / h, h])


def xyah_to_xyxy(xyah) -> np.ndarray:
    """(cx, cy, a, h) -> (x0, y0, x1, y1)."""
    cx, cy, a, h = np.asarray(xyah, dtype=np.float64).reshape(4)
    w = a * h
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])


def _transition() -> np.ndarray:
    f = np.eye(2 * _DIM)
    f[:_DIM, _DIM:] = np.eye(_DIM)  # position += velocity (one frame)
    return f


_F = _transition()
_H = np.eye(_DIM, 2 * _DIM)  # we observe the first four entries


def initiate(measurement, noise: KalmanNoise = KalmanNoise()) -> KalmanState:
    """A filter started at a measured (cx, cy, a, h), velocities 0, wide uncertainty."""
    z = np.asarray(measurement, dtype=np.float64).reshape(_DIM)
    h = z[3]
    std = [
        2 * noise.position * h,
        2 * noise.position * h,
        noise.aspect_init,
        2 * noise.position * h,
        10 * noise.velocity * h,
        10 * noise.velocity * h,
        noise.aspect_velocity_init,
        10 * noise.velocity * h,
    ]
    return KalmanState(np.concatenate([z, np.zeros(_DIM)]), np.diag(np.square(std)))


def predict(state: KalmanState, noise: KalmanNoise = KalmanNoise()) -> KalmanState:
    """One frame ahead under constant velocity: x' = F x, P' = F P F^T + Q (Q scaled by h)."""
    h = state.mean[3]
    std = [
        noise.position * h,
        noise.position * h,
        noise.aspect_process,
        noise.position * h,
        noise.velocity * h,
        noise.velocity * h,
        noise.aspect_velocity_process,
        noise.velocity * h,
    ]
    q = np.diag(np.square(std))
    return KalmanState(_F @ state.mean, _F @ state.covariance @ _F.T + q)


def update(state: KalmanState, measurement, noise: KalmanNoise = KalmanNoise()) -> KalmanState:
    """Correct a (predicted) state with a measured (cx, cy, a, h)."""
    z = np.asarray(measurement, dtype=np.float64).reshape(_DIM)
    h = state.mean[3]
    r = np.diag(np.square([noise.position * h, noise.position * h, noise.aspect_measurement, noise.position * h]))
    s = _H @ state.covariance @ _H.T + r  # innovation covariance [4, 4]
    gain = np.linalg.solve(s, _H @ state.covariance).T  # P H^T S^-1, [8, 4] (S symmetric)
    innovation = z - _H @ state.mean
    mean = state.mean + gain @ innovation
    covariance = state.covariance - gain @ s @ gain.T
    return KalmanState(mean, covariance)
