"""Adapters to the outside: the Kubernetes API, its Events, notifications."""
