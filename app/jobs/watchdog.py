"""A worker that has stopped taking work exits, so that whatever supervises it starts a fresh one.

After a restart of Redis, a Celery worker sometimes reconnects but never consumes again (Celery
5.x with kombu's Redis transport: celery#8030, #8091, #9054). It answers pings and looks alive
while its queues fill up; only a new process helps. So the worker's main process watches
itself: when messages have waited in a queue it consumes, while it had a free slot, for
``REWARDSMITH_WORKER_STALL_SECONDS`` in a row, it says so and stops as on SIGTERM (its running
trainings are handed back, the stop is bounded), with a non-zero exit code. `rewardsmith
serve`'s supervisor, compose (``restart: unless-stopped``) or systemd then start it again.

The queue sizes come from the broker itself on a connection of the watchdog's own (a passive
queue declare: Redis LLEN, the SQL broker's count, AMQP's message count), so a stalled
consumer cannot hide them. A broker that does not answer is not a stall: the consumer's own
reconnection handles that.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from celery import Celery, signals
from celery.worker import state

from app.config import get_settings

log = logging.getLogger(__name__)

EXIT_STALLED = 75
"""The exit code of a worker that stopped itself for a stall (EX_TEMPFAIL: start it again)."""


@dataclass
class StallClock:
    """Decides, from one observation after another, whether the worker has stalled: work waited in its queues while
    it had a free slot and took no task, in every observation of the last ``stall_seconds``."""

    stall_seconds: float
    since: float | None = None
    taken: int = -1
    waiting: dict[str, int] = field(default_factory=dict)

    def observe(self, now: float, free_slots: int, waiting: dict[str, int] | None, taken: int = 0) -> bool:
        """One observation: ``free_slots`` the worker could start now, ``waiting`` messages per queue (None: the
        broker did not answer), ``taken`` tasks it has started since it started (a worker working through a backlog of
        short tasks may show a free slot and waiting work at every look, but it takes them). True once the stall has
        lasted ``stall_seconds``."""
        if free_slots <= 0 or waiting is None or not any(waiting.values()):
            self.since, self.waiting, self.taken = None, {}, taken
            return False
        if taken != self.taken:
            self.since, self.taken = None, taken
        self.waiting = {q: n for q, n in waiting.items() if n}
        if self.since is None:
            self.since = now
        return now - self.since >= self.stall_seconds


def queue_sizes(app: Celery, queues: Iterable[str], timeout: float = 5.0) -> dict[str, int] | None:
    """Messages waiting in each of ``queues`` (not those a worker holds unacknowledged), asked of the broker on a
    fresh connection; None when it does not answer within ``timeout``."""
    try:
        with app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
            channel = conn.default_channel
            sizes = {}
            for name in queues:
                try:
                    sizes[name] = int(channel.queue_declare(queue=name, passive=True).message_count)
                except Exception:  # not declared yet (nothing was ever sent to it): nothing waits there
                    channel = conn.channel()
                    sizes[name] = 0
            return sizes
    except Exception as e:  # a broker that is down or restarting: the consumer reconnects by itself
        log.debug("watchdog: broker did not answer: %s", e)
        return None


class Watchdog:
    """Looks every ``stall_seconds / 4`` at the worker's free slots and its queues; calls ``on_stall`` once."""

    def __init__(
        self,
        free_slots: Callable[[], int],
        sizes: Callable[[], dict[str, int] | None],
        stall_seconds: float,
        on_stall: Callable[[StallClock], None],
        taken: Callable[[], int] = lambda: state.all_total_count[0],
    ) -> None:
        self.free_slots, self.sizes, self.on_stall, self.taken = free_slots, sizes, on_stall, taken
        self.clock = StallClock(stall_seconds)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="rewardsmith-watchdog", daemon=True)

    def start(self) -> Watchdog:
        self.thread.start()
        return self

    def _run(self) -> None:
        every = max(0.5, self.clock.stall_seconds / 4)
        while not self.stop.wait(every):
            if state.should_stop is not None or state.should_terminate is not None:
                return  # stopping anyway
            free = self.free_slots()
            waiting = self.sizes() if free > 0 else {}
            if self.clock.observe(time.monotonic(), free, waiting, self.taken()):
                self.on_stall(self.clock)
                return


def stop_stalled_worker(clock: StallClock, hostname: str = "") -> None:
    """Say what happened, then stop as Celery stops on SIGTERM (lifecycle hands the running work back and bounds the
    stop), but exit with ``EXIT_STALLED``."""
    waited = ", ".join(f"{n} in '{q}'" for q, n in sorted(clock.waiting.items()))
    print(
        f"worker: messages have waited in its queues ({waited}) for {clock.stall_seconds:g} s "
        "(REWARDSMITH_WORKER_STALL_SECONDS) while it had a free slot: its consumer has stopped taking work, as Celery "
        "sometimes does after the broker restarts. Stopping so that its supervisor (rewardsmith serve, compose, "
        f"systemd) starts a fresh worker; exit code {EXIT_STALLED}.",
        file=sys.__stderr__,
        flush=True,
    )
    signals.worker_shutting_down.send(sender=hostname, sig="SIGTERM", how="Warm", exitcode=EXIT_STALLED)
    state.should_stop = EXIT_STALLED  # what Celery's SIGTERM handler sets: the consumer's loop raises WorkerShutdown


_started: Watchdog | None = None


@signals.worker_ready.connect
def _start(sender: object, **_: object) -> None:
    """In the worker's main process, once its consumer is ready: watch it (unless the setting is 0)."""
    global _started
    seconds = get_settings().worker_stall_seconds
    if _started is not None or seconds <= 0:
        return
    consumer = sender
    app = consumer.app  # type: ignore[attr-defined]
    concurrency = int(getattr(consumer.controller, "concurrency", 1) or 1)  # type: ignore[attr-defined]
    queues = sorted(app.amqp.queues.consume_from)  # what it was started to consume, whatever its consumer holds now

    def free_slots() -> int:
        return concurrency - len(state.reserved_requests)

    def on_stall(clock: StallClock) -> None:
        stop_stalled_worker(clock, consumer.hostname)  # type: ignore[attr-defined]

    _started = Watchdog(free_slots, lambda: queue_sizes(app, queues), seconds, on_stall).start()
