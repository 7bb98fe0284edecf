"""Daily and hourly counts per touchpoint and group, shared by the live stage and the rebuild.

A rating is counted in the day (the policy time zone's calendar day) and
the UTC hour of its ``answered_at``, once in every group
:func:`engine.breakdowns.groups_of` gives it. A later revision of the same
survey replaces the earlier one: the earlier one's score is taken back from
the buckets it was counted in (its own day, hour and groups) and the new one
added, so a changed answer is counted once. What is remembered of a counted
rating to do so is a :class:`Counted`, kept for :data:`ANSWERS_KEPT` (a
survey cannot be answered for longer).

A sent survey is counted once per survey id, in the ``all/all`` group and
its channel's group (the only groups a send can name), so the response rate
of a day is its answers over its sends.

Counts are integers per score, so they add up in any order: a week is the
sum of its days, and :mod:`engine.history_figures` computes means, shares
and intervals from them when they are read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

from engine.breakdowns import ALL, NOTHING_LISTED, groups_of
from schemas.base import Scale
from schemas.history import HistoryCounts, Period, history_key

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from zoneinfo import ZoneInfo

    from schemas.config_console import BreakdownsConfig
    from schemas.responses import Rating

Group = tuple[str, str]

#: Daily buckets are kept for 13 months and a few days more.
DAYS_KEPT: Final = timedelta(days=400)
#: Hourly buckets are kept for the 7-day chart and the 7 days before it.
HOURS_KEPT: Final = timedelta(days=15)
#: A counted rating is remembered this long after its answer: longer than a survey lives.
ANSWERS_KEPT: Final = timedelta(days=35)


def day_of(at: datetime, zone: ZoneInfo) -> str:
    """Name the calendar day of an instant in the policy time zone: ``2026-12-07``."""
    return at.astimezone(zone).date().isoformat()


def hour_of(at: datetime) -> str:
    """Name the UTC hour of an instant: ``2026-12-07T13``."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H")


def start_of(period: Period, start: str, zone: ZoneInfo) -> datetime:
    """Give the instant a bucket begins (a day at local midnight, an hour in UTC)."""
    if period is Period.HOUR:
        return datetime.strptime(start, "%Y-%m-%dT%H").replace(tzinfo=UTC)
    return datetime.fromisoformat(start).replace(tzinfo=zone)


def bucket_keys(
    touchpoint_id: str, groups: Iterable[Group], scale: Scale, at: datetime, zone: ZoneInfo
) -> list[str]:
    """Every bucket an event at ``at`` is counted in: its day and its hour, in each group."""
    day, hour = day_of(at, zone), hour_of(at)
    return [
        history_key(touchpoint_id, dimension, value, scale, period, start)
        for dimension, value in groups
        for period, start in ((Period.DAY, day), (Period.HOUR, hour))
    ]


@dataclass(frozen=True, slots=True)
class BucketKey:
    """A history key taken apart."""

    touchpoint_id: str
    dimension: str
    value: str
    scale: Scale
    period: Period
    start: str

    @classmethod
    def parse(cls, key: str) -> BucketKey:
        """Undo :func:`schemas.history.history_key` (raises ValueError on a malformed key)."""
        touchpoint_id, dimension, value, scale, period, start = key.split("|")
        return cls(touchpoint_id, dimension, value, Scale(scale), Period(period), start)


@dataclass(frozen=True, slots=True)
class Counted:
    """What is remembered of a counted rating, to take it back when a revision replaces it."""

    revision: int
    score: int
    scale: Scale
    touchpoint_id: str
    answered_at: datetime
    groups: tuple[Group, ...]

    @classmethod
    def of(cls, rating: Rating, breakdowns: BreakdownsConfig = NOTHING_LISTED) -> Counted:
        """Remember a rating as it is counted, in the groups ``[breakdowns]`` gives it."""
        return cls(
            rating.revision,
            rating.score,
            rating.scale,
            rating.touchpoint_id,
            rating.answered_at,
            groups_of(rating, breakdowns),
        )

    def keys(self, zone: ZoneInfo) -> list[str]:
        """Give the buckets this rating is counted in."""
        return bucket_keys(self.touchpoint_id, self.groups, self.scale, self.answered_at, zone)

    def dumps(self) -> str:
        """Serialise compactly for the stage's table."""
        return json.dumps(
            [
                self.revision,
                self.score,
                self.scale.value,
                self.touchpoint_id,
                self.answered_at.timestamp(),
                [list(group) for group in self.groups],
            ],
            separators=(",", ":"),
        )

    @classmethod
    def loads(cls, raw: str) -> Counted:
        """Undo :meth:`dumps`."""
        revision, score, scale, touchpoint_id, at, groups = json.loads(raw)
        return cls(
            int(revision),
            int(score),
            Scale(scale),
            str(touchpoint_id),
            datetime.fromtimestamp(float(at), UTC),
            tuple((str(d), str(v)) for d, v in groups),
        )


#: One change to one bucket: (bucket key, score, +1 or -1); a score of None is a send.
Change = tuple[str, int | None, int]


