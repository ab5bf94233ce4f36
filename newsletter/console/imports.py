"""CSV imports started from the console: each runs as a task of the web process, its progress
watched live and its report kept a while for the page that shows it."""

from __future__ import annotations

import asyncio
import secrets
import shutil
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from newsletter.context import AppContext
from newsletter.errors import InvalidInput
from newsletter.logs import get_logger
from newsletter.subscriptions.audit import Actor
from newsletter.subscriptions.importing import ImportReport, import_csv

log = get_logger(__name__)
KEPT = 50  # finished imports whose reports can still be shown
INTERVAL_SECONDS = 0.5


@dataclass
class ImportJob:
    id: str
    owner: str  # the account that started it: only it sees the job
    phase: str = "checking"  # checking | writing | done | failed
    done: int = 0
    total: int | None = None
    report: ImportReport | None = None
    error: str = ""
    started: float = field(default_factory=time.monotonic)

    @property
    def finished(self) -> bool:
        return self.phase in ("done", "failed")

    @property
    def share(self) -> float | None:
        """0..1 of the whole; None while the rows are checked (how many there are is not known yet)."""
        if self.finished:
            return 1.0
        if self.phase == "writing" and self.total:
            return 0.5 + 0.5 * min(self.done, self.total) / self.total
        return None

    def as_json(self) -> dict[str, object]:
        share = self.share
        return {
            "phase": self.phase,
            "done": self.done,
            "total": self.total,
            "share": None if share is None else round(share, 3),
        }


Finished = Callable[[ImportJob], Awaitable[None]]


class Imports:
    """The imports of one web process (a job is watched on the process that runs it)."""

    def __init__(self) -> None:
        self._jobs: OrderedDict[str, ImportJob] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    def start(
        self,
        context: AppContext,
        folder: Path,
        owner: str,
        actor: Actor,
        options: dict[str, bool],
        finished: Finished,
    ) -> ImportJob:
        """Import `folder`/file in the background; the folder is removed when it ends."""
        job = ImportJob(secrets.token_urlsafe(12), owner)
        self._jobs[job.id] = job
        self._forget_old()
        task = asyncio.create_task(self._run(context, job, folder, actor, options, finished))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    def find(self, job_id: str, owner: str) -> ImportJob | None:
        job = self._jobs.get(job_id)
        return job if job is not None and job.owner == owner else None

    async def watch(self, job: ImportJob, interval: float = INTERVAL_SECONDS) -> AsyncIterator[ImportJob]:
        """The job now, then every `interval` until it has finished (that state included)."""
        while True:
            yield job
            if job.finished:
                return
            await asyncio.sleep(interval)

    async def _run(
        self,
        context: AppContext,
        job: ImportJob,
        folder: Path,
        actor: Actor,
        options: dict[str, bool],
        finished: Finished,
    ) -> None:
        def told(phase: str, done: int, total: int | None) -> None:
            job.phase, job.done, job.total = phase, done, total

        try:
            job.report = await import_csv(context, folder / "file", actor=actor, progress=told, **options)
            job.phase = "done"
        except InvalidInput as exc:
            job.error, job.phase = f"{exc.field}: {exc.message}", "failed"
        except Exception as exc:  # the page says so; the log has the rest
            log.error("console.import_failed", job=job.id, error=type(exc).__name__)
            job.error, job.phase = "the import failed: nothing was written (see the service's log)", "failed"
        finally:
            await asyncio.to_thread(shutil.rmtree, folder, True)
        await finished(job)

    def _forget_old(self) -> None:
        done = [job_id for job_id, job in self._jobs.items() if job.finished]
        for job_id in done[: max(0, len(done) - KEPT)]:
            del self._jobs[job_id]

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
