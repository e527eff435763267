# Sourced by the image scripts: podman as it works on the project's machines.
#  - runc, not crun (podman's default): crun refuses to start on hosts with hybrid cgroups;
#  - explicit rlimits: podman's defaults are above this host's hard limits and runc cannot
#    raise a limit without CAP_SYS_RESOURCE. Values at or under the shell's hard limits,
#    capped (nproc above 32768 was refused here even under the hard limit).
# PODMAN (array): the podman command; PODMAN_LIMITS (array): flags for `build` and `run`.
_limit() {
  local v; v="$(ulimit -H "$1")"
  if [ "$v" = unlimited ] || [ "$v" -gt "$2" ]; then v="$2"; fi
  echo "$v"
}
PODMAN=(podman --runtime "${RAMP_OCI_RUNTIME:-runc}")
_nofile="$(_limit -n 65536)"
_nproc="$(_limit -u 32768)"
PODMAN_LIMITS=(--ulimit "nofile=$_nofile:$_nofile" --ulimit "nproc=$_nproc:$_nproc")
