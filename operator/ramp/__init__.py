"""Ramp: progressive delivery for Kubernetes, replica-ratio canaries gated on readiness."""

__version__ = "0.1.0"

GROUP = "ramp.dev"
VERSION = "v1alpha1"
PREFIX = "ramp.dev"
