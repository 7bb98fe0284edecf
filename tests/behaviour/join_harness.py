"""One behaviour suite, two runtimes: the answers join as a test sees it, in memory or on Kafka.

A behaviour test writes survey events (as the intake and the dispatcher
would, to the surveys topic) and answers (as the web service and the SMS
hooks would, to the responses topic), and waits for the Ratings on the
ratings topic and the join's dead letters. :class:`MemoryJoin` runs
:class:`~streams.stages.responses.JoinAnswers` on the in-memory runtime with
the join's parts of the two shared readers, as the worker runs them;
:class:`KafkaJoin` feeds ``palaute worker`` on the session's
broker.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from aiokafka import AIOKafkaProducer

from schemas.base import Language, Scale, SurveyChannel
from schemas.config import load_settings
from schemas.contacts import TouchpointChannel
from schemas.deadletter import DeadLetter
from schemas.responses import AnswerVia, Rating, RatingReceived
from schemas.surveys import SurveyScheduled
from schemas.topics import TopicNames
from streams.partitioning import touchpoint_partition
from streams.runtime.checkpoint import DEADLETTER
from streams.runtime.fanout import FanOut
from streams.runtime.memory import MemoryBroker, MemoryRuntime
from streams.stages.responses import (
    BY_SURVEY,
    LABEL,
    RATINGS,
    ForwardAnswers,
    ForwardSurveys,
    JoinAnswers,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

    from tests.integration.dispatch_harness import Reader, Worker

CITIZEN = "ef" * 32
#: Far ahead, so a full worker's dispatcher never sends the test's surveys.
SEND_IN = timedelta(days=1)
EXPIRES_IN = timedelta(days=3)


def scheduled(survey_id: str, touchpoint_id: str, now: datetime) -> bytes:
    """Write the SurveyScheduled of a survey sent tomorrow that expires in three days."""
    event = SurveyScheduled(
        survey_id=survey_id,
        citizen_key=CITIZEN,
        contact_id=f"c-{survey_id}",
        touchpoint_id=touchpoint_id,
        occurred_at=now,
        channel=SurveyChannel.SMS,
        language=Language.FI,
        scale=Scale.CSAT_5,
        contact_ended_at=now,
        send_at=now + SEND_IN,
        expires_at=now + EXPIRES_IN,
        service="tax",
        touchpoint_channel=TouchpointChannel.PHONE,
    )
    return event.model_dump_json().encode()


def answer(
    survey_id: str,
    answer_id: str,
    score: int,
    now: datetime,
    *,
    confirmed: bool = True,
    after: timedelta = timedelta(minutes=1),
) -> bytes:
    """Write a citizen's answer, received ``after`` the moment given."""
    event = RatingReceived(
        answer_id=answer_id,
        survey_id=survey_id,
        score=score,
        via=AnswerVia.SMS_REPLY,
        received_at=now + after,
        confirmed=confirmed,
    )
    return event.model_dump_json().encode()


@dataclass
class Placed:
    """A Rating as published: its key, the partition it landed in, and the Rating."""

    key: bytes | None
    partition: int
    rating: Rating


@dataclass
class Outcome:
    """What the join wrote so far: the Ratings, and its dead letters."""

    ratings: list[Placed] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)

    def revisions(self, survey_id: str) -> dict[int, Rating]:
        """Give a survey's Ratings by revision; a repeat must be the same Rating."""
        found: dict[int, Rating] = {}
        for placed in self.ratings:
            rating = placed.rating
            if rating.rating_id == survey_id:
                assert found.setdefault(rating.revision, rating) == rating
        return found

    def counted(self, survey_id: str) -> Rating | None:
        """Give the Rating the metrics count for a survey: its latest revision."""
        revisions = self.revisions(survey_id)
        return revisions[max(revisions)] if revisions else None


def outcome_of(
    ratings: Sequence[tuple[bytes | None, int, bytes | None]],
    dead: Sequence[Sequence[tuple[str, bytes | None]]],
) -> Outcome:
    """Read the ratings and the join's dead letters into an outcome."""
    letters = [DeadLetter.from_headers(list(headers)) for headers in dead]
    return Outcome(
        [Placed(key, p, Rating.model_validate_json(value or b"")) for key, p, value in ratings],
        [letter for letter in letters if letter.stage == LABEL],
    )


