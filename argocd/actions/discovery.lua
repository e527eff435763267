-- Argo CD action discovery for a Ramp Rollout: which verbs make sense right now.
local actions = {}
local status = obj.status or {}
local inProgress = status.canaryRevision ~= nil and status.canaryRevision ~= ""
local aborted = status.phase == "Aborted"
local paused = obj.spec ~= nil and obj.spec.paused == true

-- Blue-green rollback: only while the previous revision is still warm (status.blueGreen has
-- the window) and no release runs. The window's end is an ISO time in whole seconds
-- (2026-01-02T03:04:05Z), compared as a string with now in the same form (Argo CD's Lua has
-- no string library to parse it). The operator refuses a late rollback with an Event.
local function two(n)
  if n < 10 then
    return "0" .. tostring(n)
  end
  return tostring(n)
end

local function utcNow()
  if os == nil or os.date == nil then
    return nil
  end
  local t = os.date("!*t")
  if type(t) ~= "table" or t.year == nil then
    return nil
  end
  return tostring(t.year) .. "-" .. two(t.month) .. "-" .. two(t.day) .. "T" .. two(t.hour) .. ":"
    .. two(t.min) .. ":" .. two(t.sec) .. "Z"
end

local bg = status.blueGreen or {}
local warm = bg.warmRevision ~= nil and bg.warmRevision ~= ""
if warm and bg.warmUntil ~= nil then
  local now = utcNow()
  if now ~= nil and now >= bg.warmUntil then
    warm = false
  end
end
local blueGreen = obj.spec ~= nil and obj.spec.strategy ~= nil and obj.spec.strategy.blueGreen ~= nil
local canRollback = blueGreen and warm and not inProgress and not aborted

-- After a blue-green switch a promote has nothing left to skip (the operator ignores it);
-- promote-full still skips the post-promotion analysis.
local switched = bg.switchedAt ~= nil and bg.switchedAt ~= ""

-- The actions (generated from operator/ramp/api/verbs.py by argocd/render.py):
actions["promote"] = {["disabled"] = (not inProgress) or aborted or switched, ["iconClass"] = "fa fa-fw fa-forward"}
actions["promote-full"] = {["disabled"] = (not inProgress) or aborted, ["iconClass"] = "fa fa-fw fa-fast-forward"}
actions["abort"] = {["disabled"] = (not inProgress) or aborted, ["iconClass"] = "fa fa-fw fa-times-circle"}
actions["retry"] = {["disabled"] = not aborted, ["iconClass"] = "fa fa-fw fa-redo-alt"}
actions["pause"] = {["disabled"] = paused, ["iconClass"] = "fa fa-fw fa-pause-circle"}
actions["resume"] = {["disabled"] = not paused, ["iconClass"] = "fa fa-fw fa-play-circle"}
actions["rollback"] = {["disabled"] = not canRollback, ["iconClass"] = "fa fa-fw fa-undo"}
return actions
