"""Operations tooling: a local Kafka broker, alert rules and dashboards.

The Python side manages a real broker for development and tests; the folders
beside it hold the Prometheus, Alertmanager and Grafana material.
"""
