"""The life of one scheduled survey, as a pure state machine.

The scheduler keeps one :class:`SurveyState` per survey id and asks three
functions what to do; each returns a :class:`Step`, the new state and the
commands the shell carries out, in order:

- :func:`on_event` folds in what arrives from Kafka (the survey's
  SurveyScheduled, its contact details from the vault, a SurveySkipped that
  supersedes it);
- :func:`due` acts when the survey's time comes (:func:`due_at` tells when):
  send, give up at expiry, close a sent survey, send the one reminder;
- :func:`on_outcome` folds in what the provider answered.

At most once to citizens: :func:`due` moves a survey to ``DISPATCHING``
(``REMINDING`` for the reminder) and returns the SurveyDispatching event
*before* the :class:`Deliver` command. The shell stores the state and waits
for the event to be acknowledged by Kafka before it calls the provider. The
shell handles one survey at a time and finishes with :func:`on_outcome`, so a
state still ``DISPATCHING`` when :func:`due` sees it was left by a crash: the
provider may or may not have sent the message, and it is never sent again;
the survey fails with the reason ``outcome-unknown`` (a reminder is dropped).

Quiet hours hold at the moment of sending: :func:`due` asks the policy's
:class:`~engine.sendtime.SendingHours` before every :class:`Deliver` (the
first send, a retry after a transient error, the reminder). When the gate is
closed the survey keeps its phase and waits, its ``not_before`` set to the
next allowed moment; a survey that cannot go out before its last call then
expires as usual, and a reminder that cannot go out before expiry is dropped.

Every survey ends in exactly one of four outcomes, each told once on the
surveys topic: sent (SurveySent; the survey closes at expiry with
SurveyExpired ``was_sent=True``), failed (SurveyFailed), skipped (the
intake's SurveySkipped) or expired unsent (SurveyExpired ``was_sent=False``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, TypedDict

from engine.sendtime import NotBefore
from schemas.responses import AnswerVia, OptOut, RatingReceived
from schemas.surveys import (
    ReminderSent,
    SurveyDispatching,
    SurveyExpired,
    SurveyFailed,
    SurveyScheduled,
    SurveySent,
    SurveySkipped,
)
from schemas.vault import ContactDetails

if TYPE_CHECKING:
    from engine.sendtime import SendingHours
    from schemas.base import SurveyChannel
    from schemas.surveys import SurveyEvent

#: SurveyFailed.reason when a crash left a send whose result nobody knows.
OUTCOME_UNKNOWN = "outcome-unknown"
#: SurveyFailed.reason when the citizen unsubscribed at the provider (Twilio 21610).
OPTED_OUT = "opted-out"
#: SurveyFailed.reason (a prefix) when ``max_attempts`` transient failures were reached.
RETRIES_EXHAUSTED = "retries-exhausted"
_STATE_FORMAT = 1
_JITTER_SPACE = 2**64


class Phase(StrEnum):
    """Where a survey is in its life."""

    AWAITING = "awaiting"  # contact details seen, SurveyScheduled not yet
    PENDING = "pending"  # waiting for its send time, or for a retry
    DISPATCHING = "dispatching"  # recorded as being sent; the provider is being called
    SENT = "sent"  # the provider took it; open until expiry
    REMINDING = "reminding"  # the reminder is being sent
    CLOSED = "closed"  # sent, and its expiry passed
    FAILED = "failed"
    EXPIRED = "expired"  # never sent: expiry came first
    SKIPPED = "skipped"  # superseded before its send time

    @property
    def is_final(self) -> bool:
        """Nothing more happens to the survey except being forgotten."""
        return self in _FINAL


_FINAL = frozenset({Phase.CLOSED, Phase.FAILED, Phase.EXPIRED, Phase.SKIPPED})


class Outcome(StrEnum):
    """How a survey ended, for accounting: one per survey."""

    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"
    EXPIRED = "expired"


_OUTCOME_OF = {
    Phase.CLOSED: Outcome.SENT,
    Phase.FAILED: Outcome.FAILED,
    Phase.EXPIRED: Outcome.EXPIRED,
    Phase.SKIPPED: Outcome.SKIPPED,
}


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter for transient provider errors.

    ``max_attempts`` None means: keep trying until the survey expires, so a
    provider outage makes surveys wait instead of vanishing. ``forget_after``
    is how long a finished survey's small record stays, so that a replayed
    SurveyScheduled cannot start it again. ``outcome_grace`` is how long a send
    left in flight by a crash waits for its outcome event to be read back from
    the surveys topic before it is declared unknown. Nothing is sent within
    ``last_call`` of expiry: its links would die as the citizen opens them.
    ``hours`` are the quiet hours and excluded days checked before every send;
    None means none (only for tests of other rules: the dispatcher always
    passes the policy's).
    """

    base: timedelta = timedelta(seconds=5)
    cap: timedelta = timedelta(minutes=15)
    max_attempts: int | None = None
    forget_after: timedelta = timedelta(days=1)
    outcome_grace: timedelta = timedelta(seconds=30)
    last_call: timedelta = timedelta(minutes=1)
    orphan_details_after: timedelta = timedelta(days=1)
    hours: SendingHours | None = None

    def backoff(self, survey_id: str, attempt: int) -> timedelta:
        """Wait after the ``attempt``-th failed try: doubling, capped, jittered in [1/2, 1].

        The jitter comes from the survey id and attempt, not from a random
        source, so that a replay computes the same time and surveys failing
        together spread out instead of retrying in lockstep.
        """
        exponent = min(max(attempt - 1, 0), 32)
        ceiling = min(self.cap, self.base * (2**exponent))
        digest = hashlib.sha256(f"palaute-retry\x00{survey_id}\x00{attempt}".encode()).digest()
        fraction = int.from_bytes(digest[:8], "big") / _JITTER_SPACE
        jittered: timedelta = ceiling * (0.5 + fraction / 2)
        return jittered


