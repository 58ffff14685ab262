"""The one thread that runs the model, fed from a bounded queue.

Every use of the model (and of a session's tracker state) is a job on this thread, so no two
forward passes ever run at once on shared state. A job is either a function, run once, or a
*stepper*: an iterator advanced one step per turn (one propagated frame) and put back at the
end of the queue, so a long propagation shares the model fairly with other sessions' clicks.
Cancelling a stepper needs no turn on the model: it checks its own flag before each step.
"""

from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import Future
from typing import Any, Callable, Iterator, NamedTuple


class WorkerBusy(RuntimeError):
    """The queue is full: the request is refused rather than queued without bound."""


class WorkerStopped(RuntimeError):
    """The worker has been stopped (the server is shutting down)."""


class _Job(NamedTuple):
    run: Callable[[], Any] | None  # a one-shot job
    steps: Iterator[Any] | None  # a stepper
    future: Future


class ModelWorker:
    """A single thread executing jobs in order; ``queue_size`` bounds the jobs waiting.

    ``submit(fn)`` -> Future of ``fn()``; ``submit_steps(iterator)`` -> Future that is done
    (result None) when the iterator is exhausted. ``urgent=True`` (clean-up jobs) skips the
    bound and goes to the front.
    """

    def __init__(self, queue_size: int, *, name: str = "samstream-model") -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        self.queue_size = int(queue_size)
        self._jobs: deque[_Job] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self.jobs_done = 0

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the job in progress, fail the ones waiting, and end the thread."""
        with self._cond:
            self._stopping = True
            waiting = list(self._jobs)
            self._jobs.clear()
            self._cond.notify_all()
        for job in waiting:
            if job.steps is not None:
                _close(job.steps)
            if not job.future.done():
                job.future.set_exception(WorkerStopped("the server is shutting down"))
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self._stopping

    def on_worker_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def pending(self) -> int:
        """Jobs waiting (steppers in progress included)."""
        with self._cond:
            return len(self._jobs)

    # ------------------------------------------------------------------ submitting
    def submit(self, fn: Callable[[], Any], *, urgent: bool = False) -> Future:
        return self._put(_Job(fn, None, Future()), urgent)

    def submit_steps(self, steps: Iterator[Any]) -> Future:
        return self._put(_Job(None, steps, Future()), False)

    def _put(self, job: _Job, urgent: bool) -> Future:
        with self._cond:
            if self._stopping:
                raise WorkerStopped("the server is shutting down")
            if not urgent and len(self._jobs) >= self.queue_size:
                raise WorkerBusy(f"the model is busy: {len(self._jobs)} jobs are waiting (limit {self.queue_size}); retry shortly")
            if urgent:
                self._jobs.appendleft(job)
            else:
                self._jobs.append(job)
            self._cond.notify()
        return job.future

    # ------------------------------------------------------------------ the thread
    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    return
                job = self._jobs.popleft()
            if job.run is not None:
                self._run_once(job)
            else:
                self._step(job)

    def _run_once(self, job: _Job) -> None:
        if not job.future.set_running_or_notify_cancel():
            return
        try:
            result = job.run()  # type: ignore[misc]
        except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the future
            job.future.set_exception(exc)
        else:
            job.future.set_result(result)
        self.jobs_done += 1

    def _step(self, job: _Job) -> None:
        future = job.future
        if future.cancelled():
            _close(job.steps)  # type: ignore[arg-type]
            return
        if not future.running():
            future.set_running_or_notify_cancel()
        try:
            next(job.steps)  # type: ignore[arg-type]
        except StopIteration:
            future.set_result(None)
            self.jobs_done += 1
            return
        except BaseException as exc:  # noqa: BLE001
            future.set_exception(exc)
            self.jobs_done += 1
            return
        with self._cond:
            if self._stopping:
                stopped = True
            else:
                stopped = False
                self._jobs.append(job)  # back of the queue: other jobs get their turn
                self._cond.notify()
        if stopped:
            _close(job.steps)  # type: ignore[arg-type]
            if not future.done():
                future.set_exception(WorkerStopped("the server is shutting down"))


def _close(steps: Iterator[Any]) -> None:
    close = getattr(steps, "close", None)
    if close is not None:
        try:
            close()
        except Exception:  # noqa: BLE001 - closing a stepper must not take the worker down
            pass
