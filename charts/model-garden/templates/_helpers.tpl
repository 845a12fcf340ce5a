{{/*
Names and labels. The operator's objects carry app.kubernetes.io/name=model-garden and
component=operator; the runtime pods the operator creates carry component=runtime and
managed-by=model-garden-operator, so neither selects the other.
*/}}

{{- define "model-garden.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "model-garden.fullname" -}}
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

{{- define "model-garden.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object of the chart, without a component. */}}
{{- define "model-garden.commonLabels" -}}
helm.sh/chart: {{ include "model-garden.chart" . }}
app.kubernetes.io/name: {{ include "model-garden.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels on the operator's objects. */}}
{{- define "model-garden.labels" -}}
{{ include "model-garden.commonLabels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{/* What the operator's Deployment and Service select on. */}}
{{- define "model-garden.selectorLabels" -}}
app.kubernetes.io/name: {{ include "model-garden.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "model-garden.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "model-garden.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository:tag, the tag defaulting to appVersion plus a suffix. */}}
{{- define "model-garden.image" -}}
{{- $image := index . 0 }}{{ $default := index . 1 }}
{{- printf "%s:%s" $image.repository (default $default $image.tag) }}
{{- end }}

{{- define "model-garden.operatorImage" -}}
{{- include "model-garden.image" (list .Values.image .Chart.AppVersion) }}
{{- end }}

{{- define "model-garden.gpuImage" -}}
{{- include "model-garden.image" (list .Values.runtime.gpuImage .Chart.AppVersion) }}
{{- end }}

{{- define "model-garden.cpuImage" -}}
{{- include "model-garden.image" (list .Values.runtime.cpuImage (printf "%s-cpu" .Chart.AppVersion)) }}
{{- end }}

{{/* The restricted Pod Security Standard, for the operator pod and the test pod. */}}
{{- define "model-garden.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 1000
runAsGroup: 1000
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "model-garden.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end }}

{{/*
One rule set of files/operator-rules.yaml (generated from operator/model_garden_operator/rbac.py):
  include "model-garden.rules" (dict "root" $ "set" "watched")
*/}}
{{- define "model-garden.rules" -}}
{{- $all := .root.Files.Get "files/operator-rules.yaml" | fromYaml }}
{{- if not (hasKey $all .set) }}{{ fail (printf "files/operator-rules.yaml has no rule set %q" .set) }}{{ end }}
{{- toYaml (index $all .set) }}
{{- end }}
