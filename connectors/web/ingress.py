"""POST /v1/contacts: ContactCompleted events over HTTP, for systems without Kafka.

The order of checks is the contract with integrators:

1. **who** — an API key (``Authorization: Bearer KEY`` or ``X-Api-Key``) whose
   SHA-256 is configured for a source system and not revoked, else 401;
2. **how often** — a token bucket per source system, else 429 with Retry-After;
3. **what** — a body within the size limit (413), valid UTF-8 JSON with no
   member name repeated in any object and no nesting deeper than 64 levels
   (400, ``duplicate_member`` and ``too_deep``: the gate's checks), one
   CloudEvent or a JSON array of them (``application/cloudevents-batch+json``
   must be an array), every event valid by the same schemas as the Kafka
   intake (422 naming each invalid event by index and field path), and every
   ``source`` one the key may speak for (403);
4. **produce** — all events of the request to the contacts topic, each
   delivery acknowledged by every in-sync replica, before 202 ``{"accepted":
   [ids]}``. Kafka unreachable: 503 with Retry-After.

A batch is checked whole before anything is produced, so a bad event never
leaves its valid neighbours half-written. A 503 after a partial delivery can
leave some of them on the topic; the caller retries the whole batch, and the
repeats are recognised (below and by the intake).

Idempotency: an event id (with its source) answered 202 recently is answered
202 again without producing it. The memory of recent ids is per process and
bounded (``[ingress] remembered_event_ids``), and two concurrent requests with
the same new id can both produce it: the real guarantee is the intake's
per-contact de-duplication, which turns any repeat into one decision.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import math
import time
from collections import OrderedDict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Protocol

import orjson
from aiohttp import ClientPayloadError, hdrs, web
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from connectors import telemetry
from connectors.kafka_client import client_options
from connectors.web.errors import ApiError
from schemas.contacts import CONTACT_COMPLETED_TYPE, ContactCompleted
from schemas.decoding import MAX_EVENT_BYTES, FieldError, Rejected, parse_json, validate_value

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from schemas.config import IngressConfig, IngressSource, KafkaConfig, Settings

logger = logging.getLogger(__name__)

PATH: Final = "/v1/contacts"
SINGLE_TYPES: Final = frozenset({"application/json", "application/cloudevents+json"})
BATCH_TYPE: Final = "application/cloudevents-batch+json"
#: Longer than any key ``palaute web new-key`` makes; longer ones are not even hashed.
MAX_KEY_LENGTH: Final = 256
#: Seconds a caller is told to wait after Kafka did not answer.
KAFKA_RETRY_AFTER: Final = 5
RECORD_HEADERS: Final = (("content-type", b"application/cloudevents+json; charset=utf-8"),)
_CHALLENGE: Final = {"WWW-Authenticate": 'Bearer realm="palaute-ingress"'}


class ContactProducer(Protocol):
    """What the ingress needs of a Kafka producer (aiokafka's AIOKafkaProducer)."""

    async def send(
        self,
        topic: str,
        *,
        value: bytes,
        key: bytes,
        headers: list[tuple[str, bytes]],
    ) -> Awaitable[Any]:
        """Queue a record; the returned awaitable resolves when the broker has it."""
        ...


def hash_key(key: str) -> str:
    """Give the SHA-256 (hex) of an API key: what the configuration stores."""
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeys:
    """Configured source systems, found by the hash of the key they present."""

    def __init__(self, config: IngressConfig) -> None:
        self._sources = dict(config.sources)

    def authenticate(self, presented: str | None) -> tuple[str, IngressSource] | None:
        """Name the source system of a valid, unrevoked key; None for anything else."""
        if not presented or len(presented) > MAX_KEY_LENGTH:
            return None
        digest = hash_key(presented)
        found: tuple[str, IngressSource] | None = None
        # Every digest is compared, in constant time each: the answer's timing
        # does not tell which entry (if any) was close.
        for name, source in self._sources.items():
            if hmac.compare_digest(digest, source.key_sha256):
                found = (name, source)
        if found is not None and found[1].revoked:
            logger.warning("refused a revoked API key of source system %s", found[0])
            return None
        return found


class RateLimiter:
    """A token bucket per client: ``rate`` requests a second, bursts up to ``burst``."""

    def __init__(
        self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, client: str) -> float | None:
        """Spend a token of ``client``; None when allowed, else seconds until one is free."""
        now = self._clock()
        tokens, last = self._buckets.get(client, (self._burst, now))
        tokens = min(self._burst, tokens + (now - last) * self._rate)
        if tokens >= 1.0:
            self._buckets[client] = (tokens - 1.0, now)
            return None
        self._buckets[client] = (tokens, now)
        return (1.0 - tokens) / self._rate


class RecentIds:
    """The last ``capacity`` event ids produced, oldest forgotten first."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._ids: OrderedDict[tuple[str, str], None] = OrderedDict()

    def __contains__(self, event_id: tuple[str, str]) -> bool:
        return event_id in self._ids

    def add(self, event_id: tuple[str, str]) -> None:
        """Remember an id; past the capacity the oldest is forgotten."""
        if self._capacity == 0:
            return
        self._ids[event_id] = None
        self._ids.move_to_end(event_id)
        while len(self._ids) > self._capacity:
            self._ids.popitem(last=False)


class ContactIngress:
    """The state behind POST /v1/contacts: keys, buckets, recent ids and the producer."""

    def __init__(
        self,
        config: IngressConfig,
        *,
        producer: ContactProducer,
        contacts_topic: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.keys = ApiKeys(config)
        self.limiter = RateLimiter(config.requests_per_second, config.burst, clock=clock)
        self.recent = RecentIds(config.remembered_event_ids)
        self.producer = producer
        self.topic = contacts_topic

    async def handle(self, request: web.Request) -> web.Response:
        """Authenticate, limit, validate all, produce all, then answer 202."""
        system, source = self._authenticate(request)
        wait = self.limiter.take(system)
        if wait is not None:
            raise ApiError(
                429,
                "rate_limited",
                f"too many requests from {system}; retry later",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
        batch, values = _shape(request.content_type, await self._read(request))
        if len(values) > self.config.max_batch_events:
            raise ApiError(
                413,
                "too_many_events",
                f"the batch has {len(values)} events; the limit is {self.config.max_batch_events}",
            )
        events = _validate(values, batch=batch, now=datetime.now(UTC))
        _check_sources(events, source.event_sources, batch=batch)
        accepted, duplicates = await self._produce(events, values)
        for _ in range(accepted):
            telemetry.count_event(telemetry.Stage.WEB, telemetry.Outcome.OK)
        for _ in duplicates:
            telemetry.count_event(telemetry.Stage.WEB, telemetry.Outcome.DUPLICATE)
        return web.json_response(
            {"accepted": [event.id for event in events], "duplicates": duplicates}, status=202
        )

    def _authenticate(self, request: web.Request) -> tuple[str, IngressSource]:
        presented = request.headers.get("X-Api-Key")
        authorization = request.headers.get(hdrs.AUTHORIZATION, "")
        scheme, _, credentials = authorization.partition(" ")
        if presented is None and scheme.lower() == "bearer":
            presented = credentials.strip()
        found = self.keys.authenticate(presented)
        if found is None:
            raise ApiError(
                401, "unauthorized", "missing, unknown or revoked API key", headers=_CHALLENGE
            )
        return found

    async def _read(self, request: web.Request) -> bytes:
        limit = self.config.max_body_bytes
        body = bytearray()
        try:
            async for chunk in request.content.iter_chunked(64 * 1024):
                body += chunk
                if len(body) > limit:
                    raise ApiError(
                        413, "payload_too_large", f"the body is over the limit of {limit} bytes"
                    )
        except (ClientPayloadError, ConnectionError):
            raise ApiError(400, "incomplete_body", "the body ended early") from None
        return bytes(body)

    async def _produce(
        self, events: list[ContactCompleted], values: list[Any]
    ) -> tuple[int, list[str]]:
        """Produce every event not produced recently; give the count and the repeats."""
        fresh: list[tuple[tuple[str, str], bytes, bytes]] = []
        duplicates: list[str] = []
        seen: set[tuple[str, str]] = set()
        for event, value in zip(events, values, strict=True):
            event_id = (event.source, event.id)
            if event_id in self.recent or event_id in seen:
                duplicates.append(event.id)
                continue
            seen.add(event_id)
            key = event.data.citizen.id or event.id
            fresh.append((event_id, key.encode(), orjson.dumps(value)))
        if fresh:
            await self._deliver([(key, value) for _, key, value in fresh])
        for event_id, _, _ in fresh:
            self.recent.add(event_id)
        return len(fresh), duplicates

    async def _deliver(self, records: list[tuple[bytes, bytes]]) -> None:
        deliveries: list[Awaitable[Any]] = []
        timeout = self.config.produce_timeout.total_seconds()
        try:
            async with asyncio.timeout(timeout):
                for key, value in records:
                    deliveries.append(
                        await self.producer.send(
                            self.topic, value=value, key=key, headers=list(RECORD_HEADERS)
                        )
                    )
            await _all_delivered(deliveries, timeout)
        except (KafkaError, TimeoutError, OSError) as error:
            logger.warning("could not produce to %s: %s", self.topic, type(error).__name__)
            raise ApiError(
                503,
                "kafka_unavailable",
                "events could not be stored now; retry the whole request later",
                headers={"Retry-After": str(KAFKA_RETRY_AFTER)},
            ) from None


async def _all_delivered(deliveries: list[Awaitable[Any]], seconds: float) -> None:
    """Wait for every delivery without cancelling any: a queued record may still arrive."""
    done, pending = await asyncio.wait(
        [asyncio.ensure_future(delivery) for delivery in deliveries], timeout=seconds
    )
    if pending:
        raise TimeoutError
    for delivery in done:
        delivery.result()


def _shape(content_type: str, raw: bytes) -> tuple[bool, list[Any]]:
    """Parse the body; tell whether it is a batch, and give its events' JSON values."""
    if content_type != BATCH_TYPE and content_type not in SINGLE_TYPES:
        raise ApiError(
            415,
            "unsupported_media_type",
            f"send application/cloudevents+json, {BATCH_TYPE} or application/json",
        )
    value = parse_json(raw, max_bytes=len(raw))
    if isinstance(value, Rejected):
        raise ApiError(400, "invalid_body", value.reason, errors=value.errors)
    if isinstance(value, list):
        if not value:
            raise ApiError(400, "empty_batch", "the batch holds no events")
        return True, value
    if content_type == BATCH_TYPE:
        raise ApiError(400, "not_a_batch", f"a {BATCH_TYPE} body must be a JSON array")
    if not isinstance(value, dict):
        raise ApiError(400, "not_an_object", "send one event object or an array of them")
    return False, [value]


def _at(index: int | None, path: str) -> str:
    if index is None:
        return path
    if path == "$":
        return f"[{index}]"
    return f"[{index}]{path}" if path.startswith("[") else f"[{index}].{path}"


def _validate(values: list[Any], *, batch: bool, now: datetime) -> list[ContactCompleted]:
    """Validate every event; refuse the request naming all that fail (422)."""
    events: list[ContactCompleted] = []
    errors: list[FieldError] = []
    for index, value in enumerate(values):
        where = index if batch else None
        if len(orjson.dumps(value)) > MAX_EVENT_BYTES:
            # The intake refuses larger records; refuse them here instead.
            errors.append(
                FieldError(
                    _at(where, "$"),
                    "payload_too_large",
                    f"an event may be at most {MAX_EVENT_BYTES} bytes",
                )
            )
            continue
        result = validate_value(value, now=now, expect=CONTACT_COMPLETED_TYPE)
        if isinstance(result, ContactCompleted):
            events.append(result)
        elif isinstance(result, Rejected):
            errors.extend(
                FieldError(_at(where, error.path), error.code, error.message)
                for error in result.errors
            )
        else:  # pragma: no cover - validate_value with expect= gives only these two
            raise TypeError("validated as ContactCompleted but got another model")
    if errors:
        invalid = len({error.path.partition("]")[0] for error in errors}) if batch else 1
        raise ApiError(
            422,
            "invalid_events",
            f"{invalid} of {len(values)} events are invalid; nothing was accepted",
            errors=tuple(errors),
        )
    return events


def _check_sources(events: list[ContactCompleted], allowed: list[str], *, batch: bool) -> None:
    """Refuse (403) events whose source the key does not speak for."""
    errors = tuple(
        FieldError(
            _at(index if batch else None, "source"),
            "source_not_allowed",
            "this API key may not send events of this source",
        )
        for index, event in enumerate(events)
        if event.source not in allowed
    )
    if errors:
        raise ApiError(
            403,
            "source_not_allowed",
            "the API key's system may send only its own sources; nothing was accepted",
            errors=errors,
        )


INGRESS: Final = web.AppKey("ingress", ContactIngress)


def setup(
    app: web.Application, settings: Settings, *, producer: ContactProducer, contacts_topic: str
) -> None:
    """Add the ingress route and its state to the application."""
    app[INGRESS] = ContactIngress(
        settings.ingress, producer=producer, contacts_topic=contacts_topic
    )
    app.router.add_post(PATH, _post)


async def _post(request: web.Request) -> web.Response:
    return await request.app[INGRESS].handle(request)


def kafka_producer(kafka: KafkaConfig) -> AIOKafkaProducer:
    """Build an idempotent producer (``acks=all``) from ``[kafka]``; the caller starts it.

    aiokafka's defaults (``acks=1``, no idempotence) can lose or repeat a
    record on a broker failover; an accepted event must be neither.
    """
    return AIOKafkaProducer(**client_options(kafka), enable_idempotence=True, acks="all")
