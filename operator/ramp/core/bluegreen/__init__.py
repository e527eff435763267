"""The blue-green strategy: green runs beside blue, is verified, and the active Service
flips at once.

The release, as the planner walks it (stable = blue, the active revision until the
switch; canary = green):

1. green comes up at ``previewReplicaCount``; the preview Service selects it once it has
   ready pods (the active revision otherwise: the preview never goes empty);
2. the pre-promotion analysis judges green; then promotion is granted — by itself
   (``autoPromotionSeconds`` after green was ready and verified) or by a promote;
3. green goes to full size; **the switch waits for the data plane**: every green pod
   ready and listed as a ready endpoint of the preview Service's EndpointSlices;
4. the active Service flips to green; the post-promotion analysis runs while blue stays
   at full size; a failure (or an abort) flips back to blue at once;
5. once it passes, green is stable; blue stays warm until ``scaleDownDelaySeconds``
   after the switch *and* until the active Service's EndpointSlices list none of its
   endpoints — a ``rollback`` in that window flips back to it.

:mod:`ramp.core.bluegreen.release` walks steps 1-4; :mod:`ramp.core.bluegreen.steady`
the completion, the warm window, a rollback and an abort;
:mod:`ramp.core.bluegreen.strategy` is the strategy the planner chooses for
``spec.strategy.blueGreen``. Blue and green are kept in ``status.stableRevision`` /
``status.canaryRevision`` (the fields users see).
"""
