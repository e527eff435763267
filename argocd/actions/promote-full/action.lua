-- Argo CD action "promote-full" on a Ramp Rollout: skip every remaining step (blue-green: switch without analysis).
-- A one-shot request: the operator acts once per token of the annotation ramp.dev/promote-full
-- and records the token in status.handledTokens, so a repeated sync or a second click with
-- the same token does nothing more. Generated from operator/ramp/api/verbs.py by
-- argocd/render.py.
local now = 0
if os ~= nil and os.time ~= nil then
  now = os.time()
end
local token = "argocd-" .. tostring(now) .. "-" .. tostring(obj.metadata.resourceVersion or "0")
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["ramp.dev/promote-full"] = token
return obj
