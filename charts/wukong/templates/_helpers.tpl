{{/* Chart name, overridable with nameOverride. */}}
{{- define "wukong.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name prefix of every object: fullnameOverride, else the release name
(plus the chart name unless the release name already contains it).
*/}}
{{- define "wukong.fullname" -}}
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

{{/* chart label value: name-version. */}}
{{- define "wukong.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "wukong.labels" -}}
helm.sh/chart: {{ include "wukong.chart" . }}
{{ include "wukong.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: wukong
{{- end }}

{{/* Selector labels of the manager pods (immutable once installed). */}}
{{- define "wukong.selectorLabels" -}}
app.kubernetes.io/name: {{ include "wukong.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: manager
{{- end }}

{{/* The manager's ServiceAccount. */}}
{{- define "wukong.serviceAccountName" -}}
{{- include "wukong.fullname" . }}
{{- end }}

{{/* The manager image: repository:tag, tag defaulting to appVersion. */}}
{{- define "wukong.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The metrics Service's name in its namespace, the name scrapers verify. */}}
{{- define "wukong.metricsHost" -}}
{{- printf "%s-metrics.%s.svc" (include "wukong.fullname" .) .Release.Namespace }}
{{- end }}

{{/*
The Secret with the metrics serving certificate (tls.crt, tls.key, ca.crt):
cert-manager's, the administrator's (metrics.secretName), or empty for the
manager's self-signed one. Fails on both.
*/}}
{{- define "wukong.metricsSecret" -}}
{{- if and .Values.metrics.certManager.enabled .Values.metrics.secretName }}
{{- fail "metrics.certManager.enabled and metrics.secretName both name the metrics certificate: set one" }}
{{- end }}
{{- if .Values.metrics.certManager.enabled }}
{{- printf "%s-metrics-tls" (include "wukong.fullname" .) }}
{{- else }}
{{- .Values.metrics.secretName }}
{{- end }}
{{- end }}