@dataclass(frozen=True, slots=True)
class SurveyState:
    """What the scheduler remembers of one survey.

    ``details`` (the phone number or address) is dropped as soon as nothing
    more will be sent; ``reminded`` says the one reminder was tried.
    ``not_before`` is set when quiet hours held back a send or the reminder
    that was due: nothing goes out before it.
    """

    survey_id: str
    phase: Phase
    scheduled: SurveyScheduled | None = None
    details: ContactDetails | None = None
    attempts: int = 0
    retry_at: datetime | None = None
    attempt_at: datetime | None = None
    reminded: bool = False
    finished_at: datetime | None = None
    not_before: datetime | None = None

    @property
    def outcome(self) -> Outcome | None:
        """How the survey ended, once it has."""
        return _OUTCOME_OF.get(self.phase)

    def to_json(self) -> str:
        """Serialise for a changelog-backed table; :meth:`from_json` reads it back exactly."""
        return json.dumps(
            {
                "v": _STATE_FORMAT,
                "survey_id": self.survey_id,
                "phase": self.phase.value,
                "scheduled": None
                if self.scheduled is None
                else json.loads(self.scheduled.model_dump_json()),
                "details": None
                if self.details is None
                else json.loads(self.details.model_dump_json()),
                "attempts": self.attempts,
                "retry_at": None if self.retry_at is None else self.retry_at.isoformat(),
                "attempt_at": None if self.attempt_at is None else self.attempt_at.isoformat(),
                "reminded": self.reminded,
                "finished_at": None if self.finished_at is None else self.finished_at.isoformat(),
                "not_before": None if self.not_before is None else self.not_before.isoformat(),
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> SurveyState:
        """Read what :meth:`to_json` wrote; an unknown format version is a ValueError."""
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("v") != _STATE_FORMAT:
            raise ValueError("not a survey state of a known format")
        return cls(
            survey_id=data["survey_id"],
            phase=Phase(data["phase"]),
            scheduled=None
            if data["scheduled"] is None
            else SurveyScheduled.model_validate(data["scheduled"]),
            details=None
            if data["details"] is None
            else ContactDetails.model_validate(data["details"]),
            attempts=int(data["attempts"]),
            retry_at=stored_instant(data["retry_at"]),
            attempt_at=stored_instant(data.get("attempt_at")),
            reminded=bool(data["reminded"]),
            finished_at=stored_instant(data["finished_at"]),
            not_before=stored_instant(data.get("not_before")),
        )


def stored_instant(value: str | None) -> datetime | None:
    """Read back a time a state's JSON kept as ISO 8601 text, or None."""
    return None if value is None else datetime.fromisoformat(value)


@dataclass(frozen=True, slots=True)
class Publish:
    """Write this event to the surveys topic (keyed by its citizen key)."""

    event: SurveyEvent


@dataclass(frozen=True, slots=True)
class RecordOptOut:
    """Write this OptOut to the responses topic: the intake then never asks the citizen again."""

    opt_out: OptOut


@dataclass(frozen=True, slots=True)
class Deliver:
    """Call the provider now: the survey message, or its reminder."""

    channel: SurveyChannel
    reminder: bool = False


@dataclass(frozen=True, slots=True)
class ForgetDetails:
    """Tombstone the survey's contact details in the vault: nothing more will be sent."""

    survey_id: str


@dataclass(frozen=True, slots=True)
class Drop:
    """Delete the survey's record from the scheduler's table."""

    survey_id: str


Command = Publish | RecordOptOut | Deliver | ForgetDetails | Drop


@dataclass(frozen=True, slots=True)
class Step:
    """The new state (None: forget the survey) and the commands to carry out, in order."""

    state: SurveyState | None
    commands: tuple[Command, ...] = ()


@dataclass(frozen=True, slots=True)
class Accepted:
    """The provider took the message."""

    provider_message_id: str | None = None
    segments: int | None = None


@dataclass(frozen=True, slots=True)
class Transient:
    """Nothing was sent and trying later may work (429, 503, relay down, 4xx reply)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Refused:
    """The message will never be accepted for this citizen; ``opted_out`` for Twilio 21610."""

    reason: str
    code: str | None = None
    opted_out: bool = False


@dataclass(frozen=True, slots=True)
class Unknown:
    """The provider may or may not have sent it (a timeout after the request went out)."""

    reason: str


ProviderOutcome = Accepted | Transient | Refused | Unknown

LifecycleInput = SurveyScheduled | SurveySkipped | ContactDetails


def on_event(state: SurveyState | None, event: object, now: datetime) -> Step:  # noqa: PLR0911 - one return per event kind reads best
    """Fold in an event from the surveys or vault topic; anything else changes nothing.

    Replays are harmless: a SurveyScheduled for a survey already known leaves
    it as it is. The scheduler's own events, read back, only ever move a
    survey forward (towards sending less): after a crash the table may be
    behind what the topic already says, and the topic wins.
    """
    if isinstance(event, ContactDetails):
        return _on_details(state, event)
    if isinstance(event, SurveyScheduled):
        if state is None:
            return Step(SurveyState(event.survey_id, Phase.PENDING, scheduled=event))
        if state.phase is Phase.AWAITING:
            return Step(replace(state, phase=Phase.PENDING, scheduled=event))
        return Step(state)
    if state is None or state.phase.is_final:
        return Step(state)  # a skip of an unscheduled contact, or news of a finished survey
    if isinstance(event, RatingReceived | OptOut):
        return _on_answer(state, event)
    if isinstance(event, SurveySkipped):
        if state.phase in {Phase.AWAITING, Phase.PENDING}:
            # Superseded in time: the skip on the topic is this survey's outcome.
            return Step(
                replace(state, phase=Phase.SKIPPED, details=None, retry_at=None, finished_at=now),
                (ForgetDetails(state.survey_id),),
            )
        return Step(state)  # too late to call off: the send has begun or is done
    return _on_echo(state, event, now)


def _on_echo(state: SurveyState, event: object, now: datetime) -> Step:  # noqa: PLR0911 - one return per event kind reads best
    """Adopt what the topic says this scheduler did, when the table lost it in a crash."""
    if isinstance(event, SurveyDispatching):
        if state.phase is Phase.PENDING and event.attempt > state.attempts:
            return Step(
                replace(
                    state,
                    phase=Phase.DISPATCHING,
                    attempts=event.attempt,
                    retry_at=None,
                    attempt_at=event.occurred_at,
                    not_before=None,
                )
            )
        return Step(state)
    if isinstance(event, SurveySent):
        if state.phase in {Phase.PENDING, Phase.DISPATCHING}:
            return Step(replace(state, phase=Phase.SENT, retry_at=None, not_before=None))
        return Step(state)
    if isinstance(event, ReminderSent):
        return Step(replace(state, phase=Phase.SENT, reminded=True))
    if isinstance(event, SurveyFailed | SurveyExpired):
        phase = Phase.FAILED
        if isinstance(event, SurveyExpired):
            phase = Phase.CLOSED if event.was_sent else Phase.EXPIRED
        return Step(
            replace(state, phase=phase, details=None, retry_at=None, finished_at=now),
            (ForgetDetails(state.survey_id),),
        )
    return Step(state)


def _on_answer(state: SurveyState, answer: RatingReceived | OptOut) -> Step:
    """Call off the reminder of an answered survey, or of a citizen who opted out.

    An unconfirmed rating may be a mail scanner following every link, so it
    does not count as an answer here.
    """
    if state.reminded or (isinstance(answer, RatingReceived) and not answer.confirmed):
        return Step(state)
    answered = replace(state, reminded=True)
    if state.phase is Phase.SENT and state.details is not None:
        return Step(replace(answered, details=None), (ForgetDetails(state.survey_id),))
    return Step(answered)


def _on_details(state: SurveyState | None, details: ContactDetails) -> Step:
    if state is None:
        return Step(SurveyState(details.survey_id, Phase.AWAITING, details=details))
    if not _may_send_more(state):
        # Nothing more will be sent: a late (or replayed) record is deleted again.
        return Step(state, (ForgetDetails(state.survey_id),))
    if state.details is None:
        return Step(replace(state, details=details))
    return Step(state)


def _may_send_more(state: SurveyState) -> bool:
    if state.phase.is_final:
        return False
    if state.phase is Phase.SENT and state.scheduled is not None:
        return not state.reminded and state.scheduled.reminder_at is not None
    return True


def due_at(state: SurveyState, policy: RetryPolicy) -> datetime | None:  # noqa: PLR0911 - one return per phase reads best
    """When :func:`due` next has something to do; None: only an event can change things."""
    scheduled = state.scheduled
    if state.phase.is_final:
        return None if state.finished_at is None else state.finished_at + policy.forget_after
    if state.phase is Phase.AWAITING:
        if state.details is None:
            return None
        return state.details.stored_at + policy.orphan_details_after
    if scheduled is None:
        return None
    if state.phase in {Phase.DISPATCHING, Phase.REMINDING}:
        # Found by due() only after a crash: wait for the outcome to be read back.
        return (state.attempt_at or scheduled.send_at) + policy.outcome_grace
    if state.phase is Phase.PENDING:
        last_chance = scheduled.expires_at - policy.last_call
        if state.details is None:
            return last_chance
        start = max(
            scheduled.send_at,
            state.retry_at or scheduled.send_at,
            state.not_before or scheduled.send_at,
        )
        return min(start, last_chance)
    # SENT
    if not state.reminded and scheduled.reminder_at is not None:
        reminder_at = max(scheduled.reminder_at, state.not_before or scheduled.reminder_at)
        return min(reminder_at, scheduled.expires_at)
    return scheduled.expires_at


def due(state: SurveyState, now: datetime, policy: RetryPolicy) -> Step:  # noqa: PLR0911 - one return per phase reads best
    """Act on a survey whose time may have come; nothing happens before :func:`due_at`."""
    scheduled = state.scheduled
    if state.phase.is_final:
        forget_at = (state.finished_at or now) + policy.forget_after
        return Step(None, (Drop(state.survey_id),)) if now >= forget_at else Step(state)
    if state.phase is Phase.AWAITING:
        if state.details is not None and now >= state.details.stored_at + (
            policy.orphan_details_after
        ):
            # Details whose survey was never scheduled: nothing will ever use them.
            return Step(None, (ForgetDetails(state.survey_id), Drop(state.survey_id)))
        return Step(state)
    if scheduled is None:
        return Step(state)
    if state.phase in {Phase.DISPATCHING, Phase.REMINDING} and now < (
        (state.attempt_at or scheduled.send_at) + policy.outcome_grace
    ):
        return Step(state)
    if state.phase is Phase.DISPATCHING:
        return _finish(
            state,
            now,
            _failed(scheduled, now, OUTCOME_UNKNOWN, None, state.attempts),
            Phase.FAILED,
        )
    if state.phase is Phase.REMINDING:
        # The reminder may or may not have gone out; it is not tried again.
        return Step(replace(state, phase=Phase.SENT, reminded=True))
    if state.phase is Phase.PENDING:
        return _due_pending(state, scheduled, now, policy)
    return _due_sent(state, scheduled, now, policy)


def held_until(now: datetime, policy: RetryPolicy) -> datetime | None:
    """Tell until when quiet hours or an excluded day hold a send due at ``now``; None: go."""
    if policy.hours is None:
        return None
    gate = policy.hours.gate(now)
    return gate.at if isinstance(gate, NotBefore) else None


def _due_pending(
    state: SurveyState, scheduled: SurveyScheduled, now: datetime, policy: RetryPolicy
) -> Step:
    if now >= scheduled.expires_at - policy.last_call:
        expired = SurveyExpired(**_common(scheduled, now), was_sent=False)
        return _finish(state, now, expired, Phase.EXPIRED)
    if now < scheduled.send_at or (state.retry_at is not None and now < state.retry_at):
        return Step(state)
    if state.not_before is not None and now < state.not_before:
        return Step(state)
    if state.details is None:
        return Step(state)  # the vault record is late; wait for it until expiry
    held = held_until(now, policy)
    if held is not None:
        # Whatever made it late (a retry, an outage, a late tick), it waits for
        # the next allowed moment; due_at() makes it expire if that is too late.
        return Step(replace(state, not_before=held))
    attempt = state.attempts + 1
    dispatching = SurveyDispatching(
        **_common(scheduled, now), channel=scheduled.channel, attempt=attempt
    )
    return Step(
        replace(
            state,
            phase=Phase.DISPATCHING,
            attempts=attempt,
            retry_at=None,
            attempt_at=now,
            not_before=None,
        ),
        (Publish(dispatching), Deliver(scheduled.channel)),
    )


def _due_sent(
    state: SurveyState, scheduled: SurveyScheduled, now: datetime, policy: RetryPolicy
) -> Step:
    if now >= scheduled.expires_at:
        closed = SurveyExpired(**_common(scheduled, now), was_sent=True)
        return _finish(state, now, closed, Phase.CLOSED)
    reminder_at = scheduled.reminder_at
    if state.reminded or reminder_at is None or now < reminder_at:
        return Step(state)
    if state.not_before is not None and now < state.not_before:
        return Step(state)
    if state.details is None:
        return Step(replace(state, reminded=True))
    return _remind(state, scheduled, now, policy)


def _remind(
    state: SurveyState, scheduled: SurveyScheduled, now: datetime, policy: RetryPolicy
) -> Step:
    """Send the due reminder, unless quiet hours hold it (until expiry: then it is dropped)."""
    held = held_until(now, policy)
    if held is not None and held >= scheduled.expires_at:
        # A reminder for a closed survey is noise: it is dropped, and the details go.
        return Step(
            replace(state, reminded=True, details=None, not_before=None),
            (ForgetDetails(state.survey_id),),
        )
    if held is not None:
        return Step(replace(state, not_before=held))
    return Step(
        replace(state, phase=Phase.REMINDING, attempt_at=now, not_before=None),
        (Deliver(scheduled.channel, reminder=True),),
    )


def on_outcome(
    state: SurveyState, outcome: ProviderOutcome, now: datetime, policy: RetryPolicy
) -> Step:
    """Fold in the provider's answer to the :class:`Deliver` that :func:`due` returned."""
    scheduled = state.scheduled
    if scheduled is None or state.phase not in {Phase.DISPATCHING, Phase.REMINDING}:
        return Step(state)  # no send in flight: nothing to fold in
    if state.phase is Phase.REMINDING:
        return _reminder_outcome(state, scheduled, outcome, now)
    if isinstance(outcome, Accepted):
        sent = SurveySent(
            **_common(scheduled, now),
            channel=scheduled.channel,
            provider_message_id=outcome.provider_message_id,
            segments=outcome.segments,
        )
        keeps_details = scheduled.reminder_at is not None
        return Step(
            replace(state, phase=Phase.SENT, details=state.details if keeps_details else None),
            (Publish(sent),) if keeps_details else (Publish(sent), ForgetDetails(state.survey_id)),
        )
    if isinstance(outcome, Refused):
        return _refused(state, scheduled, outcome, now)
    if isinstance(outcome, Unknown):
        failed = _failed(scheduled, now, OUTCOME_UNKNOWN, None, state.attempts)
        return _finish(state, now, failed, Phase.FAILED)
    return _retry(state, scheduled, outcome, now, policy)


def _refused(
    state: SurveyState, scheduled: SurveyScheduled, outcome: Refused, now: datetime
) -> Step:
    reason = OPTED_OUT if outcome.opted_out else outcome.reason
    failed = _failed(scheduled, now, reason, outcome.code, state.attempts)
    finished = _finish(state, now, failed, Phase.FAILED)
    if not outcome.opted_out:
        return finished
    # The citizen replied STOP to an earlier text: the history must know.
    opt_out = OptOut(
        answer_id=f"provider-opt-out-{scheduled.survey_id}"[:128],
        survey_id=scheduled.survey_id,
        citizen_key=scheduled.citizen_key,
        via=AnswerVia.SMS_REPLY,
        received_at=now,
    )
    return Step(finished.state, (*finished.commands, RecordOptOut(opt_out)))


def _retry(
    state: SurveyState,
    scheduled: SurveyScheduled,
    outcome: Transient,
    now: datetime,
    policy: RetryPolicy,
) -> Step:
    if policy.max_attempts is not None and state.attempts >= policy.max_attempts:
        reason = f"{RETRIES_EXHAUSTED}: {outcome.reason}"
        failed = _failed(scheduled, now, reason, None, state.attempts)
        return _finish(state, now, failed, Phase.FAILED)
    retry_at = now + policy.backoff(state.survey_id, state.attempts)
    if retry_at >= scheduled.expires_at - policy.last_call:
        expired = SurveyExpired(**_common(scheduled, now), was_sent=False)
        return _finish(state, now, expired, Phase.EXPIRED)
    return Step(replace(state, phase=Phase.PENDING, retry_at=retry_at))


def _reminder_outcome(
    state: SurveyState, scheduled: SurveyScheduled, outcome: ProviderOutcome, now: datetime
) -> Step:
    # One try only: a reminder is a courtesy, and a retried one risks a double.
    after = replace(state, phase=Phase.SENT, reminded=True, details=None)
    if isinstance(outcome, Accepted):
        reminder = ReminderSent(**_common(scheduled, now), channel=scheduled.channel)
        return Step(after, (Publish(reminder), ForgetDetails(state.survey_id)))
    return Step(after, (ForgetDetails(state.survey_id),))


def _finish(state: SurveyState, now: datetime, event: SurveyEvent, phase: Phase) -> Step:
    return Step(
        replace(state, phase=phase, details=None, retry_at=None, finished_at=now, not_before=None),
        (Publish(event), ForgetDetails(state.survey_id)),
    )


def _failed(
    scheduled: SurveyScheduled, now: datetime, reason: str, code: str | None, attempts: int
) -> SurveyFailed:
    return SurveyFailed(
        **_common(scheduled, now),
        channel=scheduled.channel,
        reason=reason[:200],
        provider_error_code=code,
        attempts=attempts,
    )


class _Common(TypedDict):
    survey_id: str
    citizen_key: str
    contact_id: str
    contact_source: str | None
    touchpoint_id: str
    occurred_at: datetime


def _common(scheduled: SurveyScheduled, now: datetime) -> _Common:
    return {
        "survey_id": scheduled.survey_id,
        "citizen_key": scheduled.citizen_key,
        "contact_id": scheduled.contact_id,
        "contact_source": scheduled.contact_source,
        "touchpoint_id": scheduled.touchpoint_id,
        "occurred_at": now,
    }


@dataclass(frozen=True, slots=True)
class TokenBucket:
    """A rate limit as a value: ``rate`` sends per second, up to ``burst`` at once.

    :meth:`take` returns the bucket after the send, or None when the send has
    to wait; :meth:`wait` tells how long. Time is passed in.
    """

    rate: float
    burst: float
    tokens: float = field(default=-1.0)
    stamp: datetime | None = None

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError("a rate must be positive and a burst at least 1")
        if self.tokens < 0:
            object.__setattr__(self, "tokens", float(self.burst))

    def _refilled(self, now: datetime) -> float:
        if self.stamp is None:
            return self.tokens
        elapsed = max((now - self.stamp).total_seconds(), 0.0)
        return min(self.burst, self.tokens + elapsed * self.rate)

    def take(self, now: datetime) -> TokenBucket | None:
        """Spend one token, or None when there is none yet."""
        tokens = self._refilled(now)
        if tokens < 1:
            return None
        return replace(self, tokens=tokens - 1, stamp=now)

    def wait(self, now: datetime) -> timedelta:
        """How long until a token is free (zero when one is)."""
        missing = 1 - self._refilled(now)
        return timedelta(seconds=max(missing, 0.0) / self.rate)
