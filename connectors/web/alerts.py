"""POST /v1/alerts/{alert_id}/ack: an operator acknowledges an alert, with a comment.

The acknowledgement is an event like any other: AlertAcknowledged on the
alerts topic, keyed by the alert's touchpoint, answered 202 once the broker
has it. The checks, in order:

1. **who** — the operator role or higher (:mod:`connectors.web.access`): a
   signed-in person, or ``Authorization: Bearer TOKEN`` whose SHA-256 is one
   of ``[web] ops_token_sha256``; else 401, or 403 for a viewer. A request
   carried by a browser's cookie or Basic credentials must also pass the
   CSRF check;
2. **what** — a JSON object ``{"by": "...", "comment": "...", "assigned_to":
   "..."}``, else 400 or 422 naming the fields and the body wanted. The
   event records who did it: a signed-in person's name and subject from the
   session (``by`` is then not needed and ignored); for a token, ``by``
   (required) and ``token:`` with the token digest's first characters.
   ``assigned_to`` names whoever follows the alert up; neither may be an
   email address. The comment is redacted of phone numbers, addresses and
   identity codes, because alerts carry pseudonymous keys only;
3. **which** — an alert seen on the alerts topic, else 404.

The web service learns the alerts by reading the alerts topic from the
beginning in the background (:class:`KafkaAlertDirectory`); until it has
caught up, an unknown alert id is answered 503 with Retry-After rather than
a misleading 404.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Final, Protocol

import orjson
from aiohttp import web
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from connectors.kafka_client import client_options, topic_partitions
from connectors.web.access import ACCESS, Principal
from connectors.web.access import OperatorTokens as OperatorTokens  # noqa: PLC0414 - re-exported
from connectors.web.errors import ApiError
from schemas.accounts import Role
from schemas.alerts import AlertAcknowledged
from schemas.decoding import FieldError, Rejected, parse_json
from schemas.redaction import redact

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from connectors.web.ingress import ContactProducer
    from schemas.config import KafkaConfig, Settings

logger = logging.getLogger(__name__)

PATH: Final = "/v1/alerts/{alert_id}/ack"
MAX_BODY_BYTES: Final = 8 * 1024
RETRY_AFTER: Final = 5
_CHALLENGE: Final = {"WWW-Authenticate": 'Bearer realm="palaute-operations"'}
BODY_WANTED: Final = (
    'send a JSON object such as {"by": "your name", "comment": "what is being done", '
    '"assigned_to": "who follows up"}, with "by" required'
)
_ALERT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}$")


class AckRequest(BaseModel):
    """The body of an acknowledgement."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    by: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^@]+$")] | None = None
    comment: Annotated[str, Field(max_length=1000)] = ""
    assigned_to: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^@]+$")] | None = (
        None
    )


class AlertDirectory(Protocol):
    """Finds the touchpoint of an alert id."""

    @property
    def ready(self) -> bool:
        """True once every alert published before start-up is known."""
        ...

    def touchpoint_of(self, alert_id: str) -> str | None:
        """Give the alert's touchpoint, or None for an id never seen."""
        ...


