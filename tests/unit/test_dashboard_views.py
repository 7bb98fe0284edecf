"""The dashboard's HTML: the page's language, alerting rows, names and times as people read them."""

from __future__ import annotations

from datetime import UTC, datetime

from connectors.web.board import Board
from connectors.web.dashboard import overview_document
from connectors.web.dashboard_alerts import RESOLVED_SHOWN, alerts_page
from connectors.web.dashboard_views import detail_live, overview_live, page
from schemas.alerts import (
    AlertAcknowledged,
    AlertKind,
    AlertState,
    Evidence,
    ScoreDropAlert,
    Severity,
)
from schemas.base import Scale
from schemas.config import Settings
from schemas.metrics import TouchpointMetrics
from schemas.responses import CommentReceived, Rating
from tests.unit.test_dashboard_board import _rating as rating_of

AT = datetime(2026, 12, 7, 12, 5, tzinfo=UTC)
SETTINGS = Settings.model_validate(
    {
        "kafka": {"bootstrap_servers": ["127.0.0.1:9092"]},
        "secrets": {"pseudonymisation_key": "d" * 40, "link_signing_key": "e" * 40},
        "touchpoints": {
            "health-centre": {
                "name": "Terveysasema",
                "service": {"fi": "Terveysasema", "sv": "Hälsostationen", "en": "Health centre"},
            },
            "library": {"name": "Kirjasto"},
        },
    }
)


def _board() -> Board:
    board = Board()
    for key in ("health-centre", "library"):
        board.apply(
            TouchpointMetrics(
                key=key,
                window="24h",
                as_of=AT,
                scale=Scale.CSAT_5,
                count=4,
                mean=3.5,
                distribution={"3": 2, "4": 2},
                csat_share=0.5,
            )
        )
    board.apply(
        ScoreDropAlert(
            alert_id="drop-health-centre-1",
            touchpoint_id="health-centre",
            kind=AlertKind.DROP,
            state=AlertState.FIRING,
            severity=Severity.CRITICAL,
            started_at=AT,
            before=4.24,
            after=3.09,
            sample_size=66,
            evidence=Evidence(method="cusum", statistic=7.0, threshold=6.0),
            summary="mean score dropped",
        )
    )
    return board


def _rating(survey_id: str, touchpoint_id: str) -> Rating:
    return rating_of(survey_id, 2).model_copy(update={"touchpoint_id": touchpoint_id})


def test_an_alerting_touchpoints_row_is_highlighted_and_says_so() -> None:
    """The row stands out by a class and by words, and only the alerting one does."""
    live = overview_live(_board(), SETTINGS, "fi")
    assert '<tr data-touchpoint="health-centre" class="alerting">' in live
    assert '<tr data-touchpoint="library">' in live
    assert "\N{WARNING SIGN} Hälytys käynnissä" in live


def test_a_swedish_page_is_swedish_with_the_catalogues_swedish_names() -> None:
    """?lang=sv used to serve Finnish under lang="fi"."""
    html = page(
        title="Palaute",
        language="sv",
        live=overview_live(_board(), SETTINGS, "sv"),
        switch_href="/dashboard?lang=sv",
        events="/dashboard/events?lang=sv",
    )
    assert '<html lang="sv">' in html
    assert ">Hälsostationen</a>" in html
    assert ">Kirjasto</a>" in html  # no Swedish name in the catalogue: its name
    assert "Medelvärdet sjönk från 4,24 till 3,09 i de senaste 66 svaren." in html
    assert 'href="/dashboard?lang=fi" lang="fi"' in html
    assert 'href="/dashboard?lang=en" lang="en"' in html
    assert "käynnissä" not in html


def test_an_acknowledged_alert_moves_section_and_shows_who_and_to_whom() -> None:
    """Acknowledged is a state of its own, with its own words and mark."""
    board = _board()
    board.apply(
        AlertAcknowledged(
            alert_id="drop-health-centre-1",
            touchpoint_id="health-centre",
            acknowledged_by="Päivystäjä",
            comment="Katsottu",
            assigned_to="Tiimi A",
            acknowledged_at=AT,
        )
    )
    html = alerts_page(board, SETTINGS, "fi", "token", "")
    firing, acknowledged, _resolved = html.split("<section")[1:]
    assert "Ei hälytyksiä." in firing
    assert 'data-state="acknowledged"' in acknowledged
    assert "\N{CHECK MARK}" in acknowledged
    assert "Kuittasi Päivystäjä 7.12.2026 klo 14.05, vastuussa Tiimi A" in acknowledged
    assert "Päivitä kuittausta" in acknowledged  # it can be handed on


def test_comment_times_are_local() -> None:
    """12:05 UTC is 14:05 in Helsinki, as the operator's clock says."""
    board = _board()
    board.apply(_rating("s1", "health-centre"))
    board.apply(CommentReceived(answer_id="a", survey_id="s1", text="Jonotin", received_at=AT))
    html = detail_live(board, SETTINGS, "health-centre", "fi")
    assert "7.12.2026 klo 14.05</time> Jonotin" in html


def test_the_overview_shows_open_alerts_and_only_the_latest_resolved() -> None:
    """Two hundred resolved alerts would bury the one that is firing; the alerts page has them."""
    board = _board()
    for number in range(RESOLVED_SHOWN + 3):
        board.apply(
            ScoreDropAlert(
                alert_id=f"drop-library-{number}",
                touchpoint_id="library",
                kind=AlertKind.DROP,
                state=AlertState.RESOLVED,
                severity=Severity.WARNING,
                started_at=AT,
                resolved_at=AT,
                sample_size=20,
                evidence=Evidence(method="cusum"),
                summary="back",
            )
        )
    live = overview_live(board, SETTINGS, "en")
    assert live.count('data-state="resolved"') == RESOLVED_SHOWN
    assert live.count('data-state="firing"') == 1
    assert 'href="/dashboard/alerts?lang=en">All alerts and acknowledgements' in live
    assert alerts_page(board, SETTINGS, "en", "t", "").count('data-state="resolved"') == 8


def test_the_overview_json_names_touchpoints_per_language_and_says_each_alerts_status() -> None:
    """Programs reading the overview get what the pages show: names and work-item status."""
    document = overview_document(_board(), SETTINGS)
    names = {entry["touchpoint_id"]: entry["names"] for entry in document["touchpoints"]}
    assert names["health-centre"] == {
        "fi": "Terveysasema",
        "sv": "Hälsostationen",
        "en": "Health centre",
    }
    assert names["library"] == {"fi": "Kirjasto", "sv": "Kirjasto", "en": "Kirjasto"}
    [alert] = document["alerts"]
    assert (alert["state"], alert["status"]) == ("firing", "firing")
