-- Argo CD action "pause" on a Ramp Rollout: spec.paused = true holds the rollout where it
-- is (promotions wait). With auto-sync and selfHeal, set spec.paused in Git instead, or
-- ignore /spec/paused in the Application (see docs/argocd.md).
obj.spec.paused = true
return obj
