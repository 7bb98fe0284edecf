"""The dashboard's in-memory board: comments find their touchpoint, bounds hold, tokens parse."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest

from connectors.web.access import presented_token
from connectors.web.board import COMMENTS_KEPT, RESOLVED_KEPT, Board, decode
from connectors.web.dashboard_views import choose_language
from schemas.alerts import AlertKind, AlertState, Evidence, ScoreDropAlert, Severity
from schemas.base import Language, Scale, SurveyChannel
from schemas.contacts import TouchpointChannel
from schemas.responses import CommentReceived, Rating

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _rating(survey: str, score: int, *, revision: int = 1, age: timedelta = timedelta(0)) -> Rating:
    return Rating(
        rating_id=f"r-{survey}-{revision}",
        survey_id=survey,
        revision=revision,
        touchpoint_id="desk",
        service="library",
        touchpoint_channel=TouchpointChannel.FACE_TO_FACE,
        survey_channel=SurveyChannel.EMAIL,
        language=Language.FI,
        scale=Scale.CSAT_5,
        score=score,
        normalised=(score - 1) / 4,
        answered_after_seconds=30.0,
        answered_at=NOW - age,
    )


def _alert(number: int, state: AlertState) -> ScoreDropAlert:
    return ScoreDropAlert(
        alert_id=f"a-{number}",
        touchpoint_id="desk",
        kind=AlertKind.DROP,
        state=state,
        severity=Severity.WARNING,
        started_at=NOW + timedelta(minutes=number),
        resolved_at=NOW + timedelta(minutes=number + 1) if state is AlertState.RESOLVED else None,
        sample_size=20,
        evidence=Evidence(method="cusum"),
        summary="drop",
    )


def test_a_comment_written_before_its_rating_is_shown_once_the_rating_names_the_touchpoint() -> (
    None
):
    """Comments name only a survey; losing the early ones would hide what citizens wrote."""
    board = Board()
    board.apply(CommentReceived(answer_id="a", survey_id="s1", text="Hyvä", received_at=NOW))
    assert board.comments == {}
    board.apply(_rating("s1", 5))
    assert [comment.text for comment in board.comments["desk"]] == ["Hyvä"]
    board.apply(CommentReceived(answer_id="b", survey_id="s1", text="Lisäksi", received_at=NOW))
    assert [comment.text for comment in board.comments["desk"]] == ["Hyvä", "Lisäksi"]


def test_a_tombstone_takes_a_comment_off_the_board_shown_or_pending() -> None:
    """A citizen who asked to be forgotten must not stay on the dashboard until a restart."""
    board = Board()
    board.apply(_rating("s1", 5))
    board.apply(CommentReceived(answer_id="a", survey_id="s1", text="Minä", received_at=NOW))
    board.apply(CommentReceived(answer_id="b", survey_id="s2", text="Odottaa", received_at=NOW))
    board.apply(CommentReceived(answer_id="c", survey_id="s3", text="Muu", received_at=NOW))
    board.apply(_rating("s3", 4))
    version = board.version
    assert board.forget("s1|a")
    assert board.forget("s2|b")
    assert not board.forget("s1|a"), "a replayed tombstone finds nothing"
    assert not board.forget("desk:1h")  # a metrics tombstone is no comment's
    assert board.version == version + 2
    board.apply(_rating("s2", 3))  # the pending comment is gone too
    assert [comment.text for comment in board.comments["desk"]] == ["Muu"]


def test_a_later_revision_replaces_an_answer_and_an_older_one_does_not() -> None:
    """A citizen who changed their mind is counted once, with the answer they kept."""
    board = Board()
    board.apply(_rating("s1", 2, revision=2))
    board.apply(_rating("s1", 5, revision=1))
    assert board.answers["s1"].score == 2


def test_answers_older_than_the_period_are_pruned() -> None:
    """The board's memory is bounded by the open-data period, not by history."""
    board = Board(period=timedelta(days=30))
    board.apply(_rating("old", 3, age=timedelta(days=31)))
    board.apply(_rating("new", 4))
    assert board.prune(NOW) == 1
    assert set(board.answers) == {"new"}


def test_comments_and_resolved_alerts_are_kept_within_their_bounds() -> None:
    """A busy touchpoint must not grow the web process without limit."""
    board = Board()
    board.apply(_rating("s1", 4))
    for number in range(COMMENTS_KEPT + 5):
        board.apply(
            CommentReceived(
                answer_id=f"c{number}", survey_id="s1", text=str(number), received_at=NOW
            )
        )
    assert len(board.comments["desk"]) == COMMENTS_KEPT
    assert board.comments["desk"][-1].text == str(COMMENTS_KEPT + 4)
    board.apply(_alert(0, AlertState.FIRING))
    for number in range(1, RESOLVED_KEPT + 11):
        board.apply(_alert(number, AlertState.RESOLVED))
    assert len(board.alerts) == RESOLVED_KEPT + 1
    assert "a-0" in board.alerts  # firing alerts are never dropped
    assert board.touchpoint_alerts()[0].alert_id == "a-0"


def test_records_of_other_types_and_junk_decode_to_nothing() -> None:
    """One bad record on a followed topic must not stop the dashboard."""
    assert decode(b"not json") is None
    assert decode(b'{"type": "Rating", "score": "x"}') is None
    assert decode(None) is None
    assert isinstance(decode(_rating("s1", 4).model_dump_json().encode()), Rating)


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("Basic " + base64.b64encode(b"ops:abc").decode(), "abc"),
        ("Basic " + base64.b64encode(b"abc").decode(), None),
        ("Basic !!!", None),
        ("Digest abc", None),
        ("", None),
    ],
)
def test_the_token_comes_from_bearer_or_the_basic_password(header: str, token: str | None) -> None:
    """Programs send Bearer and browsers Basic; anything else carries no credential."""
    assert presented_token(header) == token


@pytest.mark.parametrize(
    ("query", "accept", "language"),
    [
        ("en", "fi", "en"),
        ("sv", "fi", "sv"),
        (None, "en-GB,en;q=0.9", "en"),
        (None, "sv-FI,fi;q=0.8", "sv"),
        (None, "de,sv", "sv"),
        (None, "de", "fi"),
        ("xx", "", "fi"),
    ],
)
def test_the_language_is_the_query_then_the_browser_then_finnish(
    query: str | None, accept: str, language: str
) -> None:
    """Operators read the dashboard in Finnish, Swedish or English as they choose."""
    assert choose_language(query, accept) == language
