"""The canary strategy: the new revision takes a growing share of the replicas, step by
step (weights, pauses, analysis), and is promoted at weight 100 without a pod restart.

:mod:`ramp.core.canary.steps` walks the steps; :mod:`ramp.core.canary.strategy` is the
strategy the planner chooses for ``spec.strategy.canary``.
"""
