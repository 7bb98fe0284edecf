"""Palaute: an event-driven feedback collection engine.

The importable packages follow the design card: ``schemas`` (contracts),
``engine`` (pure decisions), ``connectors`` (the outside world), ``streams``
(the faust-streaming wiring) and ``ops`` (local Kafka and operations tooling).
This package holds only the command line that ties them together.
"""

__version__ = "0.1.0"
