#!/usr/bin/env bash
# `make kind-e2e`: the end-to-end suite against a kind cluster, with the operator image
# built from the Dockerfile, loaded into kind and installed by the Helm chart.
#
# Needs a Docker engine, `kind`, `kubectl` and `helm` on PATH. It cannot run on the
# project's own machines (no Docker engine there); see docs/kind.md for what it does and
# what is known to differ from the local kwok cluster.
set -euo pipefail
cd "$(dirname "$0")/../.."

CLUSTER=${KIND_CLUSTER:-ramp-e2e}
IMAGE_REPO=${RAMP_IMAGE_REPO:-ramp/ramp-operator}
IMAGE_TAG=${RAMP_IMAGE_TAG:-dev}
NAMESPACE=${RAMP_NAMESPACE:-ramp-system}
STATE=.kind
KUBECONFIG_FILE=$STATE/kubeconfig
VENV=${VENV:-.venv}

for tool in docker kind kubectl helm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "kind-e2e: '$tool' is not on PATH; this target needs a Docker engine, kind, kubectl and helm (docs/kind.md)" >&2
    exit 2
  fi
done
if ! docker info >/dev/null 2>&1; then
  echo "kind-e2e: no Docker engine answers ('docker info' failed); see docs/kind.md" >&2
  exit 2
fi

mkdir -p "$STATE"
if ! kind get clusters | grep -qx "$CLUSTER"; then
  kind create cluster --name "$CLUSTER" --wait 180s
fi
kind get kubeconfig --name "$CLUSTER" > "$KUBECONFIG_FILE"
export KUBECONFIG=$PWD/$KUBECONFIG_FILE

echo "kind-e2e: building $IMAGE_REPO:$IMAGE_TAG and the test workload images"
docker build -t "$IMAGE_REPO:$IMAGE_TAG" .
for v in v1 v2 v3; do
  docker build -t "ramp-test/app:$v" --build-arg VERSION=$v -f tests/kind/app.Dockerfile tests/kind
done
kind load docker-image --name "$CLUSTER" "$IMAGE_REPO:$IMAGE_TAG" ramp-test/app:v1 ramp-test/app:v2 ramp-test/app:v3

# The chart's operator watches only its own namespace here: the e2e suite runs its own
# operator on the t-* namespaces, and two operators must never act on one Rollout.
echo "kind-e2e: installing the chart into $NAMESPACE"
kubectl create namespace "$NAMESPACE" --dry-run=client -o yaml | kubectl apply -f -
kubectl label namespace "$NAMESPACE" --overwrite pod-security.kubernetes.io/enforce=restricted
kubectl apply --server-side --force-conflicts -f charts/ramp/crds/
helm upgrade --install ramp charts/ramp --namespace "$NAMESPACE" \
  --set image.repository="$IMAGE_REPO" --set image.tag="$IMAGE_TAG" --set image.pullPolicy=Never \
  --set scope=namespace --set replicaCount=2 --wait --timeout 5m
kubectl -n "$NAMESPACE" rollout status deployment/ramp --timeout 120s
kubectl -n "$NAMESPACE" get lease ramp -o jsonpath='kind-e2e: Lease held by {.spec.holderIdentity}{"\n"}'

echo "kind-e2e: a canary driven by the in-cluster operator (image v1 -> v2)"
kubectl -n "$NAMESPACE" apply -f - <<'YAML'
apiVersion: ramp.dev/v1alpha1
kind: Rollout
metadata: {name: kind-smoke}
spec:
  replicas: 4
  selector: {matchLabels: {app: kind-smoke}}
  template:
    metadata: {labels: {app: kind-smoke}}
    spec:
      securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
      containers:
        - name: app
          image: ramp-test/app:v1
          imagePullPolicy: Never
          securityContext:
            allowPrivilegeEscalation: false
            capabilities: {drop: [ALL]}
  strategy:
    canary:
      steps: [{setWeight: 25}, {pause: {duration: 5s}}, {setWeight: 100}]
YAML
kubectl -n "$NAMESPACE" wait --for=condition=Healthy rollout.ramp.dev/kind-smoke --timeout 180s
old=$(kubectl -n "$NAMESPACE" get rollout.ramp.dev/kind-smoke -o jsonpath='{.status.stableRevision}')
kubectl -n "$NAMESPACE" patch rollout.ramp.dev/kind-smoke --type json \
  -p '[{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "ramp-test/app:v2"}]'
deadline=$((SECONDS + 300))
until [[ "$(kubectl -n "$NAMESPACE" get rollout.ramp.dev/kind-smoke \
  -o jsonpath='{.status.phase}/{.status.stableRevision}')" =~ ^Healthy/ ]] &&
  [[ "$(kubectl -n "$NAMESPACE" get rollout.ramp.dev/kind-smoke -o jsonpath='{.status.stableRevision}')" != "$old" ]]; do
  if ((SECONDS > deadline)); then
    echo "kind-e2e: the canary did not complete within 300s" >&2
    kubectl -n "$NAMESPACE" get rollout.ramp.dev/kind-smoke -o yaml >&2
    kubectl -n "$NAMESPACE" logs deployment/ramp --tail 50 >&2 || true
    exit 1
  fi
  sleep 2
done
kubectl -n "$NAMESPACE" get rollout.ramp.dev/kind-smoke
kubectl -n "$NAMESPACE" delete rollout.ramp.dev/kind-smoke --wait=false

echo "kind-e2e: the end-to-end suite against $KUBECONFIG_FILE"
# the real-node tests start a local cluster of their own (docs/real-node.md): not on kind
RAMP_TEST_KUBECONFIG=$PWD/$KUBECONFIG_FILE RAMP_TEST_IMAGE=ramp-test/app:v1 \
  "$VENV/bin/pytest" tests/e2e -m "not realnode" "$@"