class KafkaAlertDirectory:
    """Every alert id on the alerts topic, followed in the background (no consumer group)."""

    def __init__(self, kafka: KafkaConfig, topic: str) -> None:
        self._kafka = kafka
        self._topic = topic
        self._touchpoints: dict[str, str] = {}
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        """True once the topic has been read up to where it ended at start-up."""
        return self._ready.is_set()

    def touchpoint_of(self, alert_id: str) -> str | None:
        """Give the alert's touchpoint, or None for an id never seen."""
        return self._touchpoints.get(alert_id)

    def remember(self, value: bytes) -> None:
        """Take one record of the alerts topic; anything but an alert is passed over."""
        try:
            raw = orjson.loads(value)
        except orjson.JSONDecodeError:
            return
        if isinstance(raw, dict) and raw.get("type") == "ScoreDropAlert":
            alert_id, touchpoint_id = raw.get("alert_id"), raw.get("touchpoint_id")
            if isinstance(alert_id, str) and isinstance(touchpoint_id, str):
                self._touchpoints[alert_id] = touchpoint_id

    async def wait_ready(self) -> None:
        """Wait until caught up (wrap in ``asyncio.timeout`` to bound it)."""
        await self._ready.wait()

    def start(self) -> None:
        """Start following the topic."""
        self._task = asyncio.create_task(self._follow(), name="alert-directory")

    async def stop(self) -> None:
        """Stop following."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _follow(self) -> None:
        while True:
            try:
                await self._read()
            except KafkaError as error:
                logger.warning("alert directory: Kafka failed (%s); retrying", error)
                await asyncio.sleep(RETRY_AFTER)

    async def _read(self) -> None:
        partitions = await topic_partitions(self._kafka, self._topic)
        if not partitions:
            logger.warning("alert directory: topic %s not found; retrying", self._topic)
            await asyncio.sleep(RETRY_AFTER)
            return
        consumer = AIOKafkaConsumer(**client_options(self._kafka), enable_auto_commit=False)
        await consumer.start()
        try:
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            while True:
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    for record in records:
                        if record.value is not None:
                            self.remember(record.value)
                if not self._ready.is_set() and all(
                    [await consumer.position(tp) >= end for tp, end in ends.items()]
                ):
                    self._ready.set()
        finally:
            await consumer.stop()


class AlertAcknowledgements:
    """The state behind the endpoint: tokens, the directory, the producer and the topic."""

    def __init__(
        self,
        directory: AlertDirectory,
        *,
        producer: ContactProducer,
        alerts_topic: str,
    ) -> None:
        self.directory = directory
        self.producer = producer
        self.topic = alerts_topic

    async def handle(self, request: web.Request) -> web.Response:
        """Authenticate, validate, look up, produce, then answer 202."""
        access = request.app[ACCESS]
        principal = access.identify(request)
        if principal is None:
            raise ApiError(
                401, "unauthorized", "missing or unknown operator token", headers=_CHALLENGE
            )
        if not principal.may(Role.OPERATOR):
            raise ApiError(403, "forbidden", "acknowledging alerts needs the operator role")
        await access.check_form(request, principal)
        ack = _body(await request.read())
        event = await self.acknowledge(request.match_info["alert_id"], ack, principal)
        return web.json_response(event.model_dump(mode="json"), status=202)

    async def acknowledge(
        self, alert_id: str, ack: AckRequest, who: Principal
    ) -> AlertAcknowledged:
        """Look the alert up and store its acknowledgement, recording who made it.

        ``who`` must already hold the operator role (:meth:`Access.require`)
        and, for a form, have passed the CSRF check.
        """
        if who.signed_in:
            by = who.actor.name
        elif ack.by is None:
            raise ApiError(
                422,
                "invalid_acknowledgement",
                f"the body is not valid; {BODY_WANTED}",
                errors=(FieldError("by", "missing", "Field required"),),
            )
        else:
            by = ack.by
        touchpoint_id = (
            self.directory.touchpoint_of(alert_id) if _ALERT_ID.match(alert_id) else None
        )
        if touchpoint_id is None:
            if not self.directory.ready:
                raise ApiError(
                    503,
                    "alerts_loading",
                    "the list of alerts is still loading; retry shortly",
                    headers={"Retry-After": str(RETRY_AFTER)},
                )
            raise ApiError(404, "unknown_alert", "no alert with this id")
        event = AlertAcknowledged(
            alert_id=alert_id,
            touchpoint_id=touchpoint_id,
            acknowledged_by=by,
            acknowledged_by_subject=who.actor.subject,
            comment=redact(ack.comment).text[:1000],
            assigned_to=ack.assigned_to,
            acknowledged_at=datetime.now(UTC),
        )
        await self._produce(event)
        return event

    async def _produce(self, event: AlertAcknowledged) -> None:
        try:
            async with asyncio.timeout(15):
                delivery = await self.producer.send(
                    self.topic,
                    value=event.model_dump_json().encode(),
                    key=event.touchpoint_id.encode(),
                    headers=[],
                )
                await delivery
        except (KafkaError, TimeoutError, OSError):
            raise ApiError(
                503,
                "kafka_unavailable",
                "the acknowledgement could not be stored now; retry later",
                headers={"Retry-After": str(RETRY_AFTER)},
            ) from None


def _body(raw: bytes) -> AckRequest:
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(413, "payload_too_large", f"the limit is {MAX_BODY_BYTES} bytes")
    value = parse_json(raw, max_bytes=MAX_BODY_BYTES)
    if isinstance(value, Rejected):
        raise ApiError(400, "invalid_body", f"{value.reason}; {BODY_WANTED}", errors=value.errors)
    return ack_request(value)


def ack_request(value: object) -> AckRequest:
    """Validate an acknowledgement from JSON or a form, naming every field at fault (422)."""
    try:
        return AckRequest.model_validate(value)
    except ValidationError as error:
        errors = tuple(
            FieldError(
                ".".join(str(part) for part in detail["loc"]) or "$",
                detail["type"],
                "must be a name or handle, not an email address"
                if detail["type"] == "string_pattern_mismatch"
                else detail["msg"],
            )
            for detail in error.errors(include_url=False, include_input=False)
        )
        raise ApiError(
            422, "invalid_acknowledgement", f"the body is not valid; {BODY_WANTED}", errors=errors
        ) from None


ACKNOWLEDGEMENTS: Final = web.AppKey("alert_acknowledgements", AlertAcknowledgements)


def setup(
    app: web.Application,
    settings: Settings,
    *,
    producer: ContactProducer,
    directory: AlertDirectory | None = None,
) -> None:
    """Add the route; follow the alerts topic while the app runs if operators are configured."""
    alerts_topic = _alerts_topic(settings)
    if directory is None:
        followed = KafkaAlertDirectory(settings.kafka, alerts_topic)
        if settings.web.ops_token_sha256:
            app.cleanup_ctx.append(_following(followed))
        directory = followed
    app[ACKNOWLEDGEMENTS] = AlertAcknowledgements(
        directory, producer=producer, alerts_topic=alerts_topic
    )
    app.router.add_post(PATH, _post)


def _alerts_topic(settings: Settings) -> str:
    return settings.topics.alerts


def _following(directory: KafkaAlertDirectory) -> Any:
    async def follow(_app: web.Application) -> AsyncIterator[None]:
        directory.start()
        yield
        await directory.stop()

    return follow


async def _post(request: web.Request) -> web.Response:
    return await request.app[ACKNOWLEDGEMENTS].handle(request)
