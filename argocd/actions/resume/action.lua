-- Argo CD action "resume" on a Ramp Rollout: spec.paused = false lets it continue.
obj.spec.paused = false
return obj
