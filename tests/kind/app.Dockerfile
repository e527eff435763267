# A do-nothing test workload for the kind path: the e2e tests roll out ramp-test/app:v1,
# :v2 and :v3; on kind a real kubelet must find each tag locally (they are `kind load`ed).
# On the local kwok cluster no image is ever pulled and this file is not used.
ARG BASE=python:3.12-slim-bookworm
FROM ${BASE}
ARG VERSION=v1
ENV APP_VERSION=${VERSION}
USER 65532:65532
ENTRYPOINT ["python", "-c", "import signal, time; signal.signal(signal.SIGTERM, lambda *a: exit(0)); time.sleep(10**9)"]
