"""The rolling figures of one metrics key, shared by the live stage and the rebuild.

The metrics stage and ``palaute metrics rebuild`` both feed ratings and sent
surveys into a :class:`Ledger` per key and ask it for figures, so the two can
only disagree if they were given different events.

A ledger remembers the latest revision counted per survey, which is what
makes a changed answer replace the old one and a replayed record change
nothing. Its clock is event time: ``as_of`` of the figures is the latest
answer (or send) time the key has seen, never the wall clock, so figures are
a function of the events alone and a rebuild gives the same ones as the live
path, whatever the order in which partitions were read. A key that goes quiet
keeps the figures of its last event; ``as_of`` says how old they are.
"""

from __future__ import annotations

import heapq
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

from engine.metrics import (
    DEFAULT_TIERS,
    DEFAULT_WINDOWS,
    MetricsState,
    apply_rating,
    apply_sent,
    expire,
    merge,
    new_state,
    rating_keys,
    snapshot,
    window_label,
)
from schemas.metrics import Dimension

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from schemas.metrics import TouchpointMetrics
    from schemas.responses import Rating


_TOUCHPOINT = Dimension.TOUCHPOINT.value + ":"
_Held = TypeVar("_Held")


def owner_key(dimension: Dimension, key: str) -> str:
    """Name a metrics key: ``touchpoint:tp-1``, ``channel:phone``, ``service:tax``."""
    return f"{dimension.value}:{key}"


def split_owner(owner: str) -> tuple[Dimension, str]:
    """Undo :func:`owner_key`."""
    dimension, _, key = owner.partition(":")
    return Dimension(dimension), key


def rating_owners(rating: Rating) -> list[str]:
    """List every key a rating counts towards: its touchpoint, channel and service."""
    return [owner_key(dimension, key) for dimension, key in rating_keys(rating)]


def rollup_owners(rating: Rating) -> list[str]:
    """List the roll-up keys a rating counts towards: its channel and service."""
    return [owner for owner in rating_owners(rating) if not owner.startswith(_TOUCHPOINT)]


def count_rollups(rating: Rating, ledger_of: Callable[[str], Ledger]) -> list[str]:
    """Count a rating its touchpoint's ledger took in its roll-ups' ledgers; give those it changed.

    Only a rating the touchpoint counted: a roll-up then holds exactly what
    its touchpoints hold, whether it is counted live in parts (the metrics
    stage) or in one ledger (the rebuild).
    """
    return [owner for owner in rollup_owners(rating) if ledger_of(owner).add_rating(rating)]


def record_key(owner: str, window: timedelta) -> str:
    """Key one window of one key as the metrics topic does: ``dimension:key:window``."""
    return f"{owner}:{window_label(window)}"


@dataclass(frozen=True)
class Pruned:
    """Survey ids a ledger forgot because no window reaches them any more."""

    ratings: tuple[str, ...]
    sent: tuple[str, ...]


class Ledger:
    """Counts of one key, and the latest revision counted per survey.

    Owned by one caller (a stage's partition, or the rebuild); its methods say
    what changed so the caller can persist exactly that.

    Pruning must not cost a scan of every survey: a roll-up's ledger holds
    every rating of its windows (28 days of a whole channel), and the stage
    prunes as it counts. So each survey's time also goes on a heap, and
    :meth:`prune` takes from its top only what has fallen out; an entry left
    behind by a revision with another time is passed over when it comes up.
    """

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.state: MetricsState | None = None
        self.ratings: dict[str, Rating] = {}
        self.sent: dict[str, datetime] = {}
        self.latest_at: datetime | None = None
        self._rating_times: list[tuple[datetime, str]] = []
        self._sent_times: list[tuple[datetime, str]] = []

    def _seen(self, at: datetime) -> None:
        if self.latest_at is None or at > self.latest_at:
            self.latest_at = at

    def add_rating(self, rating: Rating) -> bool:
        """Count a rating, replacing an earlier revision; False when nothing changed.

        The first rating fixes the key's scale; a rating on another scale (a
        touchpoint whose scale was reconfigured) is not counted here.
        """
        if self.state is None:
            self.state = new_state(rating.scale)
            for sent_at in self.sent.values():
                self.state = apply_sent(self.state, sent_at)
        previous = self.ratings.get(rating.survey_id)
        if rating.scale is not self.state.scale:
            return False
        if previous is not None and previous.revision >= rating.revision:
            return False
        self.state = apply_rating(self.state, rating, previous)
        self.ratings[rating.survey_id] = rating
        if previous is None or previous.answered_at != rating.answered_at:
            heapq.heappush(self._rating_times, (rating.answered_at, rating.survey_id))
        self._seen(rating.answered_at)
        return True

    def add_sent(self, survey_id: str, sent_at: datetime) -> bool:
        """Count a sent survey once; False for a repeat."""
        if survey_id in self.sent:
            return False
        self.sent[survey_id] = sent_at
        heapq.heappush(self._sent_times, (sent_at, survey_id))
        if self.state is not None:
            self.state = apply_sent(self.state, sent_at)
        self._seen(sent_at)
        return True

    def horizon(self) -> datetime | None:
        """Anything at or before this instant is outside every window."""
        if self.latest_at is None:
            return None
        tiers = self.state.tiers if self.state is not None else DEFAULT_TIERS
        return self.latest_at - timedelta(seconds=max(t.retention_seconds for t in tiers))

    def prune(self) -> Pruned:
        """Forget surveys older than every window, keeping the ledger bounded."""
        horizon = self.horizon()
        if horizon is None:
            return Pruned((), ())
        old_ratings = _take_until(
            self._rating_times, horizon, self.ratings, lambda rating: rating.answered_at
        )
        old_sent = _take_until(self._sent_times, horizon, self.sent, lambda at: at)
        if self.state is not None and self.latest_at is not None:
            self.state = expire(self.state, self.latest_at)
        return Pruned(old_ratings, old_sent)

    def figures(self, windows: Iterable[timedelta] = DEFAULT_WINDOWS) -> list[TouchpointMetrics]:
        """Figures of every window as of the latest event; none before the first rating."""
        if self.state is None or self.latest_at is None:
            return []
        dimension, key = split_owner(self.owner)
        state = expire(self.state, self.latest_at)
        return [
            snapshot(state, window, self.latest_at, key=key, dimension=dimension)
            for window in windows
        ]


