# syntax=docker/dockerfile:1
#
# The identity broker's container image.
#
#   docker build -t broker:dev \
#     --build-arg VERSION=0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" .
#   docker run --read-only --tmpfs /tmp -v "$PWD/deploy:/etc/broker:ro" -p 8080:8080 broker:dev
#
# Two stages: `builder` turns the project and every dependency into wheels and installs
# them into a virtualenv at /opt/venv; the final stage copies only that virtualenv onto a
# clean python:3.11-slim. No compiler, pip cache or source tree reaches the final image.
#
# Runtime contract (see docs/operations.md):
#   /etc/broker/broker.yaml   configuration (read-only mount)
#   /etc/broker/keys/         signing keys, one private JWK per *.json file (read-only mount)
#   /etc/broker/bankid/       BankID RP certificate (PKCS#12) when BankID is used
#   /tmp, /var/lib/broker     the only writable paths; the root filesystem can be read-only
#   8080                      HTTP (OIDC endpoints, /healthz, /readyz)
#   9100                      Prometheus /metrics (setting metrics.port)

# Both stages must use the same interpreter: the virtualenv links to /usr/local/bin/python3.11.
# Pin a digest here (python:3.11-slim@sha256:...) for fully reproducible builds.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src

# Every runtime dependency ships manylinux wheels for CPython 3.11 (amd64 and arm64), so the
# builder needs no compiler. Should one ever need building from source, install
# build-essential here, in this stage only.
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

COPY pyproject.toml README.md ./
COPY broker ./broker

# Build wheels for the project and all its dependencies, then install only from them.
RUN pip wheel --wheel-dir /wheels . \
    && pip install --no-index --find-links /wheels /wheels/*.whl \
    && python -m compileall -q /opt/venv \
    && broker --help > /dev/null

# ---------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown

LABEL org.opencontainers.image.title="broker" \
      org.opencontainers.image.description="OpenID Connect identity broker for Swedish municipal care (BankID, SITHS)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="NOASSERTION" \
      org.opencontainers.image.base.name="python:3.11-slim"

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONFAULTHANDLER=1 \
    TMPDIR=/tmp \
    HOME=/var/lib/broker

# A fixed, unprivileged UID/GID so Kubernetes securityContext (runAsUser/fsGroup) and
# file ownership on mounted volumes can name it.
RUN groupadd --system --gid 10001 broker \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /var/lib/broker --shell /usr/sbin/nologin broker \
    && mkdir -p /etc/broker/keys /etc/broker/bankid /var/lib/broker \
    && chown 10001:10001 /var/lib/broker \
    && chmod 0750 /var/lib/broker

COPY --from=builder /opt/venv /opt/venv

USER 10001:10001
WORKDIR /var/lib/broker

# Writable scratch space; mount emptyDir/tmpfs here when the root filesystem is read-only.
VOLUME ["/tmp", "/var/lib/broker"]

EXPOSE 8080 9100

# Plain python: the slim image has no curl or wget.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status == 200 else 1)"]

ENTRYPOINT ["broker"]
CMD ["serve", "--config", "/etc/broker/broker.yaml", "--host", "0.0.0.0", "--port", "8080"]