def rating_changes(
    previous: Counted | None,
    rating: Rating,
    zone: ZoneInfo,
    breakdowns: BreakdownsConfig = NOTHING_LISTED,
) -> tuple[Counted, list[Change]] | None:
    """Count a rating, taking back the revision it replaces; None for a replay.

    ``previous`` is what is remembered of the survey's counted rating, if any.
    An older revision changes nothing, nor does the same revision again (a
    replay; a second record of one revision with another score loses to the
    first, as in the metrics) unless it is the same rating now counted in
    other groups: the groups were redefined and ``palaute metrics rebuild``
    feeds the rating again.
    """
    counted = Counted.of(rating, breakdowns)
    if previous is not None and previous.revision > rating.revision:
        return None
    if previous is not None and previous.revision == rating.revision:
        # The first record of a revision counts, as in the metrics; the same rating
        # again moves only if its groups were redefined since.
        regrouped = previous.groups != counted.groups
        same = (previous.score, previous.answered_at) == (counted.score, counted.answered_at)
        if not (regrouped and same):
            return None
    changes: list[Change] = []
    if previous is not None:
        changes += [(key, previous.score, -1) for key in previous.keys(zone)]
    changes += [(key, counted.score, 1) for key in counted.keys(zone)]
    return counted, changes


def sent_changes(
    touchpoint_id: str, channel: str, scale: Scale, sent_at: datetime, zone: ZoneInfo
) -> list[Change]:
    """Count one sent survey in the whole touchpoint and its channel's group."""
    groups = (ALL, ("channel", channel))
    return [(key, None, 1) for key in bucket_keys(touchpoint_id, groups, scale, sent_at, zone)]


@dataclass
class Counts:
    """One bucket's counts: answers per score and surveys sent."""

    scores: dict[int, int] = field(default_factory=dict)
    sent: int = 0

    def apply(self, score: int | None, delta: int) -> None:
        """Add one change (a score of None is a send); a count never goes below zero."""
        if score is None:
            self.sent = max(0, self.sent + delta)
            return
        count = self.scores.get(score, 0) + delta
        if count > 0:
            self.scores[score] = count
        else:
            self.scores.pop(score, None)

    def is_empty(self) -> bool:
        """Tell whether the bucket holds nothing (its record can be removed)."""
        return not self.scores and not self.sent

    def dumps(self) -> str:
        """Serialise compactly for the stage's table."""
        return json.dumps([self.sent, self.scores], separators=(",", ":"))

    @classmethod
    def loads(cls, raw: str) -> Counts:
        """Undo :meth:`dumps`."""
        sent, scores = json.loads(raw)
        return cls({int(score): int(n) for score, n in scores.items()}, int(sent))

    def record(self, key: str) -> HistoryCounts:
        """Give the bucket as the history topic holds it."""
        parts = BucketKey.parse(key)
        return HistoryCounts(
            touchpoint_id=parts.touchpoint_id,
            dimension=parts.dimension,
            value=parts.value,
            scale=parts.scale,
            period=parts.period,
            start=parts.start,
            scores={str(score): n for score, n in sorted(self.scores.items())},
            sent=self.sent,
        )


def kept_after(period: Period, latest: datetime) -> datetime:
    """Buckets of ``period`` that begin before this are no longer kept."""
    return latest - (HOURS_KEPT if period is Period.HOUR else DAYS_KEPT)


def recount(
    ratings: Iterable[Rating],
    sends: Iterable[tuple[str, str, str, datetime]],
    zone: ZoneInfo,
    scale_of: Callable[[str], Scale],
    *,
    now: datetime,
    breakdowns: BreakdownsConfig = NOTHING_LISTED,
) -> dict[str, Counts]:
    """Every bucket from scratch, as the live stage counts them (for ``metrics rebuild``).

    ``sends`` holds ``(touchpoint_id, survey_id, channel, sent_at)``;
    ``scale_of`` names a touchpoint's configured scale (a send names none).
    Buckets older than they are kept (as of ``now``) are left out.
    """
    counts: dict[str, Counts] = {}
    remembered: dict[str, Counted] = {}

    def apply(changes: Iterable[Change]) -> None:
        for key, score, delta in changes:
            counts.setdefault(key, Counts()).apply(score, delta)

    for rating in ratings:
        changed = rating_changes(remembered.get(rating.survey_id), rating, zone, breakdowns)
        if changed is not None:
            remembered[rating.survey_id], changes = changed
            apply(changes)
    seen: set[str] = set()
    for touchpoint_id, survey_id, channel, sent_at in sends:
        if survey_id not in seen:
            seen.add(survey_id)
            apply(sent_changes(touchpoint_id, channel, scale_of(touchpoint_id), sent_at, zone))
    kept: dict[str, Counts] = {}
    for key, bucket in counts.items():
        parts = BucketKey.parse(key)
        if bucket.is_empty():
            continue
        if start_of(parts.period, parts.start, zone) < kept_after(parts.period, now):
            continue
        kept[key] = bucket
    return kept
