-- Argo CD action "rollback" on a blue-green Ramp Rollout: the active Service flips back to the
-- previous revision while it is still warm (until status.blueGreen.warmUntil); the Rollout
-- ends Aborted (UserRollback), and retry starts the release again. A one-shot request: the
-- operator acts once per token of the annotation ramp.dev/rollback and records the token in
-- status.handledTokens, so a repeated sync or a second click with the same token does
-- nothing more.
local now = 0
if os ~= nil and os.time ~= nil then
  now = os.time()
end
local token = "argocd-" .. tostring(now) .. "-" .. tostring(obj.metadata.resourceVersion or "0")
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["ramp.dev/rollback"] = token
return obj
