"""Scheduler and dispatcher: keep every scheduled survey durably, send it when due, once.

Wiring (the rules are in :mod:`engine.lifecycle`):

1. Two forwarders re-key what the scheduler needs by survey id onto one
   internal topic, ``<app id>-surveys-by-id``: every event of the surveys
   topic (keyed by citizen key) and every contact-details record of the vault
   (already keyed by survey id, but with its own partition count). All of a
   survey's records then meet in one partition, in their original order per
   source topic. This repartition is the co-partitioning choice: the vault
   and the surveys topic cannot be joined directly, and keying the table by
   survey id spreads a heavy citizen's surveys over the cluster. The vault's
   is an agent; the surveys topic's is a handler on the topic's one reader,
   shared with the answers join and the metrics (:mod:`streams.shared`).
2. ``dispatch-scheduler`` reads that topic and keeps the ``survey-lifecycle``
   table (RocksDB via rocksdict, backed by a compacted changelog), one
   :class:`~engine.lifecycle.SurveyState` per survey id, so a million pending
   surveys live on disk, not in RAM, and survive restarts and rebalances.
3. Timing: a timer on every worker writes a *tick* record to each partition
   of the internal topic that this worker actively owns (never standbys). The
   scheduler agent handles a tick in the partition's own stream, so every
   table write happens in the right partition, and a tick that lands on
   another worker after a rebalance is handled by the partition's new owner.
   Each tick acts on everything overdue, so missed ticks and restarts catch
   up by themselves.
4. The due-index is in memory: per partition a heap of (due time, survey id),
   rebuilt with one scan of the actively owned part of the table after every
   rebalance and kept up to date on every write. A full scan per tick would
   not keep up with a million entries; a second table keyed by time bucket
   would double the changelog traffic for no gain, since the table is the
   truth and the heap is only a hint (entries are re-checked when popped).

Rate limit: a survey is sent only when the channel's token bucket has a token
(``[dispatch] burst``) and its :class:`SendWindow` has room, so that no
one-second window at the provider holds more than ``sms_per_second`` (or
``email_per_second``) requests (``palaute bench dispatch`` checks this).

At most once (docs/guarantees-dispatch.md): before calling Twilio or the SMTP
relay the scheduler stores the survey as DISPATCHING in the table and writes
SurveyDispatching to the surveys topic, then flushes the producer so both are
acknowledged by Kafka; only then does it call the provider.
"""

from __future__ import annotations

import heapq
import json
import logging
import math
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import faust
from pydantic import TypeAdapter, ValidationError

from connectors import telemetry
from connectors.email import MailConfigurationError, MailError, OutgoingEmail, SmtpMailer
from connectors.sms import SmsConfigurationError, SmsError, TwilioSmsGateway
from engine.ids import letters
from engine.lifecycle import (
    Accepted,
    Deliver,
    Drop,
    ForgetDetails,
    Phase,
    ProviderOutcome,
    Publish,
    RecordOptOut,
    Refused,
    RetryPolicy,
    Step,
    SurveyState,
    TokenBucket,
    Transient,
    Unknown,
    due,
    due_at,
    on_event,
    on_outcome,
)
from engine.outbound import SmsText, status_callback_url, survey_email, survey_sms
from engine.sendtime import SendingHours
from engine.tokens import SigningKey, TokenSigner
from schemas.base import SurveyChannel
from schemas.responses import OptOut, RatingReceived
from schemas.surveys import SurveyLifecycleEvent
from schemas.vault import ContactDetails
from streams import shared
from streams.containment import Containment
from streams.producer import DirectProducer
from streams.stores import table_store_options

if TYPE_CHECKING:
    from faust.types import EventT

    from schemas.config import Settings
    from schemas.surveys import SurveyEvent
    from schemas.topics import TopicNames

log = logging.getLogger(__name__)

