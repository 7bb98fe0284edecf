# Palaute's image: one image, two commands.
#   docker run IMAGE worker --config /etc/palaute/palaute.toml
#   docker run IMAGE web --config /etc/palaute/palaute.toml --host 0.0.0.0 --port 8080
# docker-compose.yml and ops/kubernetes/ run it this way; docs/deployment.md
# explains the configuration and the secrets it expects.
FROM python:3.11.13-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A fixed, non-root uid, so that Kubernetes' runAsNonRoot can check it and
# volumes can be prepared for it. Its home holds the worker's table stores.
RUN groupadd --system --gid 10001 palaute \
    && useradd --system --uid 10001 --gid palaute --home-dir /var/lib/palaute \
       --create-home --shell /usr/sbin/nologin palaute

WORKDIR /opt/palaute
# Only what `pip install .` needs: the project file and the packages it lists.
COPY pyproject.toml README.md LICENSE ./
COPY palaute ./palaute
COPY engine ./engine
COPY connectors ./connectors
COPY streams ./streams
COPY schemas ./schemas
COPY ops ./ops
RUN pip install . && rm -rf /opt/palaute/build

USER 10001:10001
WORKDIR /var/lib/palaute

# 8080: palaute web. 6066: the worker's web server ([streams] web_port).
EXPOSE 8080 6066

# For the web service. Worker containers turn it off (docker-compose.yml does).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status != 200)"]

ENTRYPOINT ["palaute"]
CMD ["--help"]
