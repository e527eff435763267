# The Ramp operator image.
#
# Stage 1 builds the wheel of this repository and fetches the wheels of all its dependencies,
# exactly those of requirements.lock, each checked against its hash (pip --require-hashes,
# wheels only: no build step of a dependency runs unchecked code).
# Stage 2 installs them, offline, into a slim Python runtime that:
#   - runs as a numeric non-root user (65532), so `runAsNonRoot` can verify it;
#   - writes nothing outside /tmp (bytecode is compiled at build time, HOME is /tmp),
#     so it runs with `readOnlyRootFilesystem: true` and an emptyDir on /tmp;
#   - starts the operator as its entry point: arguments go after the image name
#     (`docker run IMAGE --namespace shop`), and `--help` lists them;
#   - carries its SBOM (CycloneDX 1.5: every Python distribution with its wheel's SHA-256,
#     every Debian package of the base) at /usr/local/share/ramp/sbom.cdx.json.
#
# Build: `make image` (podman; see docs/install.md), or docker build -t ramp/ramp-operator:dev .
# No `# syntax=` line: `RUN --mount` needs no frontend image on current Docker, and pulling
# one would need a registry. A machine behind a TLS-intercepting proxy passes its CA bundle
# as the build secret `host-ca` (`--secret id=host-ca,src=...`): pip uses it in the RUN
# step that downloads, and it never lands in a layer.

ARG PYTHON_IMAGE=python:3.12-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md requirements.lock ./
COPY operator/ ./operator/
RUN --mount=type=secret,id=host-ca \
    if [ -s /run/secrets/host-ca ]; then export PIP_CERT=/run/secrets/host-ca; fi \
    && python -m pip download --require-hashes --only-binary=:all: --dest /wheels \
       -r requirements.lock \
    && python -m pip wheel --no-deps --wheel-dir /wheels . \
    && sha256sum /wheels/*.whl > /wheels/SHA256SUMS

FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    RAMP_METRICS_BIND_ADDRESS=0.0.0.0 \
    RAMP_LOG_FORMAT=json
# The wheels' digests, copied first: a layer cache that keys a RUN step by its text alone
# (buildah's) would otherwise reuse an old install when only the mounted wheels changed.
COPY --from=build /wheels/SHA256SUMS /usr/local/share/ramp/wheels.sha256
# The kubernetes client ships an asyncio copy of itself (kubernetes/aio, ~70 MB with its
# bytecode) that Ramp never imports: it is removed, and the entry point must still start.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    --mount=type=bind,source=tools/sbom.py,target=/tmp/sbom.py \
    python -m pip install --no-index --find-links=/wheels --compile /wheels/ramp_operator-*.whl \
    && rm -rf "$(python -c 'import kubernetes, os; print(os.path.dirname(kubernetes.__file__))')/aio" \
    && ramp-operator --help > /dev/null \
    && python /tmp/sbom.py /wheels/SHA256SUMS > /usr/local/share/ramp/sbom.cdx.json
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["ramp-operator"]
