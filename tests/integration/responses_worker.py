"""Run the responses stage alone as a faust worker: ``python responses_worker.py CONFIG``.

The browser test publishes surveys itself, as the intake and dispatcher
would; a full ``palaute worker`` would schedule and send them again. This
worker runs only the join of answers with surveys, built exactly as the full
worker builds it, so the Ratings it writes are the production stage's.
"""

from __future__ import annotations

import sys
from pathlib import Path

import faust

from schemas.config import load_settings
from schemas.topics import TopicNames
from streams import responses
from streams.app import broker_credentials
from streams.runtime.overrides.app import PalauteApp


def main(config: Path) -> None:
    """Build an app with only the responses stage and run it until SIGTERM."""
    settings = load_settings(config)
    streams = settings.streams
    app = PalauteApp(
        streams.app_id + streams.topic_suffix,
        broker=[f"kafka://{server}" for server in settings.kafka.bootstrap_servers],
        broker_credentials=broker_credentials(settings.kafka),
        store="rocksdb://",
        datadir=str(streams.data_dir),
        processing_guarantee="at_least_once",
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        topic_partitions=streams.partitions,
        topic_replication_factor=streams.replication_factor,
        web_enabled=False,
        autodiscover=False,
    )
    responses.register(app, settings, TopicNames.with_suffix(streams.topic_suffix))
    faust.Worker(app, loglevel="info").execute_from_commandline()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
