"""The weekly digest: read two weeks of ratings and alerts from Kafka, mail each team.

``palaute digest send`` runs this once a week from a timer (cron, a
Kubernetes CronJob, a systemd timer). It reads the ratings and alerts topics
from two weeks before the digest's day (the consumer seeks by timestamp, so
it reads two weeks, not the topic), counts each survey once (its latest
revision), and sends one message per team of ``[digest.teams]`` over the
``[smtp]`` relay, as the alert emails are sent. A team whose mail fails is
reported and the others are still sent; the exit status says whether all
went.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import aiosmtplib
from pydantic import ValidationError

from connectors.email import mail_error_for
from connectors.kafka_range import records_since
from engine.digest import WEEK, DigestAnswer, digest_lines, digest_message
from schemas.alerts import ScoreDropAlert
from schemas.responses import Rating

if TYPE_CHECKING:
    import ssl

    from schemas.config import KafkaConfig, Settings

log = logging.getLogger(__name__)


async def read_since(kafka: KafkaConfig, topic: str, since: datetime) -> list[bytes]:
    """Give the values written to a topic from ``since`` up to its end when called."""
    return [value for _key, value in await records_since(kafka, topic, since) if value]


def latest_answers(values: list[bytes]) -> list[DigestAnswer]:
    """Keep each survey's latest revision; skip what is not a Rating."""
    latest: dict[str, Rating] = {}
    for value in values:
        if b'"Rating"' not in value:
            continue
        try:
            rating = Rating.model_validate_json(value)
        except ValidationError:
            continue
        known = latest.get(rating.survey_id)
        if known is None or rating.revision >= known.revision:
            latest[rating.survey_id] = rating
    return [DigestAnswer(r.touchpoint_id, r.scale, r.score, r.answered_at) for r in latest.values()]


def alert_starts(values: list[bytes]) -> list[tuple[str, datetime]]:
    """Give each alert's touchpoint and start, once per alert."""
    starts: dict[str, tuple[str, datetime]] = {}
    for value in values:
        if b'"ScoreDropAlert"' not in value:
            continue
        try:
            alert = ScoreDropAlert.model_validate_json(value)
        except ValidationError:
            continue
        starts[alert.alert_id] = (alert.touchpoint_id, alert.started_at)
    return list(starts.values())


def week_end_of(now: datetime, time_zone: str) -> datetime:
    """Give the end of the digest's week: the start of the local day it is sent."""
    local = now.astimezone(ZoneInfo(time_zone))
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass(frozen=True, slots=True)
class DigestMail:
    """One team's message, ready to send."""

    team_id: str
    message: EmailMessage


def build_digests(
    settings: Settings,
    answers: list[DigestAnswer],
    alerts: list[tuple[str, datetime]],
    *,
    week_end: datetime,
    link_base: str | None,
) -> list[DigestMail]:
    """Build each team's message in its language, addressed to all its recipients."""
    if settings.smtp is None:
        raise ValueError("the digest is sent over [smtp]; configure it")
    mails = []
    minimum = settings.opendata.min_answers
    for team_id, team in settings.digest.teams.items():
        names = {}
        for touchpoint in team.touchpoints:
            entry = settings.catalogue.touchpoints.get(touchpoint)
            names[touchpoint] = entry.name if entry is not None and entry.name else touchpoint
        lines = digest_lines(
            answers, alerts, touchpoints=names, week_end=week_end, min_answers=minimum
        )
        subject, body = digest_message(
            lines,
            language=team.language,
            team=team.name or team_id,
            week_end=week_end,
            min_answers=minimum,
            link=None if link_base is None else link_base + f"?lang={team.language}",
        )
        message = EmailMessage()
        message["From"] = settings.smtp.sender
        message["To"] = ", ".join(team.recipients)
        message["Subject"] = subject
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(body)
        # After the content: setting it clears every Content-* header set before.
        message["Content-Language"] = team.language
        mails.append(DigestMail(team_id, message))
    return mails


async def send_digests(
    settings: Settings,
    now: datetime,
    *,
    dry_run: bool = False,
    tls_context: ssl.SSLContext | None = None,
) -> dict[str, str]:
    """Read, build and send every team's digest; give each team's outcome (``sent`` or why not)."""
    week_end = week_end_of(now, settings.policy.time_zone)
    since = week_end - 2 * WEEK
    topics = settings.topics
    answers = latest_answers(await read_since(settings.kafka, topics.ratings, since))
    alerts = alert_starts(
        await read_since(settings.kafka, topics.alerts, since - timedelta(days=1))
    )
    base = str(settings.web.public_base_url).rstrip("/")
    link = base + "/dashboard/touchpoints/{touchpoint_id}"
    mails = build_digests(settings, answers, alerts, week_end=week_end, link_base=link)
    outcome: dict[str, str] = {}
    smtp = settings.smtp
    if smtp is None:  # build_digests refused already; this tells the type checker
        return outcome
    for mail in mails:
        if dry_run:
            outcome[mail.team_id] = "not sent (dry run)"
            continue
        try:
            await aiosmtplib.send(
                mail.message,
                hostname=smtp.host,
                port=smtp.port,
                use_tls=smtp.security == "tls",
                start_tls=smtp.security == "starttls",
                username=smtp.username,
                password=None if smtp.password is None else smtp.password.get_secret_value(),
                timeout=smtp.timeout_seconds,
                tls_context=tls_context,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            reason = mail_error_for(exc).reason
            log.warning("digest of team %s not sent: %s", mail.team_id, reason)
            outcome[mail.team_id] = f"not sent: {reason}"
        else:
            outcome[mail.team_id] = "sent"
    return outcome
