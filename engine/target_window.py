"""The counts the target checks need, kept beside a touchpoint's drop detector.

The CSAT target check (:func:`engine.detection.target_verdict`) asks how many
answers of the last week were in the top two boxes; the KPI check
(:func:`engine.detection.kpi_verdict`) needs the count, sum and sum of
squares of their KPI values. The detector stage keeps both in hourly buckets
of event time, small enough to store with the detector's state after every
rating, and turns them into a :class:`~engine.detection.Tick` after each one.

Every answer counts, as in the drop detector: a changed answer counts again.
That is the detector's view (how answers arrive), not the reported figures,
which count each survey once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.detection import KpiWindow, Tick, kpi_value

if TYPE_CHECKING:
    from collections.abc import Mapping

    from schemas.responses import Rating

#: The target window: the last seven days of answers, in hours.
TARGET_WINDOW_HOURS = 7 * 24
_HOUR = 3_600

#: Hour (epoch seconds // 3600, as text for JSON) -> [answers, answers in the top two
#: boxes, answers with a KPI value, sum of KPI values, sum of their squares]. Buckets
#: stored before the KPI was counted have the first two only.
TargetBuckets = dict[str, list[float]]
_KPI_FIELDS = 5


def count_answer(buckets: Mapping[str, list[float]], rating: Rating) -> tuple[TargetBuckets, Tick]:
    """Add one answer; return the buckets still inside the window and the tick to feed."""
    hour = int(rating.answered_at.timestamp()) // _HOUR
    stored = list(buckets.get(str(hour), []))
    rated, top_two, kpi_n, kpi_sum, kpi_sq = [*stored, 0, 0, 0, 0, 0][:_KPI_FIELDS]
    is_top = rating.score >= rating.scale.high - 1
    kpi = kpi_value(rating.scale, rating.score)
    bucket = [rated + 1, top_two + int(is_top), kpi_n + 1, kpi_sum + kpi, kpi_sq + kpi * kpi]
    updated = {**buckets, str(hour): bucket}
    latest = max(int(key) for key in updated)
    kept = {key: value for key, value in updated.items() if int(key) > latest - TARGET_WINDOW_HOURS}
    full = [value for value in kept.values() if len(value) >= _KPI_FIELDS]
    tick = Tick(
        rated=int(sum(value[0] for value in kept.values())),
        top_two=int(sum(value[1] for value in kept.values())),
        kpi=KpiWindow(
            n=int(sum(value[2] for value in full)),
            total=sum(value[3] for value in full),
            total_sq=sum(value[4] for value in full),
        ),
    )
    return kept, tick