FORWARD_VAULT_AGENT = "dispatch-vault-by-id"
SCHEDULER_AGENT = "dispatch-scheduler"
LIFECYCLE_TABLE = "survey-lifecycle"
#: A tick's value starts with this; the rest names the run that wrote it (:func:`tick_value`).
TICK_PREFIX = b'{"type":"SchedulerTick"'
#: Header on the scheduler's own events written straight back to its partition.
ECHO_HEADER = "palaute-echo"
#: What the scheduler reads from the responses topic: an answered survey gets no reminder.
ANSWERS: dict[str, type[RatingReceived | OptOut]] = {
    "RatingReceived": RatingReceived,
    "OptOut": OptOut,
}
#: How an answer the scheduler reads shows in a record's bytes, tested before decoding.
_ANSWER_MARKERS = tuple(f'"{kind}"'.encode() for kind in ANSWERS)
#: A tick not seen back within this time is sent again (it went to another worker).
_TICK_TIMEOUT = timedelta(seconds=30)
_SURVEY_EVENT: TypeAdapter[Any] = TypeAdapter(SurveyLifecycleEvent)


def decode_record(value: bytes) -> SurveyEvent | ContactDetails | RatingReceived | OptOut | None:
    """Read a record of the internal topic; None for a tick or something unreadable."""
    try:
        kind = json.loads(value).get("type")
        if kind == "ContactDetails":
            return ContactDetails.model_validate_json(value)
        if kind in ANSWERS:
            return ANSWERS[kind].model_validate_json(value)
        event: SurveyEvent = _SURVEY_EVENT.validate_json(value)
    except (ValueError, ValidationError, AttributeError):
        return None
    return event


def tick_value(run: str) -> bytes:
    """Write a tick that names the scheduler run writing it (a token new at every assignment)."""
    return TICK_PREFIX + b',"run":"' + run.encode() + b'"}'


def tick_run(value: bytes | None) -> str | None:
    """Name the run that wrote a tick: "" for a tick of an unknown run, None for no tick."""
    if value is None or not value.startswith(TICK_PREFIX):
        return None
    try:
        run = json.loads(value).get("run")
    except (ValueError, AttributeError):
        return ""
    return run if isinstance(run, str) else ""


def is_echo(headers: Any) -> bool:
    """Tell whether a record is the scheduler's own event, written straight back to it."""
    items = headers.items() if isinstance(headers, dict) else headers or []
    return any(name == ECHO_HEADER for name, _ in items)


def encode_entry(partition: int, state: SurveyState) -> str:
    """Write a table value: the partition it lives in (for rebuilding the index) and the state."""
    return f"{partition}|{state.to_json()}"


def decode_entry(value: str) -> tuple[int, SurveyState]:
    """Read what :func:`encode_entry` wrote."""
    partition, _, state = value.partition("|")
    return int(partition), SurveyState.from_json(state)


@dataclass
class DueIndex:
    """Per partition, a heap of (due time, survey id); a hint, re-checked against the table."""

    heaps: dict[int, list[tuple[datetime, str]]] = field(default_factory=dict)
    fresh: bool = False

    def push(self, partition: int, when: datetime | None, survey_id: str) -> None:
        """Remember that a survey may need attention at ``when``."""
        if when is not None:
            heapq.heappush(self.heaps.setdefault(partition, []), (when, survey_id))

    def pop_due(self, partition: int, now: datetime) -> list[str]:
        """Take every survey id due by ``now`` (each once)."""
        heap = self.heaps.get(partition, [])
        taken: dict[str, None] = {}
        while heap and heap[0][0] <= now:
            taken[heapq.heappop(heap)[1]] = None
        return list(taken)

    def clear(self) -> None:
        """Forget everything; the next tick rebuilds from the table."""
        self.heaps.clear()
        self.fresh = False


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