class JoinHarness(Protocol):
    """What a behaviour test of the join needs, whichever runtime is under it."""

    partitions: int

    async def survey_event(self, value: bytes) -> None:
        """Write one record to the surveys topic, keyed by citizen."""

    async def response(self, value: bytes, key: bytes = b"s") -> None:
        """Write one record to the responses topic."""

    async def settle(self, done: Callable[[Outcome], bool]) -> Outcome:
        """Run until ``done`` holds of the outcome (and a little longer, for repeats)."""


class MemoryJoin:
    """The join on the in-memory runtime, fed as the worker's two forwarders feed it."""

    def __init__(self, config: Path) -> None:
        settings = load_settings(config)
        self.partitions = settings.streams.partitions
        self.broker = MemoryBroker(partitions=self.partitions)
        self.runtime = MemoryRuntime(self.broker)
        stage = JoinAnswers(settings, lambda tp: touchpoint_partition(tp, self.partitions))
        self.runtime.add(stage, "by-survey", {RATINGS: "ratings", DEADLETTER: "dlq"})
        # The join's parts of the two shared readers, as the worker runs them.
        for topic, part in (("surveys", ForwardSurveys()), ("responses", ForwardAnswers())):
            reader = FanOut(f"{topic}-reader")
            reader.add(part, {BY_SURVEY: "by-survey", DEADLETTER: "dlq"})
            self.runtime.add(reader, topic, reader.topics)

    async def survey_event(self, value: bytes) -> None:
        """Write one record to the surveys topic, keyed by citizen."""
        self.broker.send("surveys", CITIZEN.encode(), value)

    async def response(self, value: bytes, key: bytes = b"s") -> None:
        """Write one record to the responses topic."""
        self.broker.send("responses", key, value)

    async def settle(self, done: Callable[[Outcome], bool]) -> Outcome:
        """Run the join dry; the outcome must then be done."""
        await self.runtime.run_until_idle()
        outcome = outcome_of(
            [(r.key, r.partition, r.value) for r in self.broker.records("ratings")],
            [r.headers for r in self.broker.records("dlq")],
        )
        assert done(outcome), outcome
        return outcome


class KafkaJoin:
    """``palaute worker`` on the session's broker, fed and read with aiokafka."""

    def __init__(
        self,
        bootstrap: str,
        suffix: str,
        worker: Worker,
        readers: tuple[Reader, Reader],
        partitions: int,
    ) -> None:
        self.bootstrap = bootstrap
        self.names = TopicNames.with_suffix(suffix)
        self.worker = worker
        self.ratings, self.dead = readers
        self.partitions = partitions

    async def _send(self, topic: str, key: bytes, value: bytes) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, enable_idempotence=True)
        await producer.start()
        try:
            await producer.send_and_wait(topic, key=key, value=value)
        finally:
            await producer.stop()

    async def survey_event(self, value: bytes) -> None:
        """Produce to the run's surveys topic and wait for the acknowledgement."""
        await self._send(self.names.surveys, CITIZEN.encode(), value)

    async def response(self, value: bytes, key: bytes = b"s") -> None:
        """Produce to the run's responses topic and wait for the acknowledgement."""
        await self._send(self.names.responses, key, value)

    def _outcome(self) -> Outcome:
        return outcome_of(
            [(r.key, r.partition, r.value) for r in self.ratings.records],
            [list(r.headers) for r in self.dead.records],
        )

    async def settle(self, done: Callable[[Outcome], bool], seconds: float = 90.0) -> Outcome:
        """Read until ``done`` holds, then two seconds more, so that a repeat would show."""
        deadline = time.monotonic() + seconds
        while not done(self._outcome()):
            assert self.worker.alive(), f"worker died:\n{self.worker.tail()}"
            assert time.monotonic() < deadline, f"timed out:\n{self.worker.tail()}"
            await self.ratings.poll()
            await self.dead.poll()
            await asyncio.sleep(0.05)
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            await self.ratings.poll()
            await self.dead.poll()
        return self._outcome()
