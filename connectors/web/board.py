"""What the dashboard and the open-data feed know, rebuilt from Kafka at start-up.

The web process reads the metrics, alerts, comments, history and ratings topics from
the beginning, without a consumer group, into memory and keeps following
them, so a restart needs nothing but Kafka.

Memory bounds, by design:

- metrics: the latest TouchpointMetrics of each touchpoint and window (the
  compacted topic's own size), and per touchpoint and window a trend of at
  most :data:`TREND_POINTS` (mean, count) points;
- alerts: every firing alert and the latest :data:`RESOLVED_KEPT` resolved
  ones, each with its latest acknowledgement;
- comments: the latest :data:`COMMENTS_KEPT` per touchpoint (already redacted
  when written), and up to :data:`PENDING_KEPT` comments whose survey's rating
  has not been seen yet; a tombstone on the comments topic (a citizen asked
  to be forgotten) takes its comment off the board;
- history: the daily and hourly counts of the history topic (see
  :mod:`connectors.web.history`), so the console can compare a year with the last;
- ratings: the latest revision of each survey answered in the open-data
  period (``[opendata] days``), about 200 bytes each: a million answers a
  month cost about 200 MiB; older ones are pruned as they age;
- statements: the latest answer to each follow-up statement of each survey
  in the same period (the responses topic), about 150 bytes each.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

from aiohttp import web
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from pydantic import TypeAdapter, ValidationError

from connectors.kafka_client import client_options, topic_partitions
from connectors.web.history import History
from engine.group_figures import StatementAnswer
from engine.opendata import Answer
from schemas.alerts import AlertAcknowledged, AlertEvent, AlertState, ScoreDropAlert
from schemas.history import HistoryCounts
from schemas.metrics import Dimension, TouchpointMetrics
from schemas.responses import CommentReceived, Rating, StatementAnswered
from schemas.topics import comment_key

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from schemas.config import KafkaConfig, Settings

log = logging.getLogger(__name__)

TREND_POINTS: Final = 48
RESOLVED_KEPT: Final = 200
COMMENTS_KEPT: Final = 20
PENDING_KEPT: Final = 10_000
SURVEYS_MAPPED: Final = 200_000
RETRY_AFTER: Final = 5.0
PRUNE_EVERY: Final = timedelta(minutes=5)
STOP_WITHIN: Final = 10.0
#: The ``|`` in a history topic key (see :func:`schemas.history.history_key`).
HISTORY_KEY_BARS: Final = 5

_ALERTS: TypeAdapter[ScoreDropAlert | AlertAcknowledged] = TypeAdapter(AlertEvent)


@dataclass(frozen=True, slots=True)
class TrendPoint:
    """One published figure of a window, for the sparkline."""

    as_of: datetime
    mean: float | None
    count: int


@dataclass(frozen=True, slots=True)
class Comment:
    """A redacted comment and when it was written."""

    text: str
    received_at: datetime
    key: str = ""  # its key on the comments topic, which a tombstone names


@dataclass
class Board:
    """Latest figures, alerts, comments and answers; ``changed`` wakes live views."""

    period: timedelta = timedelta(days=30)
    metrics: dict[tuple[str, str], TouchpointMetrics] = field(default_factory=dict)
    trends: dict[tuple[str, str], deque[TrendPoint]] = field(default_factory=dict)
    alerts: dict[str, ScoreDropAlert] = field(default_factory=dict)
    acks: dict[str, AlertAcknowledged] = field(default_factory=dict)
    comments: dict[str, deque[Comment]] = field(default_factory=dict)
    answers: dict[str, Answer] = field(default_factory=dict)
    statements: dict[tuple[str, int], StatementAnswer] = field(default_factory=dict)
    history: History = field(default_factory=History)
    version: int = 0
    _revisions: dict[str, int] = field(default_factory=dict)
    _touchpoint_of_survey: OrderedDict[str, str] = field(default_factory=OrderedDict)
    _pending: OrderedDict[str, list[Comment]] = field(default_factory=OrderedDict)
    _changed: asyncio.Condition | None = None

    def apply(self, event: object) -> None:
        """Fold one event of any followed topic into the board."""
        if isinstance(event, TouchpointMetrics):
            self._metrics(event)
        elif isinstance(event, ScoreDropAlert):
            self._alert(event)
        elif isinstance(event, AlertAcknowledged):
            self.acks[event.alert_id] = event
        elif isinstance(event, CommentReceived):
            self._comment(event)
        elif isinstance(event, Rating):
            self._rating(event)
        elif isinstance(event, StatementAnswered):
            self._statement(event)
        elif isinstance(event, HistoryCounts):
            self.history.apply(event)
        else:
            return
        self.version += 1

    def _metrics(self, event: TouchpointMetrics) -> None:
        if event.dimension is not Dimension.TOUCHPOINT:
            return
        key = (event.key, event.window)
        self.metrics[key] = event
        trend = self.trends.setdefault(key, deque(maxlen=TREND_POINTS))
        if trend and trend[-1].as_of >= event.as_of:
            return
        trend.append(TrendPoint(event.as_of, event.mean, event.count))

    def _alert(self, event: ScoreDropAlert) -> None:
        self.alerts[event.alert_id] = event
        resolved = sorted(
            (a for a in self.alerts.values() if a.state is AlertState.RESOLVED),
            key=lambda a: a.resolved_at or a.started_at,
        )
        for old in resolved[: max(0, len(resolved) - RESOLVED_KEPT)]:
            del self.alerts[old.alert_id]
            self.acks.pop(old.alert_id, None)

    def forget(self, key: str) -> bool:
        """Take the comment under a tombstoned key off the board; False if none was shown.

        Only the comments topic has keys of the form ``<survey id>|<answer id>``,
        so a tombstone of any other followed topic finds nothing here; a
        history key has five (``<touchpoint>|<dimension>|…``) and names a bucket.
        """
        if key.count("|") == HISTORY_KEY_BARS:
            found = self.history.forget(key)
            if found:
                self.version += 1
            return found
        survey_id = key.partition("|")[0]
        found = False
        pending = self._pending.get(survey_id)
        if pending is not None:
            kept = [comment for comment in pending if comment.key != key]
            found = len(kept) != len(pending)
            if kept:
                self._pending[survey_id] = kept
            else:
                del self._pending[survey_id]
        for touchpoint, comments in self.comments.items():
            if any(comment.key == key for comment in comments):
                self.comments[touchpoint] = deque(
                    (comment for comment in comments if comment.key != key), maxlen=COMMENTS_KEPT
                )
                found = True
        if found:
            self.version += 1
        return found

    def _comment(self, event: CommentReceived) -> None:
        comment = Comment(
            event.text, event.received_at, comment_key(event.survey_id, event.answer_id)
        )
        touchpoint = self._touchpoint_of_survey.get(event.survey_id)
        if touchpoint is not None:
            self._keep_comment(touchpoint, comment)
            return
        self._pending.setdefault(event.survey_id, []).append(comment)
        while len(self._pending) > PENDING_KEPT:
            self._pending.popitem(last=False)

    def _keep_comment(self, touchpoint: str, comment: Comment) -> None:
        kept = self.comments.setdefault(touchpoint, deque(maxlen=COMMENTS_KEPT))
        kept.append(comment)

    def _rating(self, event: Rating) -> None:
        self._touchpoint_of_survey[event.survey_id] = event.touchpoint_id
        self._touchpoint_of_survey.move_to_end(event.survey_id)
        while len(self._touchpoint_of_survey) > SURVEYS_MAPPED:
            self._touchpoint_of_survey.popitem(last=False)
        for comment in self._pending.pop(event.survey_id, []):
            self._keep_comment(event.touchpoint_id, comment)
        if self._revisions.get(event.survey_id, 0) > event.revision:
            return
        self._revisions[event.survey_id] = event.revision
        self.answers[event.survey_id] = Answer(
            event.touchpoint_id, event.scale, event.score, event.answered_at
        )

    def _statement(self, event: StatementAnswered) -> None:
        key = (event.survey_id, event.statement_index)
        known = self.statements.get(key)
        if known is not None and known.received_at > event.received_at:
            return
        self.statements[key] = StatementAnswer(
            event.statement_index, event.score, event.received_at
        )

    def touchpoint_of(self, survey_id: str) -> str | None:
        """Give the touchpoint of a survey whose rating the board has seen."""
        return self._touchpoint_of_survey.get(survey_id)

    def score_of(self, survey_id: str) -> int | None:
        """Give a survey's latest score while the board holds its answer."""
        answer = self.answers.get(survey_id)
        return None if answer is None else answer.score

    def statement_answers(self, touchpoint_id: str) -> list[StatementAnswer]:
        """Give the touchpoint's latest statement answers (of surveys whose rating was seen)."""
        touchpoint_of = self._touchpoint_of_survey
        return [
            answer
            for (survey, _), answer in self.statements.items()
            if touchpoint_of.get(survey) == touchpoint_id
        ]

    def prune(self, now: datetime) -> int:
        """Forget answers older than the period; return how many."""
        since = now - self.period
        old = [survey for survey, answer in self.answers.items() if answer.answered_at < since]
        for survey in old:
            del self.answers[survey]
            self._revisions.pop(survey, None)
        stale = [key for key, answer in self.statements.items() if answer.received_at < since]
        for key in stale:
            del self.statements[key]
        return len(old)

    def touchpoints(self) -> list[str]:
        """Every touchpoint with figures, sorted."""
        return sorted({key for key, _ in self.metrics})

    def windows(self) -> list[str]:
        """Every window seen, shortest first."""
        units = {"m": 60, "h": 3600, "d": 86400}
        seen = {window for _, window in self.metrics}
        return sorted(seen, key=lambda window: int(window[:-1]) * units[window[-1]])

    def touchpoint_alerts(self, touchpoint_id: str | None = None) -> list[ScoreDropAlert]:
        """Alerts, firing first then the most recent."""
        chosen = [
            alert
            for alert in self.alerts.values()
            if touchpoint_id is None or alert.touchpoint_id == touchpoint_id
        ]
        return sorted(
            chosen,
            key=lambda a: (a.state is not AlertState.FIRING, -a.started_at.timestamp()),
        )

    def condition(self) -> asyncio.Condition:
        """Give the condition notified after each batch of changes (made on first use)."""
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    async def notify(self) -> None:
        """Wake every live view."""
        changed = self.condition()
        async with changed:
            changed.notify_all()