@dataclass
class Providers:
    """The outside systems, built lazily inside the running loop."""

    settings: Settings
    _sms: TwilioSmsGateway | None = None
    _mail: SmtpMailer | None = None

    def sms(self) -> TwilioSmsGateway | None:
        """Give the Twilio gateway, or None when ``[twilio]`` is not configured."""
        twilio = self.settings.twilio
        if self._sms is None and twilio is not None:
            self._sms = TwilioSmsGateway(
                account_sid=twilio.account_sid,
                auth_token=twilio.auth_token.get_secret_value(),
                from_=twilio.from_number or twilio.sender_id,
                messaging_service_sid=twilio.messaging_service_sid,
                base_url=None if twilio.api_base_url is None else str(twilio.api_base_url),
            )
        return self._sms

    def mail(self) -> SmtpMailer | None:
        """Give the SMTP mailer, or None when ``[smtp]`` is not configured."""
        if self._mail is None and self.settings.smtp is not None:
            self._mail = SmtpMailer(self.settings.smtp)
        return self._mail

    async def aclose(self) -> None:
        """Close the Twilio client's HTTP session (the mailer connects per message)."""
        if self._sms is not None:
            await self._sms.aclose()
            self._sms = None


def outcome_of(error: Exception) -> ProviderOutcome:
    """Map a connector's error onto what the lifecycle needs to know."""
    if isinstance(error, SmsError | MailError):
        if error.outcome_unknown:
            return Unknown(error.reason)
        if error.retriable or isinstance(error, SmsConfigurationError | MailConfigurationError):
            # Configuration errors (credentials, sender) last until an operator
            # fixes them: the surveys wait, as during an outage.
            return Transient(error.reason)
        opted_out = isinstance(error, SmsError) and error.opted_out
        return Refused(error.reason, None if error.code is None else str(error.code), opted_out)
    return Unknown(f"unexpected {type(error).__name__}")


def retry_policy(settings: Settings) -> RetryPolicy:
    """Build the lifecycle's retry policy from ``[dispatch]``, with ``[policy]``'s quiet hours.

    The quiet hours and excluded days are checked again at the moment of
    every send (:func:`engine.lifecycle.due`), not only when the intake plans it.
    """
    dispatch = settings.dispatch
    return RetryPolicy(
        base=dispatch.retry_base,
        cap=dispatch.retry_cap,
        max_attempts=dispatch.max_attempts,
        forget_after=dispatch.finished_retention,
        outcome_grace=dispatch.outcome_grace,
        last_call=dispatch.last_call,
        hours=SendingHours(settings.policy, settings.policy.holiday_calendar()),
    )


