-- Argo CD action discovery for a Ramp Rollout: which verbs make sense right now.
local actions = {}
local status = obj.status or {}
local inProgress = status.canaryRevision ~= nil and status.canaryRevision ~= ""
local aborted = status.phase == "Aborted"
local paused = obj.spec ~= nil and obj.spec.paused == true

actions["promote"] = {["disabled"] = (not inProgress) or aborted, ["iconClass"] = "fa fa-fw fa-forward"}
actions["promote-full"] = {["disabled"] = (not inProgress) or aborted, ["iconClass"] = "fa fa-fw fa-fast-forward"}
actions["abort"] = {["disabled"] = (not inProgress) or aborted, ["iconClass"] = "fa fa-fw fa-times-circle"}
actions["retry"] = {["disabled"] = not aborted, ["iconClass"] = "fa fa-fw fa-redo-alt"}
actions["pause"] = {["disabled"] = paused, ["iconClass"] = "fa fa-fw fa-pause-circle"}
actions["resume"] = {["disabled"] = not paused, ["iconClass"] = "fa fa-fw fa-play-circle"}
return actions
