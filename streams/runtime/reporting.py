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