def _take_until(
    times: list[tuple[datetime, str]],
    horizon: datetime,
    by_survey: dict[str, _Held],
    time_of: Callable[[_Held], datetime],
) -> tuple[str, ...]:
    """Remove from ``by_survey`` the surveys whose time is at or before ``horizon``.

    ``times`` is a heap of every survey's time, and of times a survey had
    before a revision moved it: such an entry, and one of a survey already
    removed, is dropped without removing anything.
    """
    taken: list[str] = []
    while times and times[0][0] <= horizon:
        at, survey_id = heapq.heappop(times)
        held = by_survey.get(survey_id)
        if held is not None and time_of(held) == at:
            del by_survey[survey_id]
            taken.append(survey_id)
    return tuple(taken)


@dataclass(frozen=True)
class Part:
    """What one partition counted of a roll-up: its state and its latest event time.

    Parts hold disjoint ratings (all revisions of a survey share a touchpoint,
    so a partition), and :func:`combined` adds them up.
    """

    state: MetricsState
    latest_at: datetime

    @classmethod
    def of(cls, ledger: Ledger) -> Part | None:
        """Take a ledger's part, none before its first rating; expired buckets are left out."""
        if ledger.state is None or ledger.latest_at is None:
            return None
        return cls(expire(ledger.state, ledger.latest_at), ledger.latest_at)

    def dumps(self) -> str:
        """Serialise for the combining stage's topic and table."""
        return json.dumps({"latest_at": self.latest_at.isoformat(), "state": self.state.to_dict()})

    @classmethod
    def loads(cls, raw: str | bytes) -> Part:
        """Undo :meth:`dumps`."""
        value = json.loads(raw)
        return cls(
            MetricsState.from_dict(value["state"]), datetime.fromisoformat(value["latest_at"])
        )


def combined(owner: str, parts: Iterable[Part]) -> Ledger:
    """Give a ledger whose figures are those of all the parts together.

    It holds the summed counts only, not the surveys behind them: it is for
    :meth:`Ledger.figures`, not for counting.
    """
    chosen = list(parts)
    ledger = Ledger(owner)
    ledger.state = merge(part.state for part in chosen)
    ledger.latest_at = max((part.latest_at for part in chosen), default=None)
    return ledger


def recompute(
    ratings: Iterable[Rating],
    sent: Iterable[tuple[str, str, datetime]] = (),
    windows: Iterable[timedelta] = DEFAULT_WINDOWS,
) -> dict[str, TouchpointMetrics]:
    """Figures of every key from scratch, keyed as the metrics topic keys them.

    ``sent`` holds ``(touchpoint_id, survey_id, sent_at)``: sends are counted
    per touchpoint only, as SurveySent names no channel or service.
    """
    ledgers: dict[str, Ledger] = {}
    for rating in ratings:
        touchpoint = owner_key(Dimension.TOUCHPOINT, rating.touchpoint_id)
        if ledgers.setdefault(touchpoint, Ledger(touchpoint)).add_rating(rating):
            count_rollups(rating, lambda owner: ledgers.setdefault(owner, Ledger(owner)))
    for touchpoint_id, survey_id, sent_at in sent:
        owner = owner_key(Dimension.TOUCHPOINT, touchpoint_id)
        ledgers.setdefault(owner, Ledger(owner)).add_sent(survey_id, sent_at)
    chosen = tuple(windows)
    return {
        f"{owner}:{figures.window}": figures
        for owner, ledger in ledgers.items()
        for figures in ledger.figures(chosen)
    }
