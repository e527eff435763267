{{/*
Chart name, truncated to 63 characters (the DNS label limit).
*/}}
{{- define "ramp.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name, truncated to 63 characters. If the release name contains the
chart name it is used as is.
*/}}
{{- define "ramp.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "ramp.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels.
*/}}
{{- define "ramp.labels" -}}
helm.sh/chart: {{ include "ramp.chart" . }}
{{ include "ramp.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ramp
{{- end }}

{{/*
Selector labels (never change across upgrades).
*/}}
{{- define "ramp.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ramp.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The ServiceAccount's name.
*/}}
{{- define "ramp.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ramp.fullname" .) .Values.serviceAccount.name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The image reference: repository:tag, or repository@digest when a digest is set.
*/}}
{{- define "ramp.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/*
Whether leader election is on: asked for, or implied by more than one replica or more
than one shard (the Leases fence one shard layout from another).
*/}}
{{- define "ramp.leaderElect" -}}
{{- if or .Values.leaderElection.enabled (gt (int .Values.replicaCount) 1) (gt (int (default 1 .Values.shards)) 1) }}true{{- end }}
{{- end }}

{{/*
The Lease's name.
*/}}
{{- define "ramp.leaseName" -}}
{{- default (include "ramp.fullname" .) .Values.leaderElection.leaseName | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Namespaces watched in namespace scope: the release namespace, then watchNamespaces,
without duplicates. One name per line.
*/}}
{{- define "ramp.watchNamespaces" -}}
{{- $all := list .Release.Namespace }}
{{- range .Values.watchNamespaces }}
{{- if not (has . $all) }}
{{- $all = append $all . }}
{{- end }}
{{- end }}
{{- join "\n" $all }}
{{- end }}

{{/*
Name of the metrics Service.
*/}}
{{- define "ramp.metricsServiceName" -}}
{{- printf "%s-metrics" (include "ramp.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The rules the operator needs in a namespace it manages: Rollouts (read) and their status
(patch), AnalysisTemplates (read), the child Deployments it creates, scales and deletes,
EndpointSlices and pods (read), Events about Rollouts, Services only when
rbac.services is set, HTTPRoutes only when rbac.httpRoutes is set. Nothing else.
*/}}
{{- define "ramp.workloadRules" -}}
- apiGroups: ["ramp.dev"]
  resources: ["rollouts"]
  # patch: only the give-back finalizer of a Rollout that adopted a Deployment (workloadRef)
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["ramp.dev"]
  resources: ["rollouts/status"]
  verbs: ["patch"]
- apiGroups: ["ramp.dev"]
  resources: ["analysistemplates"]
  verbs: ["get", "list", "watch"]
# The children: Deployments, or ReplicaSets with --children=replicasets (both are watched).
- apiGroups: ["apps"]
  resources: ["deployments", "replicasets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# Blue-green switches on what the Services really serve (read only).
- apiGroups: ["discovery.k8s.io"]
  resources: ["endpointslices"]
  verbs: ["list", "watch"]
# ... telling the endpoints apart by their pods' ramp.dev/revision label (listed only when
# a pod not seen before is an endpoint; never a name prefix).
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list"]
# The revision history: one ControllerRevision per revision, owned by its Rollout.
- apiGroups: ["apps"]
  resources: ["controllerrevisions"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- if .Values.rbac.services }}
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "patch"]
{{- end }}
{{- if .Values.rbac.checks }}
# Checks (docs/checks.md): a Job per measurement, owned by its Rollout; the end of its
# pod's log for the decision record; Secrets named by web and webhook metrics.
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "create", "delete"]
- apiGroups: [""]
  resources: ["pods/log"]
  verbs: ["get"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
{{- end }}
{{- if .Values.rbac.configTracking }}
# Tracked configuration: read what a template references, make and own the copies.
- apiGroups: [""]
  resources: ["configmaps", "secrets"]
  verbs: ["get", "create", "patch"]
{{- end }}
{{- if .Values.rbac.httpRoutes }}
# Gateway API routes (strategy.canary.httpRoutes, strategy.blueGreen.httpRoutes): read and
# watched (a route's change wakes the Rollouts naming it), and JSON patches of the weights
# of the Rollout's backendRefs and of Ramp's own header rules (docs/gateway-api.md).
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["httproutes"]
  verbs: ["get", "list", "watch", "patch"]
{{- end }}
{{- end }}

{{/*
Checks that values.schema.json cannot express (it compares no two values).
*/}}
{{- define "ramp.validate" -}}
{{- $le := .Values.leaderElection }}
{{- if include "ramp.leaderElect" . }}
{{- if not (and (lt (int $le.renewPeriod) (int $le.renewDeadline)) (lt (int $le.renewDeadline) (int $le.leaseDuration))) }}
{{- fail (printf "leaderElection: renewPeriod (%v) < renewDeadline (%v) < leaseDuration (%v) is required" $le.renewPeriod $le.renewDeadline $le.leaseDuration) }}
{{- end }}
{{- if ge (int $le.retryPeriod) (int $le.leaseDuration) }}
{{- fail (printf "leaderElection: retryPeriod (%v) must be below leaseDuration (%v)" $le.retryPeriod $le.leaseDuration) }}
{{- end }}
{{- end }}
{{- if and .Values.watchNamespaces (eq .Values.scope "cluster") }}
{{- fail "watchNamespaces is only used with scope: namespace (scope: cluster already watches every namespace)" }}
{{- end }}
{{- if eq (int .Values.metrics.port) (int .Values.health.port) }}
{{- fail (printf "metrics.port and health.port must differ (both %v): the probes have a port of their own" .Values.metrics.port) }}
{{- end }}
{{- end }}

{{/*
The base name of the chart's cluster-scoped objects. In cluster scope the full name; in
namespace scope prefixed with the release namespace, so that releases of the same name in
two namespaces do not claim the same ClusterRole. Long names are cut and made unique with
a hash.
*/}}
{{- define "ramp.clusterScopedName" -}}
{{- $base := include "ramp.fullname" . }}
{{- if ne .Values.scope "cluster" }}
{{- $base = printf "%s-%s" .Release.Namespace $base }}
{{- end }}
{{- if gt (len $base) 48 }}
{{- printf "%s-%s" ($base | trunc 39 | trimSuffix "-") ($base | sha256sum | trunc 8) }}
{{- else }}
{{- $base }}
{{- end }}
{{- end }}

{{/*
The Prometheus providers for RAMP_PROMETHEUS_PROVIDERS (JSON): a tokenSecret names a Secret
in the release namespace.
*/}}
{{- define "ramp.prometheusProviders" -}}
{{- $out := list -}}
{{- range .Values.prometheus.providers -}}
{{- $p := deepCopy . -}}
{{- if .tokenSecret -}}
{{- $_ := set $p "tokenSecret" (printf "%s/%s" $.Release.Namespace .tokenSecret) -}}
{{- end -}}
{{- $out = append $out $p -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/*
Names of the Secrets the operator may read for Prometheus tokens (one per line).
*/}}
{{- define "ramp.prometheusSecrets" -}}
{{- with .Values.prometheus.tokenSecret.name }}{{ . }}
{{ end -}}
{{- range .Values.prometheus.providers -}}
{{- with .tokenSecret }}{{ . }}
{{ end -}}
{{- end -}}
{{- end -}}
