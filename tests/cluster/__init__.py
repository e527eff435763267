"""The local Kubernetes control plane for tests: build.sh, launcher.py, fixtures.py."""