def register(app: faust.App, settings: Settings, names: TopicNames) -> None:  # noqa: C901, PLR0915 - the agents share the wiring and read best together
    """Add the forwarding agents, the scheduler agent, its table and its timer to the app."""
    raw: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw"}
    surveys = app.topic(names.surveys, **raw)
    vault = app.topic(names.vault, **raw)
    responses = app.topic(names.responses, **raw)
    by_survey = app.topic(
        f"{app.conf.id}-surveys-by-id",
        internal=True,
        partitions=settings.streams.partitions,
        **raw,
    )
    # The forwarders hand their records straight to the producer (see DirectProducer).
    producer = DirectProducer(app)
    guard = Containment(producer, names.deadletter, telemetry.Stage.SCHEDULER)
    table = app.Table(
        LIFECYCLE_TABLE,
        default=None,
        partitions=settings.streams.partitions,
        schema=faust.Schema(key_type=str, value_type=str),
        options=table_store_options(),
    )
    dispatch = settings.dispatch
    policy = retry_policy(settings)
    signer = TokenSigner(
        [
            SigningKey(
                dispatch.link_key_id, settings.secrets.link_signing_key.get_secret_value().encode()
            )
        ]
    )
    base_url = str(settings.web.public_base_url)
    providers = Providers(settings)
    index = DueIndex()
    buckets = {
        SurveyChannel.SMS: TokenBucket(dispatch.sms_per_second, dispatch.burst),
        SurveyChannel.EMAIL: TokenBucket(dispatch.email_per_second, dispatch.burst),
    }
    windows = {
        SurveyChannel.SMS: SendWindow(dispatch.sms_per_second),
        SurveyChannel.EMAIL: SendWindow(dispatch.email_per_second),
    }
    ticks_out: dict[int, datetime] = {}
    #: This run's token, new at every assignment: only a tick written by this
    #: run, after it took its partitions, can end an in-flight send as
    #: outcome-unknown, since every record of the earlier owner (the outcome
    #: it wrote back before a crash) precedes such a tick in the partition.
    run = {"token": letters(secrets.token_bytes(8), 13)}

    @app.on_before_shutdown.connect
    async def _close_providers(*_: Any, **__: Any) -> None:
        await providers.aclose()

    @app.on_partitions_revoked.connect
    async def _revoked(*_: Any, **__: Any) -> None:
        index.clear()

    @app.on_partitions_assigned.connect
    async def _assigned(*_: Any, **__: Any) -> None:
        index.clear()
        run["token"] = letters(secrets.token_bytes(8), 13)
        ticks_out.clear()

    def active_partitions() -> set[int]:
        topic = by_survey.get_topic_name()
        return {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topic}

    async def forward(message: Any) -> None:
        """Re-key one record by survey id; set aside what no stage can read."""
        value = message.value
        if value is None:
            return  # a vault tombstone (ours): nothing to schedule
        record = decode_record(value)
        if record is not None:
            await producer.send(by_survey, record.survey_id.encode(), value)
            return
        await guard.reject(
            message,
            "unreadable_survey_record",
            "not a survey lifecycle event or contact details of a known version",
        )

    async def forward_survey(event: EventT[bytes]) -> None:
        await forward(event.message)

    shared.read(app, "surveys", names.surveys, forward_survey, guard)

    async def forward_answer(event: EventT[bytes]) -> None:
        value = event.message.value or b""
        # Statement answers and anything else on the topic belong to other stages.
        if any(marker in value for marker in _ANSWER_MARKERS):
            record = decode_record(value)
            if isinstance(record, RatingReceived | OptOut):
                await producer.send(by_survey, record.survey_id.encode(), value)

    shared.read(app, "responses", names.responses, forward_answer, guard)

    @app.agent(vault, name=FORWARD_VAULT_AGENT)
    async def forward_vault(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            await guard.run(event.message, forward, event.message)
            telemetry.agent_progress(FORWARD_VAULT_AGENT, datetime.now(UTC))

    def store(partition: int, survey_id: str, step: Step) -> None:
        if step.state is None:
            table.pop(survey_id, None)
            return
        table[survey_id] = encode_entry(partition, step.state)
        index.push(partition, due_at(step.state, policy), survey_id)

    async def carry_out(step: Step, partition: int, survey_id: str) -> ProviderOutcome | None:
        """Write back, publish, wait for Kafka, then store; a Deliver waits for everything once.

        Events first: the local store must never run ahead of an event that
        a crash could lose (a survey stored as sent without its SurveySent
        would never be accounted for). A state lost instead is recovered from
        the events read back (:func:`engine.lifecycle.on_event`).

        The step that calls the provider writes its intent, the intent's echo
        and the DISPATCHING state, then waits for all three at once: until
        they are acknowledged nothing has been sent, and whichever of them a
        crash lets through makes the survey either wait for its next attempt
        or end as outcome-unknown, never both.
        """
        publishes = [c for c in step.commands if isinstance(c, Publish | RecordOptOut)]
        events = [c.event for c in publishes if isinstance(c, Publish)]
        delivering = any(isinstance(c, Deliver) for c in step.commands)
        for event in events:
            # Written back to this partition first: after a crash the next run
            # reads it before any tick of its own, so it adopts the outcome
            # (and publishes it, had the crash come before that) instead of
            # ending a survey that was sent as outcome-unknown.
            await by_survey.send(
                key=survey_id.encode(),
                value=event.model_dump_json().encode(),
                partition=partition,
                headers=[(ECHO_HEADER, b"1")],
            )
        if events and not delivering:
            await app.producer.flush()
        for publish in publishes:
            if isinstance(publish, RecordOptOut):
                await responses.send(
                    key=publish.opt_out.survey_id.encode(),
                    value=publish.opt_out.model_dump_json().encode(),
                )
                continue
            await surveys.send(
                key=publish.event.citizen_key.encode(),
                value=publish.event.model_dump_json().encode(),
            )
            _count(publish.event, step.state)
        if publishes and not delivering:
            await app.producer.flush()
        store(partition, survey_id, step)
        outcome: ProviderOutcome | None = None
        for command in step.commands:
            if isinstance(command, ForgetDetails):
                await vault.send(key=command.survey_id.encode(), value=None)
            elif isinstance(command, Drop):
                table.pop(command.survey_id, None)
            elif isinstance(command, Deliver) and step.state is not None:
                # The intent to send must be in Kafka before the provider is called.
                await app.producer.flush()
                outcome = await deliver(step.state, command)
        return outcome

    def compose(
        state: SurveyState, channel: SurveyChannel, *, reminder: bool
    ) -> SmsText | OutgoingEmail | Refused:
        """Build the message; nothing has been sent if this fails."""
        scheduled, details = state.scheduled, state.details
        assert scheduled is not None  # noqa: S101 - due() delivers only scheduled surveys
        assert details is not None  # noqa: S101 - and only with their details
        now = datetime.now(UTC)
        touchpoint, _ = settings.touchpoint(scheduled.touchpoint_id)
        try:
            if channel is SurveyChannel.SMS:
                if details.phone is None:
                    return Refused("no phone number in the contact details")
                return survey_sms(
                    scheduled,
                    touchpoint,
                    signer,
                    base_url,
                    dispatch.organisation,
                    reminder=reminder,
                )
            if details.email is None:
                return Refused("no email address in the contact details")
            email = survey_email(
                scheduled,
                touchpoint,
                signer,
                base_url,
                dispatch.organisation,
                now,
                reminder=reminder,
            )
        except ValueError as error:
            log.warning("survey %s: message cannot be built: %s", scheduled.survey_id, error)
            return Refused("the message cannot be built")
        return OutgoingEmail(
            to=details.email, content=email.content, unsubscribe_url=email.unsubscribe_url
        )

    async def deliver(state: SurveyState, command: Deliver) -> ProviderOutcome:
        sms = command.channel is SurveyChannel.SMS
        gateway, mailer = (providers.sms(), None) if sms else (None, providers.mail())
        if gateway is None and mailer is None:
            return Transient(f"no {'SMS provider' if sms else 'SMTP relay'} configured")
        message = compose(state, command.channel, reminder=command.reminder)
        if isinstance(message, Refused):
            return message
        window = windows[command.channel]
        window.started()
        try:
            if isinstance(message, SmsText):
                assert gateway is not None  # noqa: S101 - chosen with the channel above
                assert state.details is not None  # noqa: S101 - and checked by compose
                assert state.details.phone is not None  # noqa: S101 - and checked by compose
                accepted = await gateway.send(
                    state.details.phone,
                    message.body,
                    status_callback_url(base_url),
                    sender_id=message.sender_id,
                    messaging_service_sid=message.messaging_service_sid,
                )
                return Accepted(accepted.sid, accepted.segments)
            assert mailer is not None  # noqa: S101 - chosen with the channel above
            return Accepted((await mailer.send(message)).message_id)
        except Exception as error:  # every failure must end in a recorded outcome
            if not isinstance(error, SmsError | MailError):
                log.exception("survey %s: unexpected error while sending", state.survey_id)
            return outcome_of(error)
        finally:
            window.ended(time.monotonic())

    def rebuild(actives: set[int]) -> None:
        began = time.monotonic()
        index.clear()
        for survey_id, value in table.items():
            partition, state = decode_entry(value)
            if partition in actives:
                index.push(partition, due_at(state, policy), survey_id)
        index.fresh = True
        # The benchmark (palaute bench scheduler) reads this line as "state recovered".
        log.info(
            "due index rebuilt: %d surveys in %d partitions in %.2f s",
            sum(len(heap) for heap in index.heaps.values()),
            len(actives),
            time.monotonic() - began,
        )

    async def act_on(partition: int, survey_id: str, *, own_tick: bool) -> None:
        """Do what one survey's time calls for, within the channel's rate limit."""
        value = table.get(survey_id)
        if value is None:
            return
        _, state = decode_entry(value)
        now = datetime.now(UTC)
        when = due_at(state, policy)
        if when is None or when > now:
            index.push(partition, when, survey_id)
            return
        if not own_tick and state.phase in {Phase.DISPATCHING, Phase.REMINDING}:
            # An earlier owner's tick: its outcome may still be ahead in the partition.
            index.push(partition, now, survey_id)
            return
        step = due(state, now, policy)
        deliver_command = next((c for c in step.commands if isinstance(c, Deliver)), None)
        if deliver_command is not None:
            channel = deliver_command.channel
            wait = windows[channel].wait(time.monotonic())
            if wait > 0:
                index.push(partition, now + timedelta(seconds=wait), survey_id)
                return
            bucket = buckets[channel].take(now)
            if bucket is None:
                index.push(partition, now + buckets[channel].wait(now), survey_id)
                return
            buckets[channel] = bucket
        outcome = await carry_out(step, partition, survey_id)
        if outcome is not None and step.state is not None:
            after = on_outcome(step.state, outcome, datetime.now(UTC), policy)
            await carry_out(after, partition, survey_id)

    async def on_tick(partition: int, writer: str) -> None:
        own_tick = writer == run["token"]
        if own_tick:
            ticks_out.pop(partition, None)
        if not index.fresh:
            rebuild(active_partitions())
        now = datetime.now(UTC)
        budget_ends = time.monotonic() + max(dispatch.tick.total_seconds(), 1.0)
        due_ids = index.pop_due(partition, now)
        for position, survey_id in enumerate(due_ids):
            if not index.fresh or app.should_stop or time.monotonic() > budget_ends:
                # A rebalance or a shutdown began, or the tick's time is up: the rest
                # waits (a rebalance rebuilds the index; the partition may not be ours).
                if index.fresh:
                    for waiting in due_ids[position:]:
                        index.push(partition, now, waiting)
                break
            await act_on(partition, survey_id, own_tick=own_tick)

    @app.agent(by_survey, name=SCHEDULER_AGENT)
    async def scheduler(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            await guard.run(event.message, schedule_one, event.message)
            telemetry.agent_progress(SCHEDULER_AGENT, datetime.now(UTC))

    async def schedule_one(message: Any) -> None:
        """Apply one record of the internal topic (an event or a tick) to its survey."""
        partition: int = message.partition
        writer = tick_run(message.value)
        if writer is not None:
            await on_tick(partition, writer)
        else:
            record = decode_record(message.value or b"")
            if record is None:
                await guard.reject(
                    message,
                    "unreadable_survey_record",
                    "not a survey lifecycle event or contact details of a known version",
                )
            else:
                survey_id = record.survey_id
                stored = table.get(survey_id)
                state = None if stored is None else decode_entry(stored)[1]
                step = on_event(state, record, datetime.now(UTC))
                if (
                    step.state != state
                    and is_echo(message.headers)
                    and not isinstance(record, ContactDetails | RatingReceived | OptOut)
                ):
                    # Our own event, which the table had lost in a crash: it may
                    # never have reached the surveys topic, so it is published
                    # (again, identical, if it had).
                    step = Step(step.state, (Publish(record), *step.commands))
                if step.state != state or step.commands:
                    await carry_out(step, partition, survey_id)

    @app.timer(interval=dispatch.tick.total_seconds())  # type: ignore[untyped-decorator] # faust's timer is untyped
    async def tick() -> None:
        now = datetime.now(UTC)
        for partition in sorted(active_partitions()):
            sent_at = ticks_out.get(partition)
            if sent_at is not None and now - sent_at < _TICK_TIMEOUT:
                continue  # the last tick is still queued; one is enough
            ticks_out[partition] = now
            await by_survey.send(key=b"tick", value=tick_value(run["token"]), partition=partition)


def _count(event: SurveyEvent, state: SurveyState | None) -> None:
    channel = None if state is None or state.scheduled is None else state.scheduled.channel
    kind = getattr(event, "type", "")
    if kind == "SurveySent":
        telemetry.record_survey(telemetry.SurveyOutcome.SENT, channel)
    elif kind == "SurveyFailed":
        telemetry.record_survey(telemetry.SurveyOutcome.FAILED, channel)
    elif kind == "SurveyExpired" and state is not None and state.phase is Phase.EXPIRED:
        telemetry.record_survey(telemetry.SurveyOutcome.EXPIRED, channel)
