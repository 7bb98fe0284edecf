"""Every Kafka topic Palaute reads or writes, in one place.

Stages, the AsyncAPI export, topic creation and the docs all read this
table, so a topic is renamed or re-keyed here and nowhere else.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from schemas.alerts import AlertAcknowledged, ScoreDropAlert
from schemas.catalogue_records import CatalogueChanged
from schemas.contacts import ContactCompleted
from schemas.deadletter import DeadLetter
from schemas.history import HistoryCounts
from schemas.metrics import TouchpointMetrics
from schemas.responses import (
    CommentReceived,
    OptIn,
    OptOut,
    Rating,
    RatingReceived,
    StatementAnswered,
)
from schemas.surveys import (
    DeliveryReported,
    ReminderSent,
    SurveyDispatching,
    SurveyExpired,
    SurveyFailed,
    SurveyScheduled,
    SurveySent,
    SurveySkipped,
)
from schemas.vault import ContactDetails

CONTACTS = "palaute.contacts.v1"
SURVEYS = "palaute.surveys.v1"
VAULT = "palaute.vault.v1"
RESPONSES = "palaute.responses.v1"
COMMENTS = "palaute.comments.v1"
RATINGS = "palaute.ratings.v1"
METRICS = "palaute.metrics.v1"
HISTORY = "palaute.history.v1"
ALERTS = "palaute.alerts.v1"
DEADLETTER = "palaute.deadletter.v1"
CATALOGUE = "palaute.catalogue.v1"


@dataclass(frozen=True, slots=True)
class TopicNames:
    """The topics one deployment reads and writes: the names above with its suffix.

    Every process (worker, web service, tools) takes its topic names from
    here, so a deployment with ``[streams] topic_suffix`` never reads or
    writes another deployment's topics.
    """

    contacts: str = CONTACTS
    surveys: str = SURVEYS
    vault: str = VAULT
    responses: str = RESPONSES
    comments: str = COMMENTS
    ratings: str = RATINGS
    metrics: str = METRICS
    history: str = HISTORY
    alerts: str = ALERTS
    deadletter: str = DEADLETTER
    catalogue: str = CATALOGUE

    @classmethod
    def with_suffix(cls, suffix: str) -> TopicNames:
        """Give every name the suffix, for a test run or an environment of its own."""
        return cls(**{name: value + suffix for name, value in asdict(cls()).items()})


@dataclass(frozen=True)
class TopicSpec:
    """What a topic holds and how it is keyed, for people and for tools."""

    name: str
    key: str
    description: str
    messages: tuple[type[Any], ...]
    compacted: bool = False
    retention: str = "7 days"
    #: Partitions when the order of every record matters (else the deployment's number).
    partitions: int | None = None

    def configs(self) -> dict[str, str]:
        """Give the topic configuration to create it with, from ``compacted`` and ``retention``.

        A compacted topic whose retention is a number of days is compacted
        *and* time-retained (``compact,delete``): a tombstone removes a key
        early, and nothing outlives the retention even when no one ever
        tombstones it.
        """
        days = _DAYS.fullmatch(self.retention)
        configs: dict[str, str] = {}
        if self.compacted:
            configs["cleanup.policy"] = "compact,delete" if days else "compact"
        if days:
            configs["retention.ms"] = str(int(days.group(1)) * _MILLISECONDS_PER_DAY)
        return configs


_DAYS = re.compile(r"(\d+) days?")
_MILLISECONDS_PER_DAY = 86_400_000


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(
        CONTACTS,
        key="pseudonymous citizen key, or the source system's citizen reference",
        description="Contact-completed events from front-office systems (CloudEvents 1.0).",
        messages=(ContactCompleted,),
    ),
    TopicSpec(
        SURVEYS,
        key="pseudonymous citizen key",
        description="Decisions and the lifecycle of every survey.",
        messages=(
            SurveyScheduled,
            SurveySkipped,
            SurveyDispatching,
            SurveySent,
            SurveyFailed,
            SurveyExpired,
            ReminderSent,
            DeliveryReported,
        ),
        retention="35 days",
    ),
    TopicSpec(
        VAULT,
        key="survey id",
        description="Contact details needed to send one survey; tombstoned when it closes.",
        messages=(ContactDetails,),
        compacted=True,
        retention="until the survey closes",
    ),
    TopicSpec(
        RESPONSES,
        key="survey id",
        description="Raw answers from SMS replies and one-tap pages.",
        messages=(RatingReceived, OptOut, OptIn, StatementAnswered),
        retention="35 days",
    ),
    TopicSpec(
        COMMENTS,
        key="<survey id>|<answer id> (comment_key)",
        description="Comments written on the survey pages, redacted; a tombstone per key "
        "removes one when the citizen asks to be forgotten.",
        messages=(CommentReceived,),
        compacted=True,
        retention="35 days",
    ),
    TopicSpec(
        RATINGS,
        key="touchpoint id",
        description="Ratings joined with their survey: the input of the metrics.",
        messages=(Rating,),
        retention="400 days",
    ),
    TopicSpec(
        METRICS,
        key="dimension:key:window",
        description="Rolling figures per touchpoint and roll-up, latest per key.",
        messages=(TouchpointMetrics,),
        compacted=True,
        retention="latest value per key",
    ),
    TopicSpec(
        HISTORY,
        key="<touchpoint>|<dimension>|<value>|<scale>|<d or h>|<day or UTC hour>",
        description="Answers per score and surveys sent per touchpoint and group, per day "
        "(13 months) and per hour (the last fortnight), latest per key.",
        messages=(HistoryCounts,),
        compacted=True,
        retention="400 days",
    ),
    TopicSpec(
        ALERTS,
        key="touchpoint id",
        description="Score-drop, target-breach and silence alerts, and acknowledgements.",
        messages=(ScoreDropAlert, AlertAcknowledged),
        retention="400 days",
    ),
    TopicSpec(
        DEADLETTER,
        key="the original record's key",
        description="Records no stage could process: original bytes as the value, "
        "the reason in palaute.dlq.* headers.",
        messages=(DeadLetter,),
        retention="30 days",
    ),
    TopicSpec(
        CATALOGUE,
        key="change:<change id>, one key per change",
        description="The touchpoint catalogue, one versioned change per record, in one "
        "partition; every worker and web process applies each change as it is written.",
        messages=(CatalogueChanged,),
        compacted=True,
        retention="forever (every change is the catalogue's history)",
        partitions=1,
    ),
)


def comment_key(survey_id: str, answer_id: str) -> str:
    """Key a comment by its survey and its own answer id.

    The survey id comes first so that whoever knows a citizen's surveys can
    pick out every comment on them; the answer id keeps each comment of a
    survey under a key of its own, so compaction never drops an earlier
    comment. Identifiers cannot contain ``|``.
    """
    return f"{survey_id}|{answer_id}"


def topic(name: str) -> TopicSpec:
    """Look a topic up by name, failing loudly on a typo."""
    for spec in TOPICS:
        if spec.name == name:
            return spec
    raise KeyError(f"unknown topic {name!r}")
