-- Argo CD action "abort" on a Ramp Rollout: back to the stable revision.
-- A one-shot request: the operator acts once per token of the annotation ramp.dev/abort
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
obj.metadata.annotations["ramp.dev/abort"] = token
return obj
