# Ramp — developer interface (see README). Every target sets up what it needs.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CLUSTER_DIR := .cluster
export KUBECONFIG_LOCAL := $(CURDIR)/$(CLUSTER_DIR)/kubeconfig
# RAMP_REAL_NODE=1: `make cluster-up` also starts a real node (docs/real-node.md)
REAL_NODE := $(if $(filter-out 0,$(RAMP_REAL_NODE)),--real-node)
# GATEWAY=1: `make demo` rolls its canary through an HTTPRoute on a real gateway (Traefik, on
# the real node; docs/gateway-api.md)
GATEWAY_DEMO := $(if $(filter-out 0,$(GATEWAY)),--gateway)

.PHONY: venv lock lint crds crds-check kind-e2e kind-down cluster-build test-tools-build node-build gateway-build cluster-up cluster-down test test-unit test-e2e demo demo-down prometheus-install browser-install image argocd-lua fuzz fuzz-for clean

venv: $(STAMP)
$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

lint: venv
	$(VENV)/bin/ruff check operator tests bench demo
	$(VENV)/bin/ruff format --check operator tests bench demo
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# The chart ships the same CRDs in charts/ramp/crds (Helm installs them on first install).
crds: venv
	$(VPY) -m ramp.crdgen crds
	$(VPY) -m ramp.crdgen charts/ramp/crds

crds-check: venv
	$(VPY) -m ramp.crdgen --check crds
	$(VPY) -m ramp.crdgen --check charts/ramp/crds

# The local control plane: what `make cluster-up` and `make demo` need, nothing more.
CONTROL_PLANE := etcd kube-apiserver kube-controller-manager kube-scheduler kwok kubectl
cluster-build:
	tests/cluster/prereqs.sh
	tests/cluster/build.sh $(CONTROL_PLANE)
	$(if $(REAL_NODE),tests/cluster/node/build.sh)

# What only the tests need besides: helm (the chart tests) and prometheus-adapter (the HPA
# test; about 2.5 minutes cold, a Go module of its own).
test-tools-build: cluster-build
	tests/cluster/build.sh
	tests/cluster/adapter/build.sh

# Traefik (a Gateway API implementation, pure Go) and the Gateway API CRDs, from the Go
# module proxy through tests/cluster/gateway (a wrapper module for Traefik's replaces).
gateway-build:
	tests/cluster/gateway/build.sh

# The real node's kubelet, demo app images and runtime (containerd, runc, CNI plugins).
node-build: cluster-build
	tests/cluster/node/build.sh

cluster-up: venv cluster-build
	$(VPY) tests/cluster/launcher.py up --dir $(CLUSTER_DIR) $(REAL_NODE)

cluster-down: venv
	$(VPY) tests/cluster/launcher.py down --dir $(CLUSTER_DIR)

prometheus-install:
	tests/prometheus/install.sh

# Debian's chromium and chromium-driver for the dashboard's browser tests.
browser-install:
	tests/browser/install.sh

# The operator image from ./Dockerfile, built with podman (tests/image/build.sh installs
# Debian's podman, buildah, runc and mmdebstrap when missing; docs/install.md).
image:
	tests/image/build.sh

# requirements.lock: the image's Python dependencies with their hashes (pip-tools' pip-compile).
lock: venv
	$(VPY) -m pip install -q pip-tools
	$(VENV)/bin/pip-compile --quiet --generate-hashes --strip-extras --no-header --allow-unsafe \
	  --no-emit-find-links -o requirements.lock.new pyproject.toml
	{ sed -n '1,2p' requirements.lock; echo; cat requirements.lock.new; } > requirements.lock.tmp
	mv requirements.lock.tmp requirements.lock && rm -f requirements.lock.new

# Argo CD's Lua engine (gopher-lua, from the Go module proxy) for the Argo CD tests.
argocd-lua:
	tests/gopherlua/build.sh

test: venv lint crds-check cluster-build test-tools-build node-build gateway-build prometheus-install browser-install image argocd-lua
	PYTHONHASHSEED=0 $(VENV)/bin/pytest --durations=40 tests

test-unit: venv
	$(VENV)/bin/pytest tests/unit

# The model-based adversarial tests of the planner (canary and blue-green) with a long,
# random budget (CI runs tests/model with a fixed seed and a short one).
# RAMP_MODEL_EXAMPLES=N (canary) and RAMP_MODEL_BG_EXAMPLES=N (blue-green) override it.
fuzz: venv
	RAMP_FUZZ=1 $(VENV)/bin/pytest --timeout=0 tests/model

# Rounds of the model machines with new random seeds until FUZZ_SECONDS are up (the
# examples that ran are printed): make fuzz-for FUZZ_SECONDS=3600
FUZZ_SECONDS ?= 3600
fuzz-for: venv
	tests/model/fuzz-for.sh $(FUZZ_SECONDS)

test-e2e: venv cluster-build test-tools-build node-build gateway-build prometheus-install browser-install image argocd-lua
	$(VENV)/bin/pytest tests/e2e

# The demo: local cluster, Prometheus, operator, a good v2 and a bad v3 (see demo/run.py).
# DEMO_ARGS: --plain (progress lines; automatic without a terminal), --keep, --dir DIR.
# RAMP_REAL_NODE=1: real pods of the demo app on a real node (docs/real-node.md).
# GATEWAY=1: also the gateway, the canary through an HTTPRoute with exact weights.
demo: venv cluster-build prometheus-install $(if $(GATEWAY_DEMO),node-build gateway-build)
	$(VPY) demo/run.py --dir $(CLUSTER_DIR) $(REAL_NODE) $(GATEWAY_DEMO) $(DEMO_ARGS)

demo-down: venv
	$(VPY) demo/run.py --down --dir $(CLUSTER_DIR)

# Needs a Docker engine, kind, kubectl and helm: cannot run on the project's machines.
# Builds the image, loads it into a kind cluster, installs the chart, runs tests/e2e there.
kind-e2e: venv
	tests/kind/run.sh

kind-down:
	kind delete cluster --name $${KIND_CLUSTER:-ramp-e2e}

clean:
	-[ -x $(VPY) ] && $(VPY) tests/cluster/launcher.py down --dir $(CLUSTER_DIR)
	rm -rf $(VENV) $(CLUSTER_DIR) build dist
