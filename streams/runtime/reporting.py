"""What a committed batch tells the worker's telemetry, the same on every Kafka runtime."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from connectors import telemetry

if TYPE_CHECKING:
    from collections.abc import Callable

    from streams.runtime.checkpoint import Checkpoint


def report_checkpoint(checkpoint: Checkpoint, observe: Callable[[Any], None]) -> None:
    """Count the batch's dead letters under the label of the stage that set each aside."""
    for _record, rejection, _error_class, whose in checkpoint.rejections:
        label = telemetry.Stage(whose)
        telemetry.record_dead_letter(label, rejection.code)
        telemetry.count_event(label, telemetry.Outcome.DEAD_LETTERED)
    for observation in checkpoint.observations:
        observe(observation)


def retry_counter(label: str) -> Callable[[str], None]:
    """Count each attempt at a batch again under the stage's label and the error's class."""
    stage = telemetry.Stage(label) if label in telemetry.Stage.__members__.values() else None

    def count(error_class: str) -> None:
        if stage is not None:
            telemetry.record_stage_retry(stage, error_class)

    return count
