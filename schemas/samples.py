"""A valid example of every event type, for integrators and for tests.

``palaute events sample TYPE`` prints these; the exported JSON Schemas carry
them as examples. The citizen is fictional and the address uses a domain
reserved for examples.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from schemas.alerts import (
    AlertAcknowledged,
    AlertKind,
    AlertState,
    Evidence,
    ScoreDropAlert,
    Severity,
)
from schemas.base import Language, Scale, SurveyChannel
from schemas.catalogue_records import CatalogueAction, CatalogueChanged, TouchpointEntry
from schemas.contacts import (
    Citizen,
    Consent,
    Contact,
    ContactCompleted,
    ContactCompletedData,
    ContactContext,
    ServicePathStage,
    Touchpoint,
    TouchpointChannel,
)
from schemas.deadletter import DeadLetter
from schemas.history import HistoryCounts, Period
from schemas.metrics import TouchpointMetrics
from schemas.responses import (
    AnswerVia,
    CommentReceived,
    OptIn,
    OptOut,
    Rating,
    RatingReceived,
    StatementAnswered,
)
from schemas.surveys import (
    DeliveryReported,
    DeliveryStatus,
    ReminderSent,
    SkipReason,
    SurveyDispatching,
    SurveyExpired,
    SurveyFailed,
    SurveyScheduled,
    SurveySent,
    SurveySkipped,
)
from schemas.topics import CONTACTS
from schemas.vault import ContactDetails

if TYPE_CHECKING:
    from collections.abc import Callable

    from pydantic import BaseModel

CITIZEN_KEY = "3f6c1e0a9b5d4c2e8f7a6b5c4d3e2f1a"
SURVEY_ID = "s-01JD7Q9X4K2M"
CONTACT_ID = "c-2026-000123"
TOUCHPOINT_ID = "phone-service-helsinki"


def contact_completed(now: datetime) -> ContactCompleted:
    """Build a call to a city's phone service that ended two minutes ago."""
    return ContactCompleted(
        specversion="1.0",
        id="evt-2026-000123",
        source="/crm/helsinki-contact-centre",
        type="fi.palaute.contact.completed.v1",
        time=now,
        data=ContactCompletedData(
            contact=Contact(
                id=CONTACT_ID,
                ended_at=now - timedelta(minutes=2),
                context=ContactContext(
                    queue_wait_seconds=240, team="Neuvonta A", case_type="asumistuki"
                ),
            ),
            citizen=Citizen(
                id="cust-884211",
                phone="+358401234567",
                email="maija.meikalainen@example.com",
                language=Language.FI,
                birth_year=1984,
                consent=Consent(sms=True, email=True),
            ),
            touchpoint=Touchpoint(
                id=TOUCHPOINT_ID,
                name="Puhelinpalvelu",
                channel=TouchpointChannel.PHONE,
                service="Asumisen tuet",
                location="Helsinki",
                stage=ServicePathStage.SERVICE,
            ),
        ),
    )


def _survey_fields(now: datetime) -> dict[str, object]:
    return {
        "survey_id": SURVEY_ID,
        "citizen_key": CITIZEN_KEY,
        "contact_id": CONTACT_ID,
        "contact_source": "/crm/helsinki-contact-centre",
        "touchpoint_id": TOUCHPOINT_ID,
        "occurred_at": now,
    }


def _alert(now: datetime) -> ScoreDropAlert:
    return ScoreDropAlert(
        alert_id="a-phone-service-helsinki-drop-1",
        touchpoint_id=TOUCHPOINT_ID,
        kind=AlertKind.DROP,
        state=AlertState.FIRING,
        severity=Severity.WARNING,
        started_at=now,
        before=4.3,
        after=3.4,
        target=4.0,
        sample_size=86,
        evidence=Evidence(method="cusum", statistic=6.2, threshold=5.0),
        summary="Puhelinpalvelu: mean score fell from 4.3 to 3.4 over the last 86 ratings",
        dashboard_url="https://palaute.example.com/dashboard/touchpoints/phone-service-helsinki",
    )


