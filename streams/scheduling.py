"""The scheduler's process-side helpers: the due index, the rate limit and the run's token.

These are what :class:`streams.stages.dispatch.ScheduleSurveys` asks its
:class:`~streams.stages.dispatch.Agenda` for; both runtimes use them.

- **The due index** is in memory: per partition a heap of (due time,
  survey id), rebuilt with one scan of the actively owned part of the state
  when a tick finds it stale (after every rebalance) and kept up to date
  from the stage's :class:`~streams.stages.dispatch.Due` observations. A
  full scan per tick would not keep up with a million entries; a second
  table keyed by time bucket would double the changelog traffic for no
  gain, since the state is the truth and the heap only a hint (the stage
  checks every entry against the state).
- **The rate limit**: a survey is handed to the provider only when the
  channel's token bucket has a token (``[dispatch] burst``) and its
  :class:`SendWindow` has room, so that no one-second window at the provider
  holds more than ``sms_per_second`` (or ``email_per_second``) requests
  (``palaute bench dispatch`` checks this).
- **The run's token**, new at every assignment, names the ticks this run
  writes (the stage's own-tick rule).

No faust and no client library here.
"""

from __future__ import annotations

import heapq
import logging
import math
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from engine.ids import letters
from engine.lifecycle import TokenBucket, due_at
from schemas.base import SurveyChannel
from streams.stages.dispatch import Due, Ticked
from streams.stages.dispatch_records import decode_entry

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from datetime import datetime

    from engine.lifecycle import RetryPolicy
    from schemas.config import DispatchConfig

log = logging.getLogger(__name__)


@dataclass
class DueIndex:
    """Per partition, a heap of (due time, survey id); a hint, re-checked against the state.

    :meth:`take` hands ids out and keeps them in hand until :meth:`settle`
    says when to look at each again: a batch handled again after a failed
    checkpoint is given the same ids, so none is lost between the two.
    """

    heaps: dict[int, list[tuple[datetime, str]]] = field(default_factory=dict)
    in_hand: dict[int, dict[str, None]] = field(default_factory=dict)
    fresh: bool = False

    def push(self, partition: int, when: datetime | None, survey_id: str) -> None:
        """Remember that a survey may need attention at ``when``."""
        if when is not None:
            heapq.heappush(self.heaps.setdefault(partition, []), (when, survey_id))

    def pop_due(self, partition: int, now: datetime) -> list[str]:
        """Take every survey id due by ``now`` (each once), not keeping it in hand."""
        heap = self.heaps.get(partition, [])
        taken: dict[str, None] = {}
        while heap and heap[0][0] <= now:
            taken[heapq.heappop(heap)[1]] = None
        return list(taken)

    def take(self, partition: int, now: datetime, limit: int) -> list[str]:
        """Give up to ``limit`` ids due by ``now``, those still in hand first."""
        hand = self.in_hand.setdefault(partition, {})
        heap = self.heaps.get(partition, [])
        while len(hand) < limit and heap and heap[0][0] <= now:
            hand[heapq.heappop(heap)[1]] = None
        return list(hand)[:limit]

    def settle(self, partition: int, survey_id: str, when: datetime | None) -> None:
        """Put an id back for ``when`` (None: until an event), out of hand."""
        self.in_hand.get(partition, {}).pop(survey_id, None)
        self.push(partition, when, survey_id)

    def clear(self) -> None:
        """Forget everything; the next tick rebuilds from the state."""
        self.heaps.clear()
        self.in_hand.clear()
        self.fresh = False

    def rebuild(
        self, entries: Iterable[tuple[str, str]], actives: set[int], policy: RetryPolicy
    ) -> None:
        """Index every survey of the state in the actively owned partitions."""
        began = time.monotonic()
        self.clear()
        for survey_id, value in entries:
            partition, state = decode_entry(value)
            if partition in actives:
                self.push(partition, due_at(state, policy), survey_id)
        self.fresh = True
        # The benchmark (palaute bench scheduler) reads this line as "state recovered".
        log.info(
            "due index rebuilt: %d surveys in %d partitions in %.2f s",
            sum(len(heap) for heap in self.heaps.values()),
            len(actives),
            time.monotonic() - began,
        )


