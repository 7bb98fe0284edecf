"""The touchpoint console: ranges of the history, the comparison, the chart and the page."""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from connectors.web import charts, timeline_views
from connectors.web.board import Board, Comment
from connectors.web.timeline import RANGES, assemble, chart_data
from engine.opendata import Answer
from schemas.alerts import AlertAcknowledged, ScoreDropAlert
from schemas.base import Scale
from schemas.history import HistoryCounts, Period
from schemas.samples import SAMPLES

ZONE = ZoneInfo("Europe/Helsinki")
NOW = datetime(2026, 12, 7, 12, 30, tzinfo=UTC)


def _day(
    start: str, scores: dict[str, int], sent: int = 0, scale: Scale = Scale.CSAT_5
) -> HistoryCounts:
    return HistoryCounts(
        touchpoint_id="tp-1",
        dimension="all",
        value="all",
        scale=scale,
        period=Period.DAY,
        start=start,
        scores=scores,
        sent=sent,
    )


def _board() -> Board:
    board = Board()
    for back in range(60):
        day = (NOW - timedelta(days=back)).astimezone(ZONE).date().isoformat()
        dropped = back < 3
        scores = {"2": 6, "3": 4} if dropped else {"4": 6, "5": 4}
        board.apply(_day(day, scores, sent=30))
    hour = NOW.strftime("%Y-%m-%dT%H")
    board.apply(_day(hour, {"1": 2}).model_copy(update={"period": Period.HOUR, "start": hour}))
    alert = SAMPLES["score-drop-alert"](NOW - timedelta(days=2))
    assert isinstance(alert, ScoreDropAlert)
    alert = alert.model_copy(
        update={"touchpoint_id": "tp-1", "started_at": NOW - timedelta(days=2)}
    )
    board.apply(alert)
    board.apply(
        AlertAcknowledged(
            alert_id=alert.alert_id,
            touchpoint_id="tp-1",
            acknowledged_by="ops",
            acknowledged_at=NOW - timedelta(days=1),
        )
    )
    board.comments["tp-1"] = deque(
        [
            Comment("Jonotin liian kauan", NOW, "s-low|a-1"),
            Comment("Kiitos avusta", NOW, "s-high|a-2"),
        ]
    )
    board.answers["s-low"] = Answer("tp-1", Scale.CSAT_5, 2, NOW)
    board.answers["s-high"] = Answer("tp-1", Scale.CSAT_5, 5, NOW)
    return board


def test_a_range_is_compared_with_the_period_before_it() -> None:
    """The 7-day view against the 7 days before: the drop shows in both figures."""
    view = assemble(_board(), "tp-1", "28d", NOW, ZONE, kpi_target=4.0)
    assert len(view.buckets) == 28
    assert view.buckets[-1].start.date() == NOW.astimezone(ZONE).date()
    assert view.total.count == 28 * 10
    assert view.previous_total.count == 28 * 10
    assert view.total.mean is not None
    assert view.previous_total.mean is not None
    assert view.total.mean.value < view.previous_total.mean.value
    assert view.total.sent == 28 * 30
    assert [m.kind for m in view.markers] == ["start", "ack"]


def test_the_24_hour_range_reads_hours() -> None:
    """The short ranges are drawn per hour, the hour holding now last."""
    view = assemble(_board(), "tp-1", "24h", NOW, ZONE)
    assert RANGES["24h"].hourly
    assert len(view.buckets) == 24
    assert view.buckets[-1].current.count == 2
    assert view.total.count == 2


def test_the_chart_is_svg_with_the_alert_marked_and_the_target() -> None:
    """The chart draws the markers and the target line, and the same data draws the same bytes."""
    view = assemble(_board(), "tp-1", "28d", NOW, ZONE, kpi_target=4.0, csat_target=0.8)
    data = chart_data(view, timeline_views.words("fi"))
    svg = charts.render(data).decode()
    assert svg.startswith("<?xml")
    assert "<script" not in svg
    assert "Hälytys alkoi" in svg
    assert "Tavoite" in svg
    assert charts.render(data) is charts.render(data)  # cached


@pytest.mark.parametrize("language", ["fi", "sv", "en"])
def test_the_page_region_has_the_range_picker_tables_and_scored_comments(language: str) -> None:
    """Every range is a link, the chart has a table, comments show and filter by score."""
    board = _board()
    from schemas.config import Settings  # noqa: PLC0415 - only this test builds settings

    settings = Settings.model_validate(
        {"secrets": {"pseudonymisation_key": "k" * 40, "link_signing_key": "l" * 40}}
    )
    region = timeline_views.region(board, settings, "tp-1", language, {"range": "7d"}, NOW)
    for key in RANGES:
        assert f"range={key}" in region
    assert 'aria-current="page"' in region
    assert "chart.svg?" in region
    assert "<table>" in region
    assert "Jonotin liian kauan" in region
    assert "Kiitos avusta" in region
    filtered = timeline_views.region(
        board, settings, "tp-1", language, {"range": "7d", "score": "2"}, NOW
    )
    assert "Jonotin liian kauan" in filtered
    assert "Kiitos avusta" not in filtered


def test_an_unknown_range_or_score_falls_back_to_the_default() -> None:
    """A hand-edited query never fails the page."""
    assert timeline_views.chosen({"range": "5y", "score": "x"}) == ("7d", None)
    assert timeline_views.chosen({"range": "13m", "score": "0"}) == ("13m", 0)


def test_ces_and_nps_touchpoints_show_their_own_headline() -> None:
    """A ces-7 touchpoint is read by its CES and easy share, an nps-11 one by its NPS."""
    board = Board()
    board.apply(_day(NOW.astimezone(ZONE).date().isoformat(), {"7": 3, "2": 1}, scale=Scale.CES_7))
    view = assemble(board, "tp-1", "28d", NOW, ZONE)
    data = chart_data(view, timeline_views.words("en"))
    assert data.headline.label.startswith("CES")
    assert data.share.label.startswith("Found it easy")
    assert data.headline.limits == (1.0, 7.0)
