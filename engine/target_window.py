"""The counts a target-breach check needs, kept beside a touchpoint's drop detector.

The target check (:func:`engine.detection.target_verdict`) asks how many
answers of the last week were in the top two boxes. The detector stage keeps
that in hourly buckets of event time, small enough to store with the
detector's state after every rating, and turns it into a
:class:`~engine.detection.Tick` after each one.

Every answer counts, as in the drop detector: a changed answer counts again.
That is the detector's view (how answers arrive), not the reported figures,
which count each survey once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.detection import Tick

if TYPE_CHECKING:
    from collections.abc import Mapping

    from schemas.responses import Rating

#: The target window: the last seven days of answers, in hours.
TARGET_WINDOW_HOURS = 7 * 24
_HOUR = 3_600

#: Hour (epoch seconds // 3600, as text for JSON) -> [answers, answers in the top two boxes].
TargetBuckets = dict[str, list[int]]


def count_answer(buckets: Mapping[str, list[int]], rating: Rating) -> tuple[TargetBuckets, Tick]:
    """Add one answer; return the buckets still inside the window and the tick to feed."""
    hour = int(rating.answered_at.timestamp()) // _HOUR
    rated, top_two = buckets.get(str(hour), [0, 0])
    is_top = rating.score >= rating.scale.high - 1
    updated = {**buckets, str(hour): [rated + 1, top_two + int(is_top)]}
    latest = max(int(key) for key in updated)
    kept = {key: value for key, value in updated.items() if int(key) > latest - TARGET_WINDOW_HOURS}
    tick = Tick(
        rated=sum(value[0] for value in kept.values()),
        top_two=sum(value[1] for value in kept.values()),
    )
    return kept, tick
