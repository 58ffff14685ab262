"""What the server is configured with: the model to load, where uploads go, and its limits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_MODEL = "samstream-synthetic"
DEFAULT_DETECTOR = "grounding-dino"  # IDEA-Research/grounding-dino-tiny, as on the command line


@dataclass(frozen=True)
class ServerSettings:
    """Options of :func:`samstream.server.create_app`.

    model / checkpoint / device: what :func:`samstream.build.build_model` loads when the app
    starts (a name or a reference-format YAML, and a weights file); ignored when a model is
    passed to ``create_app``.
    work_dir: parent of the per-session temporary folders (default: a new folder under the
    system's temporary directory, removed at shutdown).

    Limits: max_upload_bytes (one upload), max_duration_s (a video's frames / fps),
    max_pixels (width x height of an image or a video's frames), max_sessions (open at once),
    idle_timeout_s (a session untouched this long is deleted with its files), max_objects
    (per session), queue_size (jobs waiting for the model; more are refused with 503),
    job_timeout_s (how long a request waits for its job), full_memory_frames (videos longer
    than this are tracked in streaming mode: only the memories later frames can attend to are
    kept, so memory stays flat), frame_cache_size (JPEG frames kept per session).

    Tracking: memory is the memory strategy of every session (``samstream.video.memory``:
    default, motion, multipath, distractor, motion+distractor), like ``track --memory``.

    Text prompts: detector is the object proposer of ``POST /v1/sessions/{id}/text`` (a
    registered name, a Hugging Face model id or a ``save_pretrained`` folder, like
    ``--detector``), loaded on the model worker the first time a phrase is sent;
    box_threshold / text_threshold: its thresholds (None: the detector's defaults).
    """

    model: str | Path = DEFAULT_MODEL
    checkpoint: str | Path | None = None
    device: str = "cpu"
    work_dir: Path | None = None
    max_upload_bytes: int = 512 * 1024 * 1024
    max_duration_s: float = 600.0
    max_pixels: int = 3840 * 2160
    max_sessions: int = 32
    idle_timeout_s: float = 1800.0
    max_objects: int = 64
    queue_size: int = 64
    job_timeout_s: float = 600.0
    full_memory_frames: int = 300
    frame_cache_size: int = 48
    detector: str | Path = DEFAULT_DETECTOR
    box_threshold: float | None = None
    text_threshold: float | None = None
    memory: str = "default"

    def __post_init__(self) -> None:
        positive = {
            "max_upload_bytes": self.max_upload_bytes,
            "max_duration_s": self.max_duration_s,
            "max_pixels": self.max_pixels,
            "max_sessions": self.max_sessions,
            "idle_timeout_s": self.idle_timeout_s,
            "max_objects": self.max_objects,
            "queue_size": self.queue_size,
            "job_timeout_s": self.job_timeout_s,
            "frame_cache_size": self.frame_cache_size,
        }
        for name, value in positive.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if isinstance(self.full_memory_frames, bool) or not isinstance(self.full_memory_frames, int) or self.full_memory_frames < 1:
            raise ValueError(f"full_memory_frames must be an int >= 1, got {self.full_memory_frames!r}")
        for name in ("box_threshold", "text_threshold"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0):
                raise ValueError(f"{name} must be in [0, 1] or None, got {value!r}")
        from ..video.memory import check_strategy

        try:
            check_strategy(self.memory)
        except ValueError as exc:
            raise ValueError(f"memory {self.memory!r}: {exc}") from None
        if not str(self.detector).strip():
            raise ValueError("detector must name a detector (e.g. 'grounding-dino') or a model folder, got an empty string")

    @property
    def sweep_interval_s(self) -> float:
        """How often idle sessions are looked for."""
        return min(30.0, max(0.05, self.idle_timeout_s / 4))
