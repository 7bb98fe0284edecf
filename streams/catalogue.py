"""The worker's part of the live catalogue: loaded before the stages start, then followed.

:func:`register` gives the app a task that follows the catalogue topic into
``settings.catalogue`` while the worker runs; :func:`load` reads the topic
to its end before faust starts (writing the configuration file's catalogue
first when the topic is empty), so that no contact is decided on the file's
catalogue when the topic holds a newer one.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import TYPE_CHECKING

from connectors.catalogue import CatalogueFollower, now, seed_change
from connectors.kafka_client import client_options
from schemas.catalogue_document import seed_entries

if TYPE_CHECKING:
    import faust

    from schemas.config import Settings
    from schemas.topics import TopicNames

log = logging.getLogger(__name__)

_FOLLOWERS: weakref.WeakKeyDictionary[faust.App, CatalogueFollower] = weakref.WeakKeyDictionary()


def register(app: faust.App, settings: Settings, names: TopicNames) -> CatalogueFollower:
    """Add the task that follows the catalogue topic; give the follower."""
    follower = CatalogueFollower(settings.kafka, names.catalogue, settings.catalogue)
    _FOLLOWERS[app] = follower

    async def follow_catalogue() -> None:
        await follower.follow(asyncio.Event())

    # Called, not applied as a decorator: faust's task decorator is untyped.
    app.task(follow_catalogue)
    return follower


def follower_of(app: faust.App) -> CatalogueFollower:
    """Give the catalogue follower :func:`register` added to ``app``."""
    return _FOLLOWERS[app]


async def load(follower: CatalogueFollower, settings: Settings) -> None:
    """Read the catalogue topic to its end, seeding it from the file when it is empty."""
    from aiokafka import AIOKafkaProducer  # noqa: PLC0415 - only the worker's start needs it

    producer = AIOKafkaProducer(
        **client_options(settings.kafka, client_id_suffix="-catalogue"),
        enable_idempotence=True,
        acks="all",
    )
    await producer.start()
    try:
        await follower.load(producer, seed_change(settings, now()))
    finally:
        await producer.stop()
    if file_differs(follower, settings):
        log.warning(
            "the configuration file's catalogue differs from version %d on the catalogue "
            "topic, which is in force; `palaute catalogue import --dry-run` shows how",
            follower.log.version,
        )


def file_differs(follower: CatalogueFollower, settings: Settings) -> bool:
    """Tell whether the file's catalogue is other than the topic's (an import not yet done)."""
    log_ = follower.log
    if log_.version == 0:
        return False
    topic = (log_.defaults, log_.entries(), log_.csat_targets())
    return seed_entries(settings) != topic
