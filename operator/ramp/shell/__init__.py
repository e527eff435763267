"""The shell: everything that talks to Kubernetes, Prometheus and the network.

Layers, each importing only the ones below it (``lint-imports`` holds the contract):
:mod:`ramp.shell.runtime` (process, leader election, metrics server) >
:mod:`ramp.shell.handlers` (kopf registration) > :mod:`ramp.shell.controller` (the
reconcile loop) > :mod:`ramp.shell.adapters` (the API client, notifications) >
:mod:`ramp.analysis` > :mod:`ramp.core` > :mod:`ramp.api`. See docs/architecture.md.
"""
