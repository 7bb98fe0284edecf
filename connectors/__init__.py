"""Thin adapters to the outside world: Twilio, SMTP, HTTP ingress, notifiers."""
