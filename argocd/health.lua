-- Argo CD health check of a Ramp Rollout (ramp.dev/v1alpha1).
-- Lua 5.1 as Argo CD runs it (gopher-lua: base, table and os.time/os.date only; no string
-- library). Maps the operator's phase to Argo CD's health:
--   Healthy -> Healthy, Progressing -> Progressing, Paused -> Suspended,
--   Aborted -> Degraded, Degraded (invalid spec) -> Degraded.
-- A spec the operator has not observed yet is Progressing, never the old verdict.
local hs = {}

local function condition(status, ctype)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == ctype then
      return c
    end
  end
  return nil
end

local status = obj.status
if status == nil or status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Ramp operator to report the Rollout's status"
  return hs
end

local generation = obj.metadata.generation
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the Ramp operator to observe the latest spec"
  return hs
end

local message = status.message or ""
local invalid = condition(status, "InvalidSpec")
if invalid ~= nil and invalid.status == "True" then
  hs.status = "Degraded"
  hs.message = invalid.message or message
  return hs
end

local phase = status.phase
if phase == "Healthy" then
  hs.status = "Healthy"
elseif phase == "Paused" then
  hs.status = "Suspended"
elseif phase == "Aborted" then
  hs.status = "Degraded"
  if status.abortReason ~= nil then
    message = status.abortReason .. ": " .. message
  end
elseif phase == "Degraded" then
  hs.status = "Degraded"
else
  hs.status = "Progressing"
end
hs.message = message
return hs
