"""The root error of every adapter to an outside system.

Each connector maps its vendor's failures onto subclasses through one table
and says whether sending the same request again can succeed; the caller (the
dispatcher) owns retries and backoff, so adapters never retry by themselves.
"""

from __future__ import annotations


class ConnectorError(Exception):
    """An outside system failed; ``retriable`` tells whether trying again may help."""

    retriable: bool = False
