"""Operations tooling: a local Kafka broker for development and tests, and
the Prometheus, Alertmanager and Grafana material beside it."""
