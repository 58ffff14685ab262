"""Sessions of the web server: unguessable ids, one temporary folder each, idle expiry.

A :class:`ServerSession` is data: the tracker's :class:`~samstream.video.state.VideoSession`
(touched only on the model worker), a separate frame reader for the page's JPEG frames, the
masks produced so far, which frames each object has prompts on, and the labels of objects
added from a phrase. The
:class:`SessionStore` hands out ids from :func:`secrets.token_urlsafe`, enforces the number
of sessions, and finds the idle ones.
"""

from __future__ import annotations

import io
import secrets
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..io.labels import ObjectLabel
from .masks import MaskStore

SessionKind = Literal["image", "video"]


class SessionNotFound(KeyError):
    """No session with this id (never existed, deleted or expired)."""


class TooManySessions(RuntimeError):
    """The limit on open sessions is reached."""


@dataclass
class Propagation:
    """A running propagation: its cancel flag and progress."""

    cancel: threading.Event = field(default_factory=threading.Event)
    total: int = 0
    done: int = 0


@dataclass
class ServerSession:
    """One user's image or video and everything produced on it."""

    session_id: str
    kind: SessionKind
    folder: Path
    width: int
    height: int
    num_frames: int
    fps: float | None
    tracker: Any  # VideoSession; used on the model worker only
    preview: Any  # FrameSource (video) or [H, W, 3] uint8 array (image), for JPEG frames
    streaming: bool = False
    masks: MaskStore = field(default_factory=MaskStore)
    prompted: dict[int, set[int]] = field(default_factory=dict)  # obj_id -> frames with prompts
    labels: dict[int, ObjectLabel] = field(default_factory=dict)  # obj_id -> phrase, for objects added from text
    last_used: float = field(default_factory=time.monotonic)
    propagation: Propagation | None = None
    lock: threading.RLock = field(default_factory=threading.RLock)
    preview_lock: threading.Lock = field(default_factory=threading.Lock)
    jpeg_cache: "OrderedDict[int, bytes]" = field(default_factory=OrderedDict)
    closed: bool = False

    def touch(self) -> None:
        self.last_used = time.monotonic()

    @property
    def obj_ids(self) -> list[int]:
        with self.lock:
            return sorted(self.prompted)

    @property
    def propagating(self) -> bool:
        return self.propagation is not None

    def frame_jpeg(self, frame_idx: int, cache_size: int, quality: int = 90) -> bytes:
        """Frame ``frame_idx`` as JPEG bytes (decoded by the preview reader, recent ones cached)."""
        from PIL import Image

        with self.preview_lock:
            cached = self.jpeg_cache.get(frame_idx)
            if cached is not None:
                self.jpeg_cache.move_to_end(frame_idx)
                return cached
            if self.closed:
                raise SessionNotFound(self.session_id)
            rgb = self.preview if isinstance(self.preview, np.ndarray) else self.preview.get_rgb(frame_idx)
            buffer = io.BytesIO()
            Image.fromarray(rgb).save(buffer, format="JPEG", quality=quality)
            data = buffer.getvalue()
            self.jpeg_cache[frame_idx] = data
            while len(self.jpeg_cache) > cache_size:
                self.jpeg_cache.popitem(last=False)
            return data

    def release(self) -> None:
        """Close the frame readers and delete the folder (call on the model worker)."""
        with self.preview_lock:
            self.closed = True
            self.jpeg_cache.clear()
            if not isinstance(self.preview, np.ndarray) and self.preview is not None:
                self.preview.close()
        frames = getattr(self.tracker, "frames", None)
        if frames is not None:
            frames.close()
        self.tracker = None
        shutil.rmtree(self.folder, ignore_errors=True)


class SessionStore:
    """The open sessions, by id. Folders are made under ``root`` with server-chosen names."""

    def __init__(self, root: Path, max_sessions: int, idle_timeout_s: float) -> None:
        self.root = Path(root)
        self.max_sessions = int(max_sessions)
        self.idle_timeout_s = float(idle_timeout_s)
        self._sessions: dict[str, ServerSession] = {}
        self._reserved = 0
        self._lock = threading.Lock()

    def reserve(self) -> Path:
        """Claim a place for a new session and make its folder; TooManySessions when full."""
        with self._lock:
            if len(self._sessions) + self._reserved >= self.max_sessions:
                raise TooManySessions(
                    f"too many sessions open ({self.max_sessions} at most); delete one or wait for idle ones to expire"
                )
            self._reserved += 1
        try:
            return Path(tempfile.mkdtemp(prefix="session-", dir=self.root))
        except BaseException:
            self.unreserve()
            raise

    def unreserve(self) -> None:
        with self._lock:
            self._reserved = max(0, self._reserved - 1)

    @staticmethod
    def new_id() -> str:
        return secrets.token_urlsafe(24)

    def add(self, session: ServerSession) -> None:
        """Register a session made in a reserved place."""
        with self._lock:
            self._reserved = max(0, self._reserved - 1)
            self._sessions[session.session_id] = session

    def get(self, session_id: str) -> ServerSession:
        with self._lock:
            session = self._sessions.get(session_id)
        if session is None:
            raise SessionNotFound(session_id)
        session.touch()
        return session

    def pop(self, session_id: str) -> ServerSession | None:
        with self._lock:
            return self._sessions.pop(session_id, None)

    def pop_idle(self, now: float | None = None) -> list[ServerSession]:
        """Remove and return the sessions idle longer than the timeout (never one propagating)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            idle = [
                s for s in self._sessions.values()
                if not s.propagating and now - s.last_used > self.idle_timeout_s
            ]
            for s in idle:
                del self._sessions[s.session_id]
        return idle

    def pop_all(self) -> list[ServerSession]:
        with self._lock:
            everything = list(self._sessions.values())
            self._sessions.clear()
        return everything

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)
