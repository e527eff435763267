"""The reconcile loop: work queue, observe, plan, apply; measurements and adoption."""
