"""Fixtures of the fault tests: the run's seed, a generator per test, which topics a run makes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.faults.harness import RUN_TOPICS, TRIALS, base_seed, trial_rng

if TYPE_CHECKING:
    import random

    from tests.fixtures import RunTopics

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
def run_topics() -> RunTopics:
    """Have ``run_suffix`` create every stage-internal topic too, as the fault runs need."""
    return RUN_TOPICS
