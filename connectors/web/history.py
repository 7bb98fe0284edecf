"""The web process's copy of the history topic: counts per touchpoint, group, day and hour.

The board (:mod:`connectors.web.board`) folds each HistoryCounts record in
here, and a tombstone takes its bucket out. Reads sum the buckets of a span
into a :class:`~engine.history_figures.Tally`, so a chart of 13 months costs
about 400 dictionary look-ups per series.

Memory: a bucket is a tuple of integers (sent, then the count of each score
of the scale), under an integer (the day's ordinal, or the hour since the
epoch): about 200 bytes. 500 touchpoints with three groups, 13 months of
days and a fortnight of hours hold about 1.1 million buckets, some 220 MiB.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Final

from engine.breakdowns import ALL
from engine.history import BucketKey
from engine.history_figures import Tally
from schemas.base import Scale
from schemas.history import Period

if TYPE_CHECKING:
    from collections.abc import Iterator

    from schemas.history import HistoryCounts

Group = tuple[str, str]
_HOUR: Final = 3600


def hour_number(at: datetime) -> int:
    """Give a UTC hour's number: hours since the epoch."""
    return int(at.timestamp()) // _HOUR


def hour_start(number: int) -> datetime:
    """Undo :func:`hour_number`."""
    return datetime.fromtimestamp(number * _HOUR, UTC)


def _index(period: Period, start: str) -> int:
    if period is Period.DAY:
        return date.fromisoformat(start).toordinal()
    return hour_number(datetime.strptime(start, "%Y-%m-%dT%H").replace(tzinfo=UTC))


@dataclass
class Series:
    """One touchpoint's buckets of one group and scale: day or hour number → counts."""

    scale: Scale
    days: dict[int, tuple[int, ...]] = field(default_factory=dict)
    hours: dict[int, tuple[int, ...]] = field(default_factory=dict)

    def by(self, period: Period) -> dict[int, tuple[int, ...]]:
        """Give the buckets of one period."""
        return self.days if period is Period.DAY else self.hours

    def tally(self, period: Period, first: int, last: int) -> Tally:
        """Sum the buckets numbered ``first`` to ``last`` (inclusive)."""
        total = Tally(self.scale)
        buckets = self.by(period)
        low = self.scale.low
        for number in range(first, last + 1):
            bucket = buckets.get(number)
            if bucket is not None:
                total.add({low + i: n for i, n in enumerate(bucket[1:]) if n}, bucket[0])
        return total

    def each(self, period: Period, first: int, last: int) -> Iterator[tuple[int, Tally]]:
        """Give each bucket from ``first`` to ``last`` as a tally, empty ones included."""
        for number in range(first, last + 1):
            yield number, self.tally(period, number, number)


@dataclass
class History:
    """Every touchpoint's series, by group and scale."""

    series: dict[str, dict[Group, dict[Scale, Series]]] = field(default_factory=dict)
    #: Per touchpoint, how often its buckets changed: a chart drawn at one version is current.
    versions: dict[str, int] = field(default_factory=dict)
    #: The last day or hour any record named, per touchpoint: the freshest scale wins.
    _latest: dict[str, dict[Scale, int]] = field(default_factory=dict)

    def apply(self, counts: HistoryCounts) -> None:
        """Fold one bucket in, replacing what the same key held."""
        scale = counts.scale
        group = (counts.dimension, counts.value)
        by_scale = self.series.setdefault(counts.touchpoint_id, {}).setdefault(group, {})
        series = by_scale.get(scale)
        if series is None:
            series = by_scale[scale] = Series(scale)
        number = _index(counts.period, counts.start)
        width = scale.high - scale.low + 1
        cells = [0] * width
        for score, n in counts.scores.items():
            position = int(score) - scale.low
            if 0 <= position < width:
                cells[position] = n
        series.by(counts.period)[number] = (counts.sent, *cells)
        self.versions[counts.touchpoint_id] = self.versions.get(counts.touchpoint_id, 0) + 1
        if counts.period is Period.DAY:
            latest = self._latest.setdefault(counts.touchpoint_id, {})
            latest[scale] = max(latest.get(scale, number), number)

    def forget(self, key: str) -> bool:
        """Take out the bucket a tombstone names; False when it was not held."""
        try:
            parts = BucketKey.parse(key)
        except ValueError:
            return False
        by_scale = self.series.get(parts.touchpoint_id, {}).get((parts.dimension, parts.value), {})
        series = by_scale.get(parts.scale)
        if series is None:
            return False
        if series.by(parts.period).pop(_index(parts.period, parts.start), None) is None:
            return False
        self.versions[parts.touchpoint_id] = self.versions.get(parts.touchpoint_id, 0) + 1
        return True

    def scale(self, touchpoint_id: str) -> Scale | None:
        """Give the scale of the touchpoint's most recent day, None without history."""
        latest = self._latest.get(touchpoint_id)
        return max(latest, key=latest.__getitem__) if latest else None

    def groups(self, touchpoint_id: str) -> list[Group]:
        """List the groups the touchpoint has history in, the whole first."""
        groups = set(self.series.get(touchpoint_id, {}))
        return sorted(groups, key=lambda group: (group != ALL, group))

    def of(self, touchpoint_id: str, group: Group = ALL, scale: Scale | None = None) -> Series:
        """Give a series (an empty one when there is none), of the touchpoint's scale by default."""
        chosen = scale or self.scale(touchpoint_id) or Scale.CSAT_5
        found = self.series.get(touchpoint_id, {}).get(group, {}).get(chosen)
        return found if found is not None else Series(chosen)

    def days(
        self, touchpoint_id: str, first: date, last: date, group: Group = ALL
    ) -> list[tuple[date, Tally]]:
        """Each local day from ``first`` to ``last`` with its tally."""
        series = self.of(touchpoint_id, group)
        return [
            (date.fromordinal(number), total)
            for number, total in series.each(Period.DAY, first.toordinal(), last.toordinal())
        ]

    def hours(
        self, touchpoint_id: str, first: datetime, last: datetime, group: Group = ALL
    ) -> list[tuple[datetime, Tally]]:
        """Each UTC hour from the one holding ``first`` to the one holding ``last``."""
        series = self.of(touchpoint_id, group)
        return [
            (hour_start(number), total)
            for number, total in series.each(Period.HOUR, hour_number(first), hour_number(last))
        ]

    def total_days(self, touchpoint_id: str, first: date, last: date, group: Group = ALL) -> Tally:
        """Sum the local days from ``first`` to ``last``."""
        return self.of(touchpoint_id, group).tally(Period.DAY, first.toordinal(), last.toordinal())

    def total_hours(
        self, touchpoint_id: str, since: datetime, until: datetime, group: Group = ALL
    ) -> Tally:
        """Sum the UTC hours from the one holding ``since`` to the one before ``until``."""
        last = hour_number(until - timedelta(microseconds=1))
        return self.of(touchpoint_id, group).tally(Period.HOUR, hour_number(since), last)
