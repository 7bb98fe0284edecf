"""The worker's collector settings: start-up objects frozen, the young collected less often."""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING

import pytest

from palaute.commands.worker import GC_YOUNG_THRESHOLD, tune_garbage_collector

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def collector() -> Iterator[None]:
    """Give the test process its own collector settings back afterwards."""
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("collector")
def test_the_worker_freezes_what_exists_and_collects_young_objects_less_often() -> None:
    """Objects alive at start-up leave every collection; new ones are still collected."""
    before = gc.get_freeze_count()
    tune_garbage_collector()
    assert gc.get_threshold()[0] == GC_YOUNG_THRESHOLD > 700  # CPython's default: 700
    assert gc.get_freeze_count() > before
    cycle: list[object] = []
    cycle.append(cycle)
    del cycle
    assert gc.collect() >= 1