@dataclass
class SendWindow:
    """At most ``per_second`` provider calls in any one second, as the provider counts them.

    A call counts from its start until one second after it ended. Its request
    reaches the provider somewhere in between, so no one-second window at the
    provider ever holds more than the limit, however the network delays the
    requests. A token bucket alone lets ``burst`` more through in the first
    second, and counts when the decision was made rather than when the
    request left. Rates below one a second get a window of ``1 / per_second``.
    """

    per_second: float
    in_flight: int = 0
    ends: deque[float] = field(default_factory=deque)

    @property
    def seconds(self) -> float:
        """The window's length."""
        return max(1.0, 1.0 / self.per_second)

    @property
    def limit(self) -> int:
        """Calls allowed in one window."""
        return max(1, math.floor(self.per_second * self.seconds + 1e-9))

    def wait(self, now: float) -> float:
        """Seconds until a call may start (0: now); ``now`` on the monotonic clock."""
        while self.ends and now - self.ends[0] >= self.seconds:
            self.ends.popleft()
        if len(self.ends) + self.in_flight < self.limit:
            return 0.0
        if not self.ends:
            return self.seconds
        return self.seconds - (now - self.ends[0])

    def started(self) -> None:
        """Count a call from its start."""
        self.in_flight += 1

    def ended(self, now: float) -> None:
        """Count a call until a window after its end."""
        self.in_flight -= 1
        self.ends.append(now)


class Pacer:
    """Each channel's token bucket and send window, as one rate limit."""

    def __init__(
        self, dispatch: DispatchConfig, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.buckets = {
            SurveyChannel.SMS: TokenBucket(dispatch.sms_per_second, dispatch.burst),
            SurveyChannel.EMAIL: TokenBucket(dispatch.email_per_second, dispatch.burst),
        }
        self.windows = {
            SurveyChannel.SMS: SendWindow(dispatch.sms_per_second),
            SurveyChannel.EMAIL: SendWindow(dispatch.email_per_second),
        }
        self.monotonic = monotonic

    def admit(self, channel: SurveyChannel, now: datetime) -> datetime | None:
        """Take a token for a send now; None: go, else the moment to try again."""
        wait = self.windows[channel].wait(self.monotonic())
        if wait > 0:
            return now + timedelta(seconds=wait)
        bucket = self.buckets[channel].take(now)
        if bucket is None:
            return now + self.buckets[channel].wait(now)
        self.buckets[channel] = bucket
        return None


def new_token() -> str:
    """Draw a run's token: random, so that no other run's ticks pass for this one's."""
    return letters(secrets.token_bytes(8), 13)


class RunAgenda:
    """The :class:`~streams.stages.dispatch.Agenda` of one process, for either runtime.

    ``entries`` and ``actives`` read the stage's state and the partitions
    this process actively owns; the index is rebuilt from them at the first
    tick after :meth:`restart` (the runtime calls it at every assignment),
    once the state is recovered and the stage is handling records again.
    """

    def __init__(
        self,
        policy: RetryPolicy,
        pacer: Pacer,
        entries: Callable[[], Iterable[tuple[str, str]]],
        actives: Callable[[], set[int]],
        tokens: Callable[[], str] = new_token,
    ) -> None:
        self.index = DueIndex()
        self.pacer = pacer
        self._policy = policy
        self._entries = entries
        self._actives = actives
        self._tokens = tokens
        self._token = tokens()
        #: A send was admitted in the batch being handled.
        self._granted = False
        #: Partitions are being revoked: nothing is due until they are assigned again.
        self._paused = False

    def run(self) -> str:
        """Give this run's token."""
        return self._token

    def due(self, partition: int, now: datetime, limit: int) -> list[str]:
        """Give the surveys that may be due, rebuilding the index first if it is stale.

        Nothing is due while a rebalance is under way: the partitions may be
        another worker's by now, and the index is rebuilt once they are assigned.
        """
        if self._paused:
            return []
        if not self.index.fresh:
            self.index.rebuild(self._entries(), self._actives(), self._policy)
        return self.index.take(partition, now, limit)

    def admit(self, channel: SurveyChannel, now: datetime) -> datetime | None:
        """Admit the batch's one send, within the rate limit."""
        if self._granted:
            return now
        wait = self.pacer.admit(channel, now)
        self._granted = wait is None
        return wait

    def observe(self, observation: Any) -> None:
        """Keep the index up to date; free the send's place once a batch with a tick is done."""
        if isinstance(observation, Due) and self.index.fresh:
            self.index.settle(observation.partition, observation.survey_id, observation.when)
        elif isinstance(observation, Ticked):
            self._granted = False

    def revoked(self) -> None:
        """Forget the index and act on nothing: the partitions may no longer be ours."""
        self.index.clear()
        self._paused = True

    def restart(self) -> None:
        """Begin a new run: a new token and an index rebuilt at the next tick."""
        self.index.clear()
        self._token = self._tokens()
        self._granted = False
        self._paused = False
