# syntax=docker/dockerfile:1
# The Ramp operator image.
#
# Stage 1 builds the wheel of this repository and wheels of all its dependencies.
# Stage 2 installs them, offline, into a slim Python runtime that:
#   - runs as a numeric non-root user (65532), so `runAsNonRoot` can verify it;
#   - writes nothing outside /tmp (bytecode is compiled at build time, HOME is /tmp),
#     so it runs with `readOnlyRootFilesystem: true` and an emptyDir on /tmp;
#   - starts the operator as its entry point: arguments go after the image name
#     (`docker run IMAGE --namespace shop`), and `--help` lists them.
# Build: docker build -t ramp/ramp-operator:dev .   (see docs/kind.md)

ARG PYTHON_IMAGE=python:3.12-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator/ ./operator/
RUN python -m pip wheel --wheel-dir /wheels .

FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    RAMP_METRICS_BIND_ADDRESS=0.0.0.0 \
    RAMP_LOG_FORMAT=json
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m pip install --no-index --find-links=/wheels --compile /wheels/ramp_operator-*.whl \
    && ramp-operator --help > /dev/null
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["ramp-operator"]