_DECODERS: Final[tuple[tuple[bytes, Callable[[bytes], object]], ...]] = (
    (b'"TouchpointMetrics"', TouchpointMetrics.model_validate_json),
    (b'"ScoreDropAlert"', _ALERTS.validate_json),
    (b'"AlertAcknowledged"', _ALERTS.validate_json),
    (b'"CommentReceived"', CommentReceived.model_validate_json),
    (b'"Rating"', Rating.model_validate_json),
    (b'"StatementAnswered"', StatementAnswered.model_validate_json),
    (b'"HistoryCounts"', HistoryCounts.model_validate_json),
)


def decode(value: bytes | None) -> object | None:
    """Decode a record of a followed topic; None for tombstones, junk and other events."""
    if not value:
        return None
    for marker, parse in _DECODERS:
        if marker in value:
            try:
                event: object = parse(value)
            except ValidationError:
                return None
            return event
    return None


class BoardFollower:
    """Follows topics into a board from the beginning (no consumer group), one task each."""

    def __init__(
        self, kafka: KafkaConfig, board: Board, topics: list[str], clock: Callable[[], datetime]
    ) -> None:
        self._kafka = kafka
        self._board = board
        self._topics = topics
        self._clock = clock
        self._tasks: list[asyncio.Task[None]] = []
        self._caught_up = {topic: asyncio.Event() for topic in topics}
        self._stopping = asyncio.Event()

    @property
    def ready(self) -> bool:
        """True once every topic has been read up to where it ended at start-up."""
        return all(event.is_set() for event in self._caught_up.values())

    async def wait_ready(self) -> None:
        """Wait until every topic is caught up (wrap in ``asyncio.timeout`` to bound it)."""
        for event in self._caught_up.values():
            await event.wait()

    def start(self) -> None:
        """Start one follower task per topic."""
        self._tasks = [
            asyncio.create_task(self._follow(name), name=f"board-{name}") for name in self._topics
        ]

    async def stop(self) -> None:
        """Stop following: each task finishes its poll and closes its clients."""
        self._stopping.set()
        if not self._tasks:
            return
        _, late = await asyncio.wait(self._tasks, timeout=STOP_WITHIN)
        for task in late:
            task.cancel()
        for task in late:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _pause(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(RETRY_AFTER):
                await self._stopping.wait()

    async def _follow(self, topic: str) -> None:
        while not self._stopping.is_set():
            try:
                await self._read(topic)
            except KafkaError as error:
                log.warning("board: Kafka failed reading %s (%s); retrying", topic, error)
                await self._pause()

    async def _read(self, topic: str) -> None:
        partitions = await topic_partitions(self._kafka, topic)
        if not partitions:
            # A topic not made yet has nothing to catch up on; look again later.
            self._caught_up[topic].set()
            await self._pause()
            return
        consumer = AIOKafkaConsumer(**client_options(self._kafka), enable_auto_commit=False)
        try:
            await consumer.start()
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            last_prune = self._clock()
            while not self._stopping.is_set():
                batches = await consumer.getmany(timeout_ms=500, max_records=2000)
                values = [record for records in batches.values() for record in records]
                for record in values:
                    event = decode(record.value)
                    if event is not None:
                        self._board.apply(event)
                    elif record.value is None and record.key is not None:
                        self._board.forget(record.key.decode(errors="replace"))
                if values:
                    await self._board.notify()
                if self._clock() - last_prune > PRUNE_EVERY:
                    last_prune = self._clock()
                    self._board.prune(last_prune)
                if not self._caught_up[topic].is_set() and all(
                    [await consumer.position(tp) >= end for tp, end in ends.items()]
                ):
                    self._caught_up[topic].set()
        finally:
            await consumer.stop()


BOARD: Final = web.AppKey("board", Board)
FOLLOWER: Final = web.AppKey("board_follower", BoardFollower)


def board_of(app: web.Application, settings: Settings) -> Board:
    """Give the app's board, made (and followed while the app runs) on first use.

    The ratings topic is always followed (the public feed needs it); the
    metrics, alerts, comments, responses (follow-up statements) and history topics
    only when operators are configured, because only the dashboard shows them.
    """
    if BOARD in app:
        return app[BOARD]
    board = Board(period=timedelta(days=settings.opendata.days))
    names = settings.topics
    topics = [names.ratings]
    if settings.web.ops_token_sha256:
        topics += [names.metrics, names.alerts, names.comments, names.responses, names.history]
    follower = BoardFollower(settings.kafka, board, topics, lambda: datetime.now(UTC))
    app[BOARD] = board
    app[FOLLOWER] = follower
    app.cleanup_ctx.append(_following(follower))
    return board


def _following(follower: BoardFollower) -> Callable[[web.Application], AsyncIterator[None]]:
    async def follow(_app: web.Application) -> AsyncIterator[None]:
        follower.start()
        yield
        await follower.stop()

    return follow
