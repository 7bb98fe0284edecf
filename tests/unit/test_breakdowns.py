"""A rating counts in its touchpoint, its answer channel and its context's bounded groups."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from engine.breakdowns import ALL, OTHER, groups_of, possible_groups, wait_band, wait_bands
from schemas.base import Language, Scale, SurveyChannel
from schemas.config_console import MAX_NAMED_VALUES, BreakdownsConfig
from schemas.contacts import TouchpointChannel
from schemas.decoding import Rejected
from schemas.responses import Rating
from schemas.samples import SAMPLES
from schemas.surveys import SurveyScheduled
from streams.stages.responses import decode_joined

LISTED = BreakdownsConfig(
    teams=["Neuvonta A", "Neuvonta B"],
    case_types=["asumistuki"],
    touchpoints={"desk": {"teams": ["Tiski"]}},  # type: ignore[dict-item] # validated
)


def _rating(channel: SurveyChannel = SurveyChannel.SMS, **context: Any) -> Rating:
    return Rating(
        rating_id="r-1",
        survey_id="s-1",
        touchpoint_id=context.pop("touchpoint_id", "phone"),
        service="library",
        touchpoint_channel=TouchpointChannel.FACE_TO_FACE,
        survey_channel=channel,
        language=Language.FI,
        scale=Scale.CSAT_5,
        score=4,
        normalised=0.75,
        answered_after_seconds=30.0,
        answered_at=datetime(2026, 11, 23, 12, 0, tzinfo=UTC),
        **context,
    )


def test_every_rating_counts_in_the_whole_touchpoint_and_its_channel() -> None:
    """The two groups every rating has, old or new."""
    for channel in SurveyChannel:
        groups = groups_of(_rating(channel))
        assert groups[0] == ALL
        assert ("channel", channel.value) in groups
        assert len(set(groups)) == len(groups)


def test_a_listed_team_counts_under_its_listed_spelling() -> None:
    """Front offices spell a team differently from day to day; the history must not split."""
    for spelling in (
        "Neuvonta A",
        "  neuvonta   a ",
        "NEUVONTA A",
        "\uff2e\uff45\uff55\uff56\uff4f\uff4e\uff54\uff41 \uff21",
    ):
        assert ("team", "Neuvonta A") in groups_of(_rating(team=spelling), LISTED)


def test_an_unlisted_value_counts_as_other() -> None:
    """The bound: a value nobody listed adds no row."""
    groups = groups_of(_rating(team="Someone new", case_type="toimeentulotuki"), LISTED)
    assert ("team", OTHER) in groups
    assert ("case_type", OTHER) in groups


def test_a_touchpoints_own_list_replaces_the_global_one() -> None:
    """A service desk has its own teams; the contact centre's names mean nothing there."""
    assert ("team", "Tiski") in groups_of(_rating(team="tiski", touchpoint_id="desk"), LISTED)
    assert ("team", OTHER) in groups_of(_rating(team="Neuvonta A", touchpoint_id="desk"), LISTED)
    # Case types are not overridden at the desk: the global list still applies.
    assert ("case_type", "asumistuki") in groups_of(
        _rating(case_type="Asumistuki", touchpoint_id="desk"), LISTED
    )


def test_without_lists_or_context_no_team_or_case_type_group_is_made() -> None:
    """Nothing grows unless an operator asks: unlisted dimensions and missing context add none."""
    dimensions = {d for d, _ in groups_of(_rating(team="A", case_type="B"))}
    assert dimensions == {"all", "channel"}
    assert {d for d, _ in groups_of(_rating(), LISTED)} == {"all", "channel"}


@pytest.mark.parametrize(
    ("seconds", "band"),
    [(0, "0-1"), (59, "0-1"), (60, "1-5"), (299, "1-5"), (900, "15-30"), (1800, "30+")],
)
def test_queue_waits_fall_into_the_default_bands(seconds: int, band: str) -> None:
    """A band's lower limit is in it, its upper limit in the next."""
    assert wait_band(seconds, [1, 5, 15, 30]) == band
    assert ("queue_wait", band) in groups_of(_rating(queue_wait_seconds=seconds))


@given(
    team=st.text(max_size=40).filter(lambda s: s.strip() and s.isprintable()),
    wait=st.integers(min_value=0, max_value=7 * 24 * 3600),
    touchpoint=st.sampled_from(["phone", "desk"]),
)
def test_every_group_of_any_rating_is_among_the_possible_ones(
    team: str, wait: int, touchpoint: str
) -> None:
    """The documented bound holds for any value a front office may send."""
    rating = _rating(team=team, case_type=team, queue_wait_seconds=wait, touchpoint_id=touchpoint)
    possible = set(possible_groups(touchpoint, LISTED))
    assert set(groups_of(rating, LISTED)) <= possible
    bound = 1 + len(SurveyChannel) + 2 * (MAX_NAMED_VALUES + 1) + 9
    assert len(possible) <= bound


def test_the_bands_cover_every_wait_once() -> None:
    """The console lists the bands in order; every band a wait can fall in is listed."""
    limits = [2, 10, 60]
    assert wait_bands(limits) == ("0-2", "2-10", "10-60", "60+")
    assert {wait_band(s, limits) for s in range(0, 4000, 7)} == set(wait_bands(limits))


@pytest.mark.parametrize(
    "section",
    [
        {"teams": ["A", " a "]},
        {"teams": ["other"]},
        {"case_types": ["a:b"]},
        {"teams": [f"t{n}" for n in range(MAX_NAMED_VALUES + 1)]},
        {"queue_wait_minutes": [5, 5]},
        {"queue_wait_minutes": [0, 5]},
    ],
)
def test_a_list_that_would_blur_or_unbound_the_groups_is_refused(section: dict[str, Any]) -> None:
    """Two names for one value, a reserved name or a long list is a configuration error."""
    with pytest.raises(ValidationError):
        BreakdownsConfig.model_validate(section)


def test_a_survey_whose_team_holds_an_identity_code_is_not_joined() -> None:
    """Team and case type are free text: the join refuses a code there as intake does."""
    scheduled = SAMPLES["survey-scheduled"](datetime(2026, 11, 23, 12, 0, tzinfo=UTC))
    clean = scheduled.model_dump_json().encode()
    assert isinstance(decode_joined(clean), SurveyScheduled)
    rejected = decode_joined(clean.replace(b'"Neuvonta A"', b'"Neuvonta 131052-308T"'))
    assert isinstance(rejected, Rejected)
    assert [error.code for error in rejected.errors] == ["personal_identity_code"]
