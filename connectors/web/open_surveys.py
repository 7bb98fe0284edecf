"""The web service's view of open surveys, rebuilt from Kafka at start-up.

The pages need a survey's language, scale, expiry and current answer (from
the responses topic, however it was given: by SMS reply or on a page); SMS
replies need the
open survey of a phone number; Twilio's status callbacks name a message, not
a survey. The web process therefore reads the surveys topic and the vault
topic from the beginning into memory and keeps following them, so it can be
restarted from Kafka alone.

SMS links carry a survey code (:meth:`engine.tokens.TokenSigner.survey_code`)
instead of a signed token; the index computes each scheduled survey's codes
(``codes``, one per link key) and finds a survey by its code.

Phone numbers are not kept: each is reduced to a keyed hash (HMAC-SHA256 with
the pseudonymisation key and its own label, so it never equals a citizen key).

Memory bound: one :class:`OpenSurvey` (about 1 KiB with its dict entries) per
survey that is scheduled and not yet closed, plus one hash per SMS number.
Closed surveys (failed, skipped, expired, or past ``expires_at`` plus
``grace``) are dropped by :meth:`SurveyIndex.prune`. A million open surveys
cost about 1 GiB; the surveys topic's retention (35 days) bounds the replay.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from pydantic import TypeAdapter, ValidationError

from schemas.responses import RatingReceived
from schemas.surveys import (
    DeliveryReported,
    ReminderSent,
    SurveyDispatching,
    SurveyExpired,
    SurveyFailed,
    SurveyLifecycleEvent,
    SurveyScheduled,
    SurveySent,
    SurveySkipped,
)
from schemas.vault import ContactDetails

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Mapping

    from aiokafka import AIOKafkaConsumer, TopicPartition

    from schemas.base import Language, Scale, SurveyChannel

log = logging.getLogger(__name__)

_LIFECYCLE: TypeAdapter[SurveyLifecycleEvent] = TypeAdapter(SurveyLifecycleEvent)
_PHONE_LABEL = b"palaute-sms-reply\x00"
PRUNE_EVERY = timedelta(minutes=5)


def phone_hash(secret: bytes, e164: str) -> str:
    """Hash an E.164 number, keyed: how the index finds a number's survey."""
    return hmac.new(secret, _PHONE_LABEL + e164.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class OpenSurvey:
    """What the web service knows of one scheduled survey."""

    survey_id: str
    citizen_key: str
    contact_id: str
    touchpoint_id: str
    channel: SurveyChannel
    language: Language
    scale: Scale
    expires_at: datetime
    sent_at: datetime | None = None
    provider_message_id: str | None = None
    service: str | None = None
    #: The last score written for the survey (by SMS or on a page), to show it again.
    answered: int | None = None

    def is_open(self, now: datetime) -> bool:
        """Answers are taken from sending until expiry."""
        return now < self.expires_at


@dataclass
class SurveyIndex:
    """Open surveys by id, by provider message id and by phone hash."""

    secret: bytes
    grace: timedelta = timedelta(days=1)
    #: A survey's SMS link codes, each with the id of the key that made it.
    codes: Callable[[str], Mapping[str, str]] | None = None
    surveys: dict[str, OpenSurvey] = field(default_factory=dict)
    _by_code: dict[str, tuple[str, str]] = field(default_factory=dict)
    _by_message: dict[str, str] = field(default_factory=dict)
    _by_phone: dict[str, list[str]] = field(default_factory=dict)
    _phone_of: dict[str, str] = field(default_factory=dict)
    _citizen_of_phone: dict[str, str] = field(default_factory=dict)
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    def get(self, survey_id: str) -> OpenSurvey | None:
        """Return the survey, while the index holds it."""
        return self.surveys.get(survey_id)

    def use_codes(self, codes: Callable[[str], Mapping[str, str]]) -> None:
        """Find surveys by SMS link code from now on, the ones already held as well."""
        self.codes = codes
        for survey_id in self.surveys:
            for code, key_id in codes(survey_id).items():
                self._by_code[code] = (survey_id, key_id)

    def by_code(self, code: str) -> tuple[OpenSurvey, str] | None:
        """Return the survey an SMS link's code names, with the id of the key that made it."""
        found = self._by_code.get(code)
        if found is None:
            return None
        survey = self.surveys.get(found[0])
        return None if survey is None else (survey, found[1])

    def by_message(self, provider_message_id: str) -> OpenSurvey | None:
        """Return the survey a provider's message id was sent for."""
        survey_id = self._by_message.get(provider_message_id)
        return None if survey_id is None else self.surveys.get(survey_id)

    def open_for_phone(self, e164: str, now: datetime) -> OpenSurvey | None:
        """Return the most recently sent survey of a number that still takes answers."""
        candidates = [
            survey
            for survey_id in self._by_phone.get(phone_hash(self.secret, e164), [])
            if (survey := self.surveys.get(survey_id)) is not None
            and survey.sent_at is not None
            and survey.is_open(now)
        ]
        return max(candidates, key=lambda s: s.sent_at or now, default=None)

    def citizen_of_phone(self, e164: str) -> tuple[str, str] | None:
        """Return (citizen key, latest survey id) of a number, open or not, for opt-outs."""
        digest = phone_hash(self.secret, e164)
        survey_ids = self._by_phone.get(digest)
        citizen = self._citizen_of_phone.get(digest)
        if not survey_ids or citizen is None:
            return None
        return citizen, survey_ids[-1]

    def apply(self, event: object) -> None:
        """Fold one surveys-, vault- or responses-topic event into the index."""
        if isinstance(event, SurveyScheduled):
            self._scheduled(event)
        elif isinstance(event, SurveySent):
            survey = self.surveys.get(event.survey_id)
            if survey is not None:
                self.surveys[event.survey_id] = replace(
                    survey, sent_at=event.occurred_at, provider_message_id=event.provider_message_id
                )
                if event.provider_message_id:
                    self._by_message[event.provider_message_id] = event.survey_id
        elif isinstance(event, RatingReceived):
            survey = self.surveys.get(event.survey_id)
            if survey is not None:
                self.surveys[event.survey_id] = replace(survey, answered=event.score)
        elif isinstance(event, SurveyFailed | SurveySkipped | SurveyExpired):
            self._forget(event.survey_id)
        elif isinstance(event, ContactDetails) and event.phone is not None:
            digest = phone_hash(self.secret, event.phone)
            known = self._by_phone.setdefault(digest, [])
            if event.survey_id not in known:
                known.append(event.survey_id)
            self._phone_of[event.survey_id] = digest
            self._citizen_of_phone[digest] = event.citizen_key

    def _scheduled(self, event: SurveyScheduled) -> None:
        old = self.surveys.get(event.survey_id)
        self.surveys[event.survey_id] = OpenSurvey(
            survey_id=event.survey_id,
            citizen_key=event.citizen_key,
            contact_id=event.contact_id,
            touchpoint_id=event.touchpoint_id,
            channel=event.channel,
            language=event.language,
            scale=event.scale,
            expires_at=event.expires_at,
            sent_at=None if old is None else old.sent_at,
            provider_message_id=None if old is None else old.provider_message_id,
            service=event.service,
            answered=None if old is None else old.answered,
        )
        if self.codes is not None and old is None:
            for code, key_id in self.codes(event.survey_id).items():
                self._by_code[code] = (event.survey_id, key_id)

    def _forget(self, survey_id: str) -> None:
        survey = self.surveys.pop(survey_id, None)
        if survey is not None and self.codes is not None:
            for code in self.codes(survey_id):
                self._by_code.pop(code, None)
        if survey is not None and survey.provider_message_id:
            self._by_message.pop(survey.provider_message_id, None)
        digest = self._phone_of.pop(survey_id, None)
        if digest is not None:
            remaining = [other for other in self._by_phone.get(digest, []) if other != survey_id]
            if remaining:
                self._by_phone[digest] = remaining
            else:
                self._by_phone.pop(digest, None)
                self._citizen_of_phone.pop(digest, None)

    def prune(self, now: datetime) -> int:
        """Drop surveys closed for longer than ``grace``; return how many."""
        gone = [sid for sid, s in self.surveys.items() if now >= s.expires_at + self.grace]
        for survey_id in gone:
            self._forget(survey_id)
        return len(gone)


def decode_record(value: bytes | None) -> object | None:
    """Decode a surveys-, vault- or responses-topic record; None for tombstones and junk.

    Of the responses topic only ratings matter here (the page shows a survey's
    current answer); other answers are None.
    """
    if not value:
        return None
    try:
        if b'"ContactDetails"' in value:
            return ContactDetails.model_validate_json(value)
        if b'"RatingReceived"' in value:
            return RatingReceived.model_validate_json(value)
        if b'"OptOut"' in value or b'"StatementAnswered"' in value:
            return None
        return _LIFECYCLE.validate_json(value)
    except ValidationError:
        return None


_IGNORED = (SurveyDispatching, ReminderSent, DeliveryReported)


def _apply_all(index: SurveyIndex, values: list[bytes | None]) -> None:
    for value in values:
        event = decode_record(value)
        if event is not None and not isinstance(event, _IGNORED):
            index.apply(event)


async def follow(
    consumer: AIOKafkaConsumer,
    index: SurveyIndex,
    *,
    topics: Collection[str],
    caught_up: asyncio.Event,
    clock: Callable[[], datetime],
    stop: asyncio.Event,
) -> None:
    """Read ``topics`` from the beginning into ``index`` until ``stop``.

    The consumer is subscribed without a group and reads from the earliest
    offset. ``caught_up`` is set once the end offsets seen at the first
    assignment have been read, so the pages can tell "not known yet" from
    "unknown".
    """
    pending: dict[TopicPartition, int] | None = None
    last_prune = clock()
    while not stop.is_set():
        batches = await consumer.getmany(timeout_ms=500, max_records=1000)
        _apply_all(index, [record.value for records in batches.values() for record in records])
        if pending is None:
            assigned = consumer.assignment()
            if not {tp.topic for tp in assigned} >= set(topics):
                continue
            ends = await consumer.end_offsets(list(assigned))
            pending = {tp: end for tp, end in ends.items() if end > 0}
        for tp, end in list(pending.items()):
            if await consumer.position(tp) >= end:
                del pending[tp]
        if not pending and not caught_up.is_set():
            caught_up.set()
            log.info("survey index caught up: %d open surveys", len(index.surveys))
        now = clock()
        if now - last_prune > PRUNE_EVERY:
            index.prune(now)
            last_prune = now
