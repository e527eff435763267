"""The analysis shell: Prometheus queries (async HTTP), CEL conditions, query rendering.

The pure accounting of verdicts lives in :mod:`ramp.core.verdicts`; this package takes
the measurements.
"""
