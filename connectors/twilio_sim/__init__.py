"""A local simulator of Twilio's Messages API, for tests and the demo.

Nothing that talks to it knows it is a simulator: the real twilio client is
pointed at :attr:`TwilioSimulator.url` through its ``http_client``.
"""

from connectors.twilio_sim.faults import Fault, FaultMode
from connectors.twilio_sim.server import (
    CallbackAttempt,
    InboundDelivery,
    RecordedExchange,
    SimulatorConfig,
    TwilioSimulator,
)

__all__ = [
    "CallbackAttempt",
    "Fault",
    "FaultMode",
    "InboundDelivery",
    "RecordedExchange",
    "SimulatorConfig",
    "TwilioSimulator",
]