#: Sample builders by the kebab-case name ``palaute events sample`` takes.
SAMPLES: dict[str, Callable[[datetime], BaseModel]] = {
    "contact-completed": contact_completed,
    "survey-scheduled": lambda now: SurveyScheduled(
        **_survey_fields(now),  # type: ignore[arg-type]
        channel=SurveyChannel.SMS,
        language=Language.FI,
        scale=Scale.CSAT_5,
        contact_ended_at=now - timedelta(minutes=2),
        send_at=now + timedelta(minutes=30),
        reminder_at=now + timedelta(days=1),
        expires_at=now + timedelta(days=3),
        team="Neuvonta A",
        case_type="asumistuki",
        queue_wait_seconds=240,
    ),
    "survey-skipped": lambda now: SurveySkipped(
        **_survey_fields(now),  # type: ignore[arg-type]
        reason=SkipReason.FREQUENCY_CAP,
    ),
    "survey-dispatching": lambda now: SurveyDispatching(
        **_survey_fields(now),  # type: ignore[arg-type]
        channel=SurveyChannel.SMS,
        attempt=1,
    ),
    "survey-sent": lambda now: SurveySent(
        **_survey_fields(now),  # type: ignore[arg-type]
        channel=SurveyChannel.SMS,
        provider_message_id="SM0123456789abcdef0123456789abcdef",
        segments=1,
    ),
    "survey-failed": lambda now: SurveyFailed(
        **_survey_fields(now),  # type: ignore[arg-type]
        channel=SurveyChannel.SMS,
        reason="recipient has unsubscribed",
        provider_error_code="21610",
        attempts=1,
    ),
    "survey-expired": lambda now: SurveyExpired(
        **_survey_fields(now),  # type: ignore[arg-type]
        was_sent=True,
    ),
    "reminder-sent": lambda now: ReminderSent(
        **_survey_fields(now),  # type: ignore[arg-type]
        channel=SurveyChannel.EMAIL,
    ),
    "delivery-reported": lambda now: DeliveryReported(
        **_survey_fields(now),  # type: ignore[arg-type]
        channel=SurveyChannel.SMS,
        status=DeliveryStatus.DELIVERED,
    ),
    "contact-details": lambda now: ContactDetails(
        survey_id=SURVEY_ID,
        citizen_key=CITIZEN_KEY,
        phone="+358401234567",
        language=Language.FI,
        stored_at=now,
    ),
    "rating-received": lambda now: RatingReceived(
        answer_id="ans-7Q2M4K",
        survey_id=SURVEY_ID,
        score=4,
        via=AnswerVia.SMS_REPLY,
        received_at=now,
    ),
    "opt-out": lambda now: OptOut(
        answer_id="ans-7Q2M4L",
        survey_id=SURVEY_ID,
        citizen_key=CITIZEN_KEY,
        via=AnswerVia.SMS_REPLY,
        received_at=now,
    ),
    "opt-in": lambda now: OptIn(
        answer_id="ans-7Q2M4P",
        survey_id=SURVEY_ID,
        citizen_key=CITIZEN_KEY,
        via=AnswerVia.SMS_REPLY,
        received_at=now,
    ),
    "comment-received": lambda now: CommentReceived(
        answer_id="ans-7Q2M4M",
        survey_id=SURVEY_ID,
        text="Jonotus kesti pitkään, mutta asia hoitui hyvin.",
        received_at=now,
    ),
    "statement-answered": lambda now: StatementAnswered(
        answer_id="ans-7Q2M4N",
        survey_id=SURVEY_ID,
        statement_index=0,
        score=4,
        received_at=now,
    ),
    "rating": lambda now: Rating(
        rating_id="ans-7Q2M4K",
        survey_id=SURVEY_ID,
        touchpoint_id=TOUCHPOINT_ID,
        service="Asumisen tuet",
        touchpoint_channel=TouchpointChannel.PHONE,
        survey_channel=SurveyChannel.SMS,
        language=Language.FI,
        scale=Scale.CSAT_5,
        score=4,
        normalised=0.75,
        answered_after_seconds=1260.0,
        answered_at=now,
        team="Neuvonta A",
        case_type="asumistuki",
        queue_wait_seconds=240,
    ),
    "touchpoint-metrics": lambda now: TouchpointMetrics(
        key=TOUCHPOINT_ID,
        window="24h",
        as_of=now,
        scale=Scale.CSAT_5,
        count=42,
        mean=4.21,
        distribution={"1": 1, "2": 2, "3": 4, "4": 14, "5": 21},
        csat_share=0.833,
        surveys_sent=130,
        response_rate=0.323,
        median_answer_seconds=540.0,
    ),
    "history-counts": lambda now: HistoryCounts(
        touchpoint_id=TOUCHPOINT_ID,
        dimension="all",
        value="all",
        scale=Scale.CSAT_5,
        period=Period.DAY,
        start=now.date().isoformat(),
        scores={"1": 2, "2": 3, "3": 9, "4": 31, "5": 47},
        sent=260,
    ),
    "score-drop-alert": _alert,
    "alert-acknowledged": lambda now: AlertAcknowledged(
        alert_id="a-phone-service-helsinki-drop-1",
        touchpoint_id=TOUCHPOINT_ID,
        acknowledged_by="ops-duty",
        comment="Two agents off sick; extra staff from 13:00.",
        acknowledged_at=now,
    ),
    "catalogue-changed": lambda now: CatalogueChanged(
        change_id="5f0c3b9e2d8a4c7f9e1b6a2d4c8e0f13",
        at=now,
        by="Aino Virtanen",
        action=CatalogueAction.EDIT,
        base_version=41,
        touchpoints={
            TOUCHPOINT_ID: TouchpointEntry(
                entry={
                    "name": "Puhelinpalvelu",
                    "send_delay": "5m",
                    "kpi_target": 4.3,
                    "questions": {
                        "fi": "Miten onnistuimme puhelussa?",
                        "sv": "Hur lyckades vi under samtalet?",
                        "en": "How did we do on the call?",
                    },
                },
                csat_target=0.8,
            )
        },
        comment="New question after the spring survey review.",
    ),
    "dead-letter": lambda now: DeadLetter(
        stage="intake",
        source_topic=CONTACTS,
        source_partition=0,
        source_offset=1234,
        reason_code="naive_timestamp",
        reason="data.contact.ended_at: timestamp has no time zone [naive_timestamp]",
        failed_at=now,
    ),
}
