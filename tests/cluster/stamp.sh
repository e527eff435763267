# Sourced by tests/cluster/build.sh and tests/cluster/node/build.sh (with $bin set): a piece
# is rebuilt only when its recipe changed. bin/.NAME.stamp holds "RECIPE GOVERSION"; without
# a Go toolchain an existing piece of the same recipe is still good, so a warm run needs no Go.
goversion="$(command -v go >/dev/null 2>&1 && go env GOVERSION 2>/dev/null || echo none)"

recipe_of() { # recipe_of FILE...: the hash of a piece's inputs
  cat "$@" | sha256sum | cut -c1-32
}

fresh() { # fresh NAME RECIPE: bin/NAME exists and was built with this recipe
  local stamp="$bin/.$1.stamp" r g
  [[ -e "$bin/$1" && -f "$stamp" ]] || return 1
  read -r r g <"$stamp" || true
  [[ "$r" == "$2" && ("$g" == "$goversion" || "$goversion" == none) ]]
}

stamp() { # stamp NAME RECIPE: bin/NAME was just built with this recipe
  echo "$2 $goversion" >"$bin/.$1.stamp"
}

kube_ldflags() { # the version ldflags of upstream's hack/lib/version.sh (run in the Go module)
  local kube_version major minor ld pkg
  kube_version="$(go list -m -f '{{.Version}}' k8s.io/kubernetes)"
  major="${kube_version#v}"; major="${major%%.*}"
  minor="${kube_version#v*.}"; minor="${minor%%.*}"
  ld="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X ${pkg}.gitVersion=${kube_version} -X ${pkg}.gitMajor=${major} -X ${pkg}.gitMinor=${minor}"
    ld+=" -X ${pkg}.gitTreeState=clean -X ${pkg}.buildDate=2026-01-01T00:00:00Z"
  done
  echo "$ld"
}
