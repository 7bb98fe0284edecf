"""Fixtures of the fault tests: the run's seed, a generator per test, and each run's topics."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from tests.faults.harness import TRIALS, base_seed, create_run_topics, delete_run_topics, trial_rng

if TYPE_CHECKING:
    import random
    from collections.abc import Iterator

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def fault_seed() -> int:
    """One seed for the whole run; ``PALAUTE_FAULT_SEED`` replays it."""
    return base_seed()


@pytest.fixture
def rng(fault_seed: int, request: pytest.FixtureRequest) -> random.Random:
    """Give this test's generator of kill points and traffic, printing the seed for a replay."""
    print(  # noqa: T201 - shown with a failure, so the run can be replayed
        f"fault seed: PALAUTE_FAULT_SEED={fault_seed} PALAUTE_FAULT_TRIALS={TRIALS} "
        f"({request.node.name})"
    )
    return trial_rng(fault_seed, request.node.name)


@pytest.fixture
def run_suffix(kafka_bootstrap: str) -> Iterator[str]:
    """Give this run's topic suffix; delete all its topics afterwards."""
    suffix = create_run_topics(kafka_bootstrap)
    yield suffix
    asyncio.run(delete_run_topics(kafka_bootstrap, suffix))
