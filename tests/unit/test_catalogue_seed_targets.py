"""A CSAT target for a touchpoint with no entry of its own survives seeding the topic."""

from __future__ import annotations

from datetime import UTC, datetime

from connectors.catalogue import seed_change
from engine.catalogue import CatalogueLog
from schemas.config import Settings


def test_a_target_without_a_touchpoint_entry_is_in_force_after_the_seed() -> None:
    settings = Settings.model_validate(
        {
            "secrets": {"pseudonymisation_key": "k" * 40, "link_signing_key": "l" * 40},
            "alerts": {"csat_targets": {"tp-targeted": 0.8}},
        }
    )
    log = CatalogueLog()
    log.apply(seed_change(settings, datetime(2026, 12, 8, tzinfo=UTC)), 1)
    assert log.catalogue is not None
    assert dict(log.catalogue.csat_targets) == {"tp-targeted": 0.8}
