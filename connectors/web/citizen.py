"""The citizen-facing part of the web service, assembled: pages, Twilio webhooks, index.

:func:`setup` adds the one-tap pages and the Twilio webhooks to the app and,
unless a test hands in its own :class:`SurveyIndex`, a background task that
reads the surveys, vault and responses topics from the beginning into the index and keeps
following them (see :mod:`connectors.web.open_surveys`). The task retries
while Kafka or the topics are missing; until the index has caught up, a link
of a survey it does not know yet is answered 503 with Retry-After instead of
404.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from connectors.kafka_client import client_options
from connectors.web import pages, twilio_hooks
from connectors.web.answers import Answers
from connectors.web.open_surveys import SurveyIndex, follow

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from aiohttp import web

    from connectors.web.ingress import ContactProducer
    from schemas.config import KafkaConfig, Settings

log = logging.getLogger(__name__)
_RETRY_SECONDS = 2.0
_STOP_SECONDS = 10.0


def setup(
    app: web.Application,
    settings: Settings,
    *,
    producer: ContactProducer,
    index: SurveyIndex | None = None,
) -> SurveyIndex:
    """Add pages and webhooks; follow Kafka into a fresh index unless one is given."""
    secret = settings.secrets.pseudonymisation_key.get_secret_value().encode()
    follow_kafka = index is None
    signer = pages.link_signer(settings)
    survey_index = (
        index if index is not None else SurveyIndex(secret=secret, codes=signer.survey_codes)
    )
    if survey_index.codes is None:
        survey_index.use_codes(signer.survey_codes)
    answers = Answers(producer, settings.topics)
    pages.setup(
        app,
        pages.Pages(
            signer=signer,
            index=survey_index,
            answers=answers,
            fingerprint_key=secret,
            statements=lambda touchpoint, language: settings.touchpoint(touchpoint)[0].statements(
                language
            ),
            touchpoint=lambda touchpoint: settings.touchpoint(touchpoint)[0],
            organisation=settings.dispatch.organisation,
        ),
    )
    if settings.twilio is not None:
        twilio_hooks.setup(
            app,
            twilio_hooks.TwilioHooks(
                auth_token=settings.twilio.auth_token.get_secret_value(),
                public_base_url=str(settings.web.public_base_url),
                index=survey_index,
                answers=answers,
                texts=lambda touchpoint: (
                    (
                        settings.catalogue.defaults
                        if touchpoint is None
                        else settings.touchpoint(touchpoint)[0]
                    ).texts
                ),
            ),
        )
    if follow_kafka:

        async def following(_app: web.Application) -> AsyncIterator[None]:
            stop = asyncio.Event()
            task = asyncio.create_task(
                _follow_until(
                    stop,
                    settings.kafka,
                    [settings.topics.surveys, settings.topics.vault, settings.topics.responses],
                    survey_index,
                )
            )
            yield
            # Cancelling aiokafka mid-connect leaks its socket: ask the loop to end first.
            stop.set()
            try:
                await asyncio.wait_for(task, _STOP_SECONDS)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

        app.cleanup_ctx.append(following)
    else:
        survey_index.ready.set()
    return survey_index


#: The index reads every record from the start, without a consumer group.
_INDEX_READING: dict[str, Any] = {
    "enable_auto_commit": False,
    "group_id": None,
    "auto_offset_reset": "earliest",
}


async def _follow_until(
    stop: asyncio.Event, kafka: KafkaConfig, topics: list[str], index: SurveyIndex
) -> None:
    """Keep the index following the topics, starting over after any Kafka trouble."""
    while not stop.is_set():
        consumer = AIOKafkaConsumer(
            **client_options(kafka, client_id_suffix="-web-index"), **_INDEX_READING
        )
        try:
            await consumer.start()
            consumer.subscribe(topics)
            await follow(
                consumer,
                index,
                topics=topics,
                caught_up=index.ready,
                clock=lambda: datetime.now(UTC),
                stop=stop,
            )
        except KafkaError as error:
            log.warning("survey index lost Kafka (%s); retrying", type(error).__name__)
        finally:
            await consumer.stop()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), _RETRY_SECONDS)
