-- Argo CD health check of a Ramp Rollout (ramp.dev/v1alpha1).
-- Lua 5.1 as Argo CD runs it (gopher-lua: base, table and os.time/os.date only; no string
-- library). Maps the operator's phase to Argo CD's health:
--   Healthy -> Healthy, Progressing -> Progressing, Paused -> Suspended,
--   Aborted -> Degraded, Degraded (invalid spec) -> Degraded.
-- A spec the operator has not observed yet is Progressing, never the old verdict.
-- Blue-green (spec.strategy.blueGreen) says where the release stands from status.blueGreen:
-- which revision the active Service serves, what the switch waits for, that a pause is a
-- wait for promote, and how long the previous revision stays warm for a rollback.
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
local strategy = obj.spec and obj.spec.strategy or {}
local bg = status.blueGreen
if strategy.blueGreen ~= nil and bg ~= nil then
  local active = bg.activeRevision or status.stableRevision or "?"
  local green = status.canaryRevision
  local paused = condition(status, "Paused")
  if phase == "Paused" and paused ~= nil and paused.reason == "WaitingForPromote" then
    message = "Waiting for promote: green " .. (green or "?") .. " is ready and verified; "
      .. "the active Service still serves " .. active
      .. " (run the promote action, or kubectl ramp promote)"
  elseif phase == "Progressing" and green ~= nil and green ~= "" then
    if bg.switchedAt ~= nil then
      message = "Active Service switched to " .. green .. "; post-promotion analysis runs while "
        .. (status.stableRevision or "blue") .. " stays warm: " .. message
    else
      message = "Green " .. green .. " is not active yet (the active Service serves " .. active
        .. "): " .. message
    end
  elseif phase == "Healthy" and bg.warmRevision ~= nil and bg.warmRevision ~= "" then
    message = "Revision " .. active .. " is active; " .. bg.warmRevision .. " stays warm until "
      .. (bg.warmUntil or "?") .. " (the rollback action flips back to it until then)"
  end
end
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
