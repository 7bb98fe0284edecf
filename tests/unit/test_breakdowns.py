"""A rating counts in its touchpoint as a whole and in its answer channel."""

from __future__ import annotations

from datetime import UTC, datetime

from engine.breakdowns import ALL, groups_of
from schemas.base import Language, Scale, SurveyChannel
from schemas.contacts import TouchpointChannel
from schemas.responses import Rating


def _rating(channel: SurveyChannel) -> Rating:
    return Rating(
        rating_id="r-1",
        survey_id="s-1",
        touchpoint_id="desk",
        service="library",
        touchpoint_channel=TouchpointChannel.FACE_TO_FACE,
        survey_channel=channel,
        language=Language.FI,
        scale=Scale.CSAT_5,
        score=4,
        normalised=0.75,
        answered_after_seconds=30.0,
        answered_at=datetime(2026, 11, 23, 12, 0, tzinfo=UTC),
    )


def test_every_rating_counts_in_the_whole_touchpoint_and_its_channel() -> None:
    for channel in SurveyChannel:
        groups = groups_of(_rating(channel))
        assert groups[0] == ALL
        assert ("channel", channel.value) in groups
        assert len(set(groups)) == len(groups)
