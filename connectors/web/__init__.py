"""The web service: HTTP event ingress, health and metrics (``palaute web``)."""

from connectors.web.app import create_web_app

__all__ = ["create_web_app"]
