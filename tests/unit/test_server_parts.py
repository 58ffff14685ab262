"""The server's parts without HTTP: the model worker, the mask store, problem frames, the
propagation plan, polygons, the session store and upload checks."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from samstream.server.engine import plan_propagation
from samstream.server.exports import mask_polygons
from samstream.server.masks import MaskStore, encode_frame, problem_frames
from samstream.server.sessions import SessionStore, TooManySessions
from samstream.server.settings import ServerSettings
from samstream.server.uploads import UploadError, check_declared_size, upload_kind
from samstream.server.worker import ModelWorker, WorkerBusy, WorkerStopped


# --------------------------------------------------------------------------- the worker


@pytest.fixture
def worker():
    w = ModelWorker(queue_size=4)
    w.start()
    yield w
    w.stop()


def test_jobs_run_one_at_a_time_on_one_thread(worker):
    seen, active, overlap = [], [0], []

    def job(i):
        active[0] += 1
        overlap.append(active[0])
        seen.append((i, threading.current_thread().name))
        time.sleep(0.01)
        active[0] -= 1
        return i * i

    futures = [worker.submit(lambda i=i: job(i)) for i in range(4)]
    assert [f.result(5) for f in futures] == [0, 1, 4, 9]
    assert [i for i, _ in seen] == [0, 1, 2, 3]
    assert {name for _, name in seen} == {"samstream-model"} and max(overlap) == 1


def test_errors_reach_the_caller_and_the_worker_goes_on(worker):
    def fail():
        raise ValueError("bad frame_index")

    with pytest.raises(ValueError, match="bad frame_index"):
        worker.submit(fail).result(5)
    assert worker.submit(lambda: "still here").result(5) == "still here"


def test_a_full_queue_refuses_and_urgent_jobs_skip_it(worker):
    release = threading.Event()
    blocker = worker.submit(lambda: release.wait(10))
    while worker.pending():
        time.sleep(0.005)
    queued = [worker.submit(lambda: None) for _ in range(4)]
    with pytest.raises(WorkerBusy, match="limit 4"):
        worker.submit(lambda: None)
    order = []
    urgent = worker.submit(lambda: order.append("urgent"), urgent=True)
    worker.submit(lambda: order.append("late"), urgent=True)  # urgent goes to the front
    release.set()
    for f in [blocker, urgent, *queued]:
        f.result(5)
    assert order[:2] == ["late", "urgent"]


def test_steppers_share_the_worker_with_other_jobs(worker):
    log = []

    def steps():
        for k in range(5):
            log.append(f"step {k}")
            yield

    done = worker.submit_steps(steps())
    click = worker.submit(lambda: log.append("click"))
    click.result(5)
    done.result(5)
    assert log.index("click") < log.index("step 4")  # the click did not wait for the whole propagation
    assert [e for e in log if e.startswith("step")] == [f"step {k}" for k in range(5)]


def test_stop_fails_waiting_jobs():
    w = ModelWorker(queue_size=4)
    w.start()
    release = threading.Event()
    blocker = w.submit(lambda: release.wait(10))
    while w.pending():
        time.sleep(0.005)
    waiting = w.submit(lambda: None)
    threading.Timer(0.1, release.set).start()
    w.stop()
    assert blocker.result(5) is True
    with pytest.raises(WorkerStopped):
        waiting.result(5)
    with pytest.raises(WorkerStopped):
        w.submit(lambda: None)


# --------------------------------------------------------------------------- masks and problem frames


def test_encode_frame_and_store():
    masks = np.zeros((3, 4, 5), dtype=bool)
    masks[0, 1:3, 1:4] = True
    masks[2, 0, 0] = True
    encoded = encode_frame([4, 7, 9], masks, [1.5, None, -2.0])
    assert sorted(encoded) == [4, 9]  # object 7 has no output on this frame
    assert encoded[4].area == 6 and encoded[9].area == 1 and encoded[9].score == -2.0
    store = MaskStore()
    store.put(3, encoded)
    store.put(5, {4: encoded[4]})
    store.drop_object(9)
    assert sorted(store.frame(3)) == [4] and len(store) == 2
    areas, scores = store.timeline([4, 9], 6)[4]
    assert areas == [None, None, None, 6, None, 6] and scores[3] == 1.5
    store.drop_object(4)
    assert len(store) == 0


def _timeline(areas, scores):
    return {1: (list(areas), list(scores))}


def test_problem_frames():
    found = problem_frames(_timeline([100, 100, 0, 0, 120, 400, 390], [5, 5, 5, -3, 5, 5, 0.2]))
    assert [(p.frame_index, p.kind) for p in found] == [(2, "vanished"), (5, "area_jump"), (6, "score_drop")]
    # presence below one half counts as gone; frames not tracked break the chain
    assert [p.kind for p in problem_frames(_timeline([50, 50], [3.0, -1.0]))] == ["vanished"]
    assert problem_frames(_timeline([50, None, 500], [3.0, None, 3.0])) == []
    assert problem_frames(_timeline([50, 60, 70], [3.0, 3.0, 3.0])) == []


def test_plan_propagation_counts_like_the_predictor():
    assert plan_propagation(10, 0, "forward", None).passes == ((False, 0, 10),)
    assert plan_propagation(10, 4, "backward", None).passes == ((True, 4, 5),)
    assert plan_propagation(10, 0, "backward", None).total == 0
    both = plan_propagation(10, 8, "both", 3)
    assert both.passes == ((False, 8, 2), (True, 8, 4)) and both.total == 6


def test_polygons_outline_the_mask():
    from PIL import Image, ImageDraw

    mask = np.zeros((40, 60), dtype=bool)
    mask[5:30, 10:50] = True
    mask[0:8, 0:6] = True  # touches the border
    polygons = mask_polygons(mask)
    assert len(polygons) == 2
    canvas = Image.new("1", (60, 40))
    for p in polygons:
        ImageDraw.Draw(canvas).polygon(p, fill=1, outline=1)
    drawn = np.asarray(canvas)
    assert (drawn & mask).sum() / (drawn | mask).sum() > 0.9
    assert mask_polygons(np.zeros((5, 5), dtype=bool)) == []


# --------------------------------------------------------------------------- sessions and uploads


def test_session_store_reserves_places(tmp_path):
    store = SessionStore(tmp_path, max_sessions=2, idle_timeout_s=60)
    a, b = store.reserve(), store.reserve()
    assert a != b and a.parent == tmp_path and a.name.startswith("session-")
    with pytest.raises(TooManySessions, match="2 at most"):
        store.reserve()
    store.unreserve()
    store.reserve()
    ids = {store.new_id() for _ in range(100)}
    assert len(ids) == 100 and min(map(len, ids)) >= 32


@pytest.mark.parametrize(
    "content_type, kind",
    [("image/png", "image"), ("IMAGE/JPEG; charset=binary", "image"), ("video/mp4", "video"), ("video/quicktime", "video")],
)
def test_upload_kinds(content_type, kind):
    assert upload_kind(content_type)[0] == kind


@pytest.mark.parametrize("content_type", [None, "", "text/plain", "application/octet-stream", "multipart/form-data; boundary=x"])
def test_refused_content_types(content_type):
    with pytest.raises(UploadError) as info:
        upload_kind(content_type)
    assert info.value.status == 415


def test_declared_sizes():
    check_declared_size(None, 10)
    check_declared_size("10", 10)
    for value, status in (("11", 413), ("0", 400), ("ten", 400)):
        with pytest.raises(UploadError) as info:
            check_declared_size(value, 10)
        assert info.value.status == status


def test_settings_refuse_bad_limits():
    with pytest.raises(ValueError, match="max_sessions"):
        ServerSettings(max_sessions=0)
    with pytest.raises(ValueError, match="full_memory_frames"):
        ServerSettings(full_memory_frames=0)
    with pytest.raises(ValueError, match="memory 'sam2long': unknown memory strategy 'sam2long'"):
        ServerSettings(memory="sam2long")
    assert ServerSettings(idle_timeout_s=0.2).sweep_interval_s == pytest.approx(0.05)



# --------------------------------------------------------------------------- the command line


@pytest.mark.parametrize(
    "extra, fragment",
    [
        (["--port", "0"], "--port 0"),
        (["--max-sessions", "0"], "--max-sessions"),
        (["--device", "tpu"], "--device 'tpu'"),
        (["--memory", "sam2long"], "--memory sam2long: unknown memory strategy"),
    ],
)
def test_serve_refuses_bad_flags_before_loading_a_model(tmp_path, capsys, extra, fragment):
    from samstream.cli import main

    config, weights = tmp_path / "model.yaml", tmp_path / "model.pt"
    config.write_text("model: {}\n")
    weights.write_bytes(b"")  # never read: the flags are refused first
    code = main(["serve", "--config", str(config), "--checkpoint", str(weights), *extra])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("samstream serve: error:") and fragment in err and len(err.splitlines()) == 1


def test_serve_help_says_it_binds_to_localhost(capsys):
    from samstream.cli import main

    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "default: 127.0.0.1, this machine only" in out
    assert "(default: samstream- synthetic)" in out or "(default: samstream-synthetic)" in out  # argparse may wrap at '-' 
