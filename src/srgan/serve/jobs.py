"""Upscaling jobs: a bounded queue served by one worker thread, results kept until they expire.

One worker per server (the server drives one device), so at most one image is upscaled at a time and
a second request waits its turn instead of competing for the same memory. Every job gets a folder named
after its server-generated UUID inside the server's own temporary folder; nothing a request sends
becomes part of a path.
"""

from __future__ import annotations

import collections
import enum
import logging
import random
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from srgan.errors import SrganError

logger = logging.getLogger("srgan.serve")

RESULT_FILE_NAME = "result.png"

# How often the idle worker wakes up to delete expired results.
_SWEEP_INTERVAL_S = 30.0


class JobStatus(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass
class Job:
    """One upscaling request. `payload` is what the runner needs (the decoded image), dropped once run."""

    id: uuid.UUID
    model: str
    outscale: float | None  # None until the worker resolves "the model's own scale"
    input_size: tuple[int, int]
    payload: Any
    folder: Path
    stem: str = "image"  # the upload's file name stem: its result is downloaded as <stem>_<model>_x<scale>.png
    status: JobStatus = JobStatus.QUEUED
    progress: float = 0.0
    output_size: tuple[int, int] | None = None
    error: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    result_bytes: int = 0
    client: str = ""  # who asked (the client's address), for the per-client limit

    @property
    def result_path(self) -> Path:
        return self.folder / RESULT_FILE_NAME


class QueueFullError(Exception):
    """The waiting line is full; `retry_after_s` estimates when a place frees up."""

    def __init__(self, retry_after_s: int, message: str | None = None):
        super().__init__(message or f"the server is busy; retry in {retry_after_s} s")
        self.retry_after_s = retry_after_s


class ClientLimitError(QueueFullError):
    """This client already has as many jobs waiting or running as one client may."""


# runner(job, report_progress) writes job.result_path and returns the output size (width, height).
JobRunner = Callable[[Job, Callable[[float], None]], tuple[int, int]]


class JobQueue:
    """Queued jobs run one by one on a worker thread; finished ones are forgotten after `result_ttl_s`,
    or sooner, oldest first, when the results kept take more than `max_kept_bytes` (the newest result is
    always kept, so a job's own result is never gone before its client could fetch it)."""

    def __init__(
        self,
        work_dir: Path,
        runner: JobRunner,
        *,
        max_waiting: int,
        result_ttl_s: float,
        max_kept_bytes: int | None = None,
        max_per_client: int | None = None,
    ):
        self.work_dir = work_dir
        self.max_waiting = max_waiting
        self.result_ttl_s = result_ttl_s
        self.max_kept_bytes = max_kept_bytes
        self.max_per_client = max_per_client
        self._runner = runner
        self._jobs: dict[uuid.UUID, Job] = {}
        self._waiting: collections.deque[Job] = collections.deque()
        self._recent_durations: collections.deque[float] = collections.deque(maxlen=10)
        self._lock = threading.Condition()
        self._stopping = False
        self._worker = threading.Thread(target=self._work, name="srgan-serve-worker", daemon=True)

    def start(self) -> None:
        self._worker.start()

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop the worker (the job in progress may finish first) and delete every job's files."""
        with self._lock:
            self._stopping = True
            self._waiting.clear()
            self._lock.notify_all()
        if self._worker.is_alive():
            self._worker.join(timeout_s)
        shutil.rmtree(self.work_dir, ignore_errors=True)

    def new_job_folder(self) -> tuple[uuid.UUID, Path]:
        """A fresh job id and its empty folder, for the upload to be stored in before `submit`."""
        job_id = uuid.uuid4()
        folder = self.work_dir / job_id.hex
        folder.mkdir(parents=True)
        return job_id, folder

    def submit(self, job: Job) -> None:
        """Queue `job`, or raise QueueFullError (and delete its folder) when the line is full, or its
        subclass ClientLimitError when `job.client` already has `max_per_client` jobs waiting or running."""
        with self._lock:
            self._expire_old_results()
            if self.max_per_client is not None:
                active = sum(
                    1 for other in self._jobs.values()
                    if other.client == job.client and other.status in (JobStatus.QUEUED, JobStatus.RUNNING)
                )
                if active >= self.max_per_client:
                    shutil.rmtree(job.folder, ignore_errors=True)
                    wait = self.estimate_wait_s()
                    raise ClientLimitError(
                        wait, f"you already have {active} job(s) waiting or running, the most one client may "
                        f"have here; retry in {wait} s"
                    )
            if len(self._waiting) >= self.max_waiting:
                shutil.rmtree(job.folder, ignore_errors=True)
                raise QueueFullError(self.estimate_wait_s())
            self._jobs[job.id] = job
            self._waiting.append(job)
            self._lock.notify_all()

    def get(self, job_id: uuid.UUID) -> Job | None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None and self._is_expired(job, time.time()):
                return None
            return job

    def queue_position(self, job: Job) -> int | None:
        """1 for the next job to run, 2 for the one after...; None once running or finished."""
        with self._lock:
            for position, waiting in enumerate(self._waiting, start=1):
                if waiting is job:
                    return position
            return None

    def is_full(self) -> bool:
        with self._lock:
            return len(self._waiting) >= self.max_waiting

    def estimate_wait_s(self) -> int:
        """Seconds a client refused with 503 should wait before trying again."""
        typical = sum(self._recent_durations) / len(self._recent_durations) if self._recent_durations else 5.0
        # Time until the job in progress and the one ahead of a new arrival are done, kept in a sane range,
        # spread at random up to twice that (+2 s) so that refused clients do not all retry in the same instant.
        base = max(1, min(120, round(typical * 2)))
        return random.randint(base, min(240, 2 * base + 2))

    def _is_expired(self, job: Job, now: float) -> bool:
        return job.finished_at is not None and now - job.finished_at > self.result_ttl_s

    def _expire_old_results(self) -> None:
        now = time.time()
        for job in [job for job in self._jobs.values() if self._is_expired(job, now)]:
            self._forget(job)

    def _evict_over_cap(self) -> None:
        """Forget the oldest finished jobs until the kept results fit `max_kept_bytes` (newest kept)."""
        if self.max_kept_bytes is None:
            return
        finished = sorted((job for job in self._jobs.values() if job.finished_at is not None),
                          key=lambda job: job.finished_at)
        kept = sum(job.result_bytes for job in finished)
        for job in finished[:-1]:
            if kept <= self.max_kept_bytes:
                break
            kept -= job.result_bytes
            logger.info("deleting the result of job %s to keep results under %d bytes", job.id, self.max_kept_bytes)
            self._forget(job)

    def _forget(self, job: Job) -> None:
        del self._jobs[job.id]
        shutil.rmtree(job.folder, ignore_errors=True)

    def _next_job(self) -> Job | None:
        with self._lock:
            while not self._waiting and not self._stopping:
                self._lock.wait(_SWEEP_INTERVAL_S)
                self._expire_old_results()
            if self._stopping:
                return None
            job = self._waiting.popleft()
            job.status = JobStatus.RUNNING
            job.started_at = time.time()
            return job

    def _work(self) -> None:
        while (job := self._next_job()) is not None:
            self._run(job)

    def _run(self, job: Job) -> None:
        def report_progress(fraction: float) -> None:
            job.progress = min(1.0, max(job.progress, fraction))

        try:
            output_size = self._runner(job, report_progress)
        except SrganError as error:
            self._finish(job, error=str(error))
        except Exception:
            logger.exception("job %s failed", job.id)
            self._finish(job, error="internal error while upscaling; the server log has the details")
        else:
            self._finish(job, output_size=output_size)

    def _finish(self, job: Job, *, output_size: tuple[int, int] | None = None, error: str | None = None) -> None:
        with self._lock:
            job.payload = None  # the decoded input is no longer needed; free its memory now
            job.finished_at = time.time()
            job.output_size = output_size
            job.error = error
            if error is None:
                job.progress = 1.0
                job.status = JobStatus.DONE
                job.result_bytes = job.result_path.stat().st_size if job.result_path.is_file() else 0
            else:
                job.status = JobStatus.FAILED
            self._recent_durations.append(job.finished_at - (job.started_at or job.finished_at))
            self._evict_over_cap()
