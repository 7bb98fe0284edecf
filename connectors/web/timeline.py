"""The touchpoint console: a chosen range of the history, against the period before it.

:func:`assemble` reads the board's history (:mod:`connectors.web.history`)
for one touchpoint and one range of :data:`RANGES` (hours for 24 h and 7 d,
local days for 28 d, 90 d and 13 months), the same number of buckets just
before it (for 13 months: the same days a year earlier, as far as the 13
months kept reach), and the alerts whose start, acknowledgement or end
falls inside. :func:`chart_data` turns that into what
:mod:`connectors.web.charts` draws; :mod:`connectors.web.timeline_views`
writes the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

from connectors.web.charts import Band, ChartData
from engine.history_figures import Figures, Tally, figures
from schemas.base import Scale

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from connectors.web.board import Board
    from engine.history_figures import Estimate


@dataclass(frozen=True, slots=True)
class Range:
    """A range the console offers: how many buckets of which period, and the comparison."""

    key: str
    buckets: int
    hourly: bool
    #: How far back the comparison's first bucket is, in buckets.
    previous_offset: int


RANGES: Final = {
    "24h": Range("24h", 24, hourly=True, previous_offset=24),
    "7d": Range("7d", 7 * 24, hourly=True, previous_offset=7 * 24),
    "28d": Range("28d", 28, hourly=False, previous_offset=28),
    "90d": Range("90d", 90, hourly=False, previous_offset=90),
    # 13 months against the same weekdays a year earlier (52 weeks).
    "13m": Range("13m", 396, hourly=False, previous_offset=364),
}
DEFAULT_RANGE: Final = "7d"


@dataclass(frozen=True, slots=True)
class Marker:
    """An alert's moment on the time axis."""

    at: datetime
    kind: str  # start, ack or end
    alert_id: str


@dataclass(frozen=True, slots=True)
class Bucket:
    """One bucket of the range: when it began (local time), its figures and the comparison's."""

    start: datetime
    current: Figures
    previous: Figures


@dataclass(frozen=True, slots=True)
class ConsoleView:
    """What the console shows of one touchpoint and range."""

    touchpoint_id: str
    range: Range
    scale: Scale
    buckets: tuple[Bucket, ...]
    total: Figures
    previous_total: Figures
    markers: tuple[Marker, ...]
    kpi_target: float | None
    csat_target: float | None


def _starts(chosen: Range, now: datetime, zone: ZoneInfo) -> list[datetime]:
    """Give the local start of each bucket of the range ending with the one holding ``now``."""
    if chosen.hourly:
        last = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        return [
            (last - timedelta(hours=chosen.buckets - 1 - i)).astimezone(zone)
            for i in range(chosen.buckets)
        ]
    today = now.astimezone(zone).date()
    days = [today - timedelta(days=chosen.buckets - 1 - i) for i in range(chosen.buckets)]
    return [datetime(day.year, day.month, day.day, tzinfo=zone) for day in days]


def assemble(
    board: Board,
    touchpoint_id: str,
    range_key: str,
    now: datetime,
    zone: ZoneInfo,
    *,
    kpi_target: float | None = None,
    csat_target: float | None = None,
) -> ConsoleView:
    """Read one touchpoint's range and its comparison from the board."""
    chosen = RANGES.get(range_key, RANGES[DEFAULT_RANGE])
    history = board.history
    starts = _starts(chosen, now, zone)
    if chosen.hourly:
        current = [t for _, t in history.hours(touchpoint_id, starts[0], starts[-1])]
        back = timedelta(hours=chosen.previous_offset)
        previous = [t for _, t in history.hours(touchpoint_id, starts[0] - back, starts[-1] - back)]
    else:
        first, last = starts[0].date(), starts[-1].date()
        back = timedelta(days=chosen.previous_offset)
        current = [t for _, t in history.days(touchpoint_id, first, last)]
        previous = [t for _, t in history.days(touchpoint_id, first - back, last - back)]
    scale = history.scale(touchpoint_id) or Scale.CSAT_5
    total, previous_total = Tally(scale), Tally(scale)
    for tally in current:
        total.add(tally.scores, tally.sent)
    for tally in previous:
        previous_total.add(tally.scores, tally.sent)
    end = starts[-1] + (timedelta(hours=1) if chosen.hourly else timedelta(days=1))
    return ConsoleView(
        touchpoint_id=touchpoint_id,
        range=chosen,
        scale=scale,
        buckets=tuple(
            Bucket(start, figures(now_tally), figures(before))
            for start, now_tally, before in zip(starts, current, previous, strict=True)
        ),
        total=figures(total),
        previous_total=figures(previous_total),
        markers=tuple(_markers(board, touchpoint_id, starts[0], end)),
        kpi_target=kpi_target,
        csat_target=csat_target,
    )


def _markers(board: Board, touchpoint_id: str, since: datetime, until: datetime) -> list[Marker]:
    found: list[Marker] = []
    for alert in board.touchpoint_alerts(touchpoint_id):
        ack = board.acks.get(alert.alert_id)
        moments = [
            (alert.started_at, "start"),
            (None if ack is None else ack.acknowledged_at, "ack"),
            (alert.resolved_at, "end"),
        ]
        found += [
            Marker(at, kind, alert.alert_id)
            for at, kind in moments
            if at is not None and since <= at < until
        ]
    return sorted(found, key=lambda marker: marker.at)


def limits(scale: Scale) -> tuple[float, float]:
    """Give the headline axis: the scale's own span, or -100..100 for NPS."""
    if scale is Scale.NPS_11:
        return -100.0, 100.0
    return float(scale.low), float(scale.high)


Values = tuple[float | None, ...]


def _values(estimates: list[Estimate | None]) -> tuple[Values, Values, Values]:
    return (
        tuple(None if e is None else e.value for e in estimates),
        tuple(None if e is None else e.low for e in estimates),
        tuple(None if e is None else e.high for e in estimates),
    )


def chart_data(view: ConsoleView, words: dict[str, str]) -> ChartData:
    """Give the chart of a console view, in the page's words (naive local times)."""
    buckets = view.buckets
    headline = _values([b.current.headline for b in buckets])
    share = _values([b.current.share for b in buckets])
    before = [b.previous.headline for b in buckets]
    before_share = [b.previous.share for b in buckets]
    return ChartData(
        times=tuple(b.start.replace(tzinfo=None) for b in buckets),
        headline=Band(
            words["headline_" + view.scale.value.split("-")[0]]
            if view.scale in {Scale.NPS_11, Scale.CES_7}
            else words["headline_mean"],
            values=headline[0],
            lows=headline[1],
            highs=headline[2],
            previous=tuple(None if e is None else e.value for e in before),
            target=view.kpi_target,
            limits=limits(view.scale),
        ),
        share=Band(
            words["share_easy"] if view.scale is Scale.CES_7 else words["share_csat"],
            values=share[0],
            lows=share[1],
            highs=share[2],
            previous=tuple(None if e is None else e.value for e in before_share),
            target=view.csat_target,
            limits=(0.0, 1.0),
        ),
        volume=tuple(b.current.count for b in buckets),
        response_rate=tuple(b.current.response_rate for b in buckets),
        markers=tuple(
            (
                marker.at.astimezone(buckets[0].start.tzinfo).replace(tzinfo=None),
                marker.kind,
            )
            for marker in view.markers
        ),
        words=tuple(sorted(words.items())),
        hourly=view.range.hourly,
    )
