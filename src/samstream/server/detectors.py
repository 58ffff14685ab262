"""The object proposers behind the text box: which ones a request may name, each built once
(on the model worker, the first time it is asked for) and kept while the server runs.

Building one may mean loading a transformers model from the hub cache or a folder; when that
fails, :class:`DetectorUnavailable` carries the HTTP status and a message naming the model
and where its files go. Proposers already built can be handed in (``create_app(proposers=)``),
which is how tests use fake ones.
"""

from __future__ import annotations

import copy
import os
import threading
from pathlib import Path
from typing import Any, Callable, Mapping

from ..detect.base import ObjectProposer
from ..detect.registry import DetectorRequest, detector_names, make_proposer

__all__ = ["DetectorUnavailable", "DetectorPool", "with_thresholds"]


class DetectorUnavailable(RuntimeError):
    """A detector that cannot be built here; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class DetectorPool:
    """Proposers by name: ``default`` (the server's ``--detector``), the registered names and
    the names of ``proposers`` (already built).

    ``sam_model``: gives the SAM 2 model (the ``automatic`` proposer runs on it). A request
    may name any of :meth:`names`; other hub ids and folders are chosen when the server starts,
    never by a request (a request must not make the server read paths or download models).
    """

    def __init__(
        self,
        default: str | os.PathLike[str],
        *,
        device: Any = "cpu",
        threshold: float | None = None,
        text_threshold: float | None = None,
        proposers: Mapping[str, ObjectProposer] | None = None,
        sam_model: Callable[[], Any] | None = None,
    ) -> None:
        self.default = os.fspath(default)
        self.device = device
        self.threshold = threshold
        self.text_threshold = text_threshold
        self._sam_model = sam_model
        self._built: dict[str, ObjectProposer] = dict(proposers or {})
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        """The detectors a request may name: the default first, then the others sorted."""
        others = sorted((set(detector_names()) | set(self._built)) - {self.default})
        return [self.default, *others]

    def choose(self, name: str | None) -> str:
        """The detector a request asked for (None: the default); ValueError naming ``detector`` otherwise."""
        if name is None:
            return self.default
        if name not in self.names():
            raise ValueError(
                f"detector {name!r} is not one this server offers ({', '.join(self.names())}); "
                "other models are chosen when the server starts: samstream serve --detector NAME_OR_PATH"
            )
        return name

    def get(self, name: str) -> ObjectProposer:
        """The proposer ``name`` (built on first use); DetectorUnavailable when it cannot be built."""
        with self._lock:
            built = self._built.get(name)
        if built is not None:
            return built
        proposer = self._build(name)
        with self._lock:
            return self._built.setdefault(name, proposer)

    def _build(self, name: str) -> ObjectProposer:
        from ..detect.hub import DetectorLoadError, DetectorNotAvailableError

        request = DetectorRequest(
            device=self.device,
            threshold=self.threshold,
            text_threshold=self.text_threshold,
            sam_model=self._sam_model() if self._sam_model is not None else None,
        )
        try:
            return make_proposer(name, request)
        except DetectorNotAvailableError as exc:
            raise DetectorUnavailable(503, str(exc)) from None
        except DetectorLoadError as exc:
            raise DetectorUnavailable(503, f"{exc} (fix the server's --detector)") from None
        except ImportError as exc:
            raise DetectorUnavailable(503, f"detector {name!r}: {exc}") from None
        except OSError as exc:  # a folder that cannot be read
            where = f" ({Path(name)})" if Path(name).exists() else ""
            raise DetectorUnavailable(503, f"detector {name!r}{where} cannot be read: {exc}") from None


def with_thresholds(proposer: ObjectProposer, box_threshold: float | None, text_threshold: float | None) -> ObjectProposer:
    """``proposer`` with other thresholds for one request: a shallow copy (the model is shared),
    or ``proposer`` itself when both are None. ValueError naming the field when the proposer has
    no such threshold (OWLv2 has no text threshold; the automatic proposer has neither)."""
    changes = {}
    for field, attribute, value in (("box_threshold", "threshold", box_threshold), ("text_threshold", "text_threshold", text_threshold)):
        if value is None:
            continue
        if not hasattr(proposer, attribute):
            raise ValueError(f"{field}: detector {proposer.name!r} has no such threshold")
        changes[attribute] = float(value)
    if not changes:
        return proposer
    changed = copy.copy(proposer)
    for attribute, value in changes.items():
        setattr(changed, attribute, value)
    return changed
