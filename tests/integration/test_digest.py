"""The weekly digest, from real topics to a real SMTP server: one message per team, its language.

Ratings of this week and the week before, and an alert, are produced to the
test's own topics on the real broker; ``send_digests`` reads them back by
timestamp and mails each team of ``[digest.teams]`` through the aiosmtpd
server of :mod:`tests.integration.smtp_server`.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from connectors.digest import send_digests, week_end_of
from connectors.web.ingress import kafka_producer
from ops.kafka import create_topic, delete_topics
from schemas.alerts import AlertKind, AlertState, Evidence, ScoreDropAlert, Severity
from schemas.base import Language, Scale, SurveyChannel
from schemas.config import Settings
from schemas.contacts import TouchpointChannel
from schemas.responses import Rating
from schemas.topics import ALERTS, RATINGS
from tests.integration.smtp_server import smtp_sink

if TYPE_CHECKING:
    from tests.integration.smtp_server import SmtpSink

pytestmark = [pytest.mark.integration]
__all__ = ["smtp_sink"]

NOW = datetime.now(UTC)


def _settings(bootstrap: str, suffix: str, sink: SmtpSink) -> Settings:
    data: dict[str, Any] = {
        "kafka": {"bootstrap_servers": [bootstrap]},
        "secrets": {"pseudonymisation_key": "d" * 40, "link_signing_key": "e" * 40},
        "streams": {"topic_suffix": suffix, "partitions": 1},
        "smtp": {
            "host": sink.host,
            "port": sink.port,
            "security": "none",
            "sender": "p@example.fi",
        },
        "web": {"public_base_url": "https://palaute.example.fi"},
        "touchpoints": {"phone": {"name": "Puhelinpalvelu"}, "desk": {"name": "Palvelutiski"}},
        "opendata": {"min_answers": 3},
        "digest": {
            "teams": {
                "neuvonta": {
                    "recipients": ["neuvonta@example.fi", "esihenkilo@example.fi"],
                    "language": "fi",
                    "touchpoints": ["phone", "desk"],
                    "name": "Neuvonta",
                },
                "kundtjanst": {
                    "recipients": ["kundtjanst@example.fi"],
                    "language": "sv",
                    "touchpoints": ["desk"],
                },
            }
        },
    }
    return Settings.model_validate(data)


def _rating(number: int, touchpoint: str, score: int, answered_at: datetime) -> Rating:
    return Rating(
        rating_id=f"s-{number}",
        survey_id=f"s-{number}",
        touchpoint_id=touchpoint,
        service="Neuvonta",
        touchpoint_channel=TouchpointChannel.PHONE,
        survey_channel=SurveyChannel.SMS,
        language=Language.FI,
        scale=Scale.CSAT_5,
        score=score,
        normalised=(score - 1) / 4,
        answered_after_seconds=60.0,
        answered_at=answered_at,
    )


async def test_each_team_gets_its_touchpoints_last_week_in_its_language(
    kafka_bootstrap: str, smtp_sink: SmtpSink
) -> None:
    """The digest's promise: the week's figures against the week before, per team, per language."""
    suffix = f".g{uuid.uuid4().hex[:12]}"
    settings = _settings(kafka_bootstrap, suffix, smtp_sink)
    names = [RATINGS + suffix, ALERTS + suffix]
    for name in names:
        create_topic(kafka_bootstrap, name, partitions=1)
    week_end = week_end_of(NOW, settings.policy.time_zone)
    this_week, last_week = week_end - timedelta(days=2), week_end - timedelta(days=9)
    ratings = [
        *(_rating(n, "phone", score, this_week) for n, score in enumerate([5, 4, 4, 3])),
        *(_rating(10 + n, "phone", 5, last_week) for n in range(3)),
        _rating(20, "desk", 2, this_week),  # one answer: no figures
        _rating(0, "phone", 1, this_week).model_copy(update={"revision": 2}),
    ]
    alert = ScoreDropAlert(
        alert_id="drop-phone-1",
        touchpoint_id="phone",
        kind=AlertKind.DROP,
        state=AlertState.FIRING,
        severity=Severity.WARNING,
        started_at=this_week,
        before=4.8,
        after=3.0,
        sample_size=4,
        evidence=Evidence(method="cusum", statistic=6.0, threshold=5.0),
        summary="The mean fell.",
    )
    producer = kafka_producer(settings.kafka)
    await producer.start()
    try:
        for rating in ratings:
            await producer.send_and_wait(
                names[0], rating.model_dump_json().encode(), key=rating.touchpoint_id.encode()
            )
        await producer.send_and_wait(names[1], alert.model_dump_json().encode(), key=b"phone")
        outcome = await send_digests(settings, NOW)
    finally:
        await producer.stop()
        delete_topics(kafka_bootstrap, names)

    assert outcome == {"neuvonta": "sent", "kundtjanst": "sent"}
    mails = {tuple(mail.rcpt_tos): mail.message() for mail in smtp_sink.received}
    finnish = mails[("neuvonta@example.fi", "esihenkilo@example.fi")]
    body = finnish.get_content()
    assert finnish["Subject"].startswith("Palaute: viikkokooste")
    assert finnish["Content-Language"] == "fi"
    # Survey s-0's second revision (1) replaces its first (5): scores 1, 4, 4, 3.
    assert "Puhelinpalvelu: 4 vastausta, keskiarvo 3,00, tyytyväisiä 50 %" in body
    assert "(edellinen viikko: 3 vastausta, keskiarvo 5,00)" in body
    assert "Hälytyksiä viikon aikana: 1" in body
    assert "Palvelutiski: 1 vastausta, keskiarvo alle 3 vastausta" in body
    assert "https://palaute.example.fi/dashboard/touchpoints/phone?lang=fi" in body
    swedish = mails[("kundtjanst@example.fi",)]
    assert swedish["Subject"].startswith("Palaute: veckosammanfattning")
    assert "Puhelinpalvelu" not in swedish.get_content()
    assert "Palvelutiski: 1 svar, medelvärde färre än 3 svar" in swedish.get_content()
