{{/* Name of the release's objects. */}}
{{- define "iofog-connector.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "iofog-connector.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "iofog-connector.labels" -}}
{{ include "iofog-connector.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Name of the TLS Secret the pod mounts. */}}
{{- define "iofog-connector.tlsSecret" -}}
{{- default (printf "%s-tls" (include "iofog-connector.fullname" .)) .Values.tls.existingSecret -}}
{{- end -}}

{{/* The port pool, checked. */}}
{{- define "iofog-connector.ports" -}}
{{- $first := int .Values.ports.first -}}
{{- $last := int .Values.ports.last -}}
{{- if or (lt $first 1) (gt $last 65535) (lt $last $first) -}}
{{- fail (printf "ports: %d-%d is not a range of ports" $first $last) -}}
{{- end -}}
{{- if lt (sub $last $first) 1 -}}
{{- fail "ports: a mapping needs two ports; give at least two" -}}
{{- end -}}
{{- if gt (sub $last $first) 999 -}}
{{- fail "ports: more than 1000 ports cannot be listed in a Service; use hostNetwork for large pools" -}}
{{- end -}}
{{- if and (eq .Values.service.type "NodePort") (not .Values.hostNetwork) (or (lt $first 30000) (gt $last 32767)) -}}
{{- fail (printf "ports: %d-%d: with service.type NodePort the pool must lie in the NodePort range 30000-32767 (agents use the connector's port numbers)" $first $last) -}}
{{- end -}}
{{- if not (has .Values.service.type (list "LoadBalancer" "NodePort")) -}}
{{- fail (printf "service.type: %q is not LoadBalancer or NodePort" .Values.service.type) -}}
{{- end -}}
{{- if and (le $first (int .Values.api.port)) (ge $last (int .Values.api.port)) -}}
{{- fail (printf "api.port %d lies in the port pool" (int .Values.api.port)) -}}
{{- end -}}
{{- printf "%d-%d" $first $last -}}
{{- end -}}

{{/* The metrics port, checked against the pool and the API port. */}}
{{- define "iofog-connector.metricsPort" -}}
{{- $port := int .Values.metrics.port -}}
{{- if or (lt $port 1) (gt $port 65535) -}}
{{- fail (printf "metrics.port: %d is not a port" $port) -}}
{{- end -}}
{{- if and (le (int .Values.ports.first) $port) (ge (int .Values.ports.last) $port) -}}
{{- fail (printf "metrics.port %d lies in the port pool" $port) -}}
{{- end -}}
{{- if eq $port (int .Values.api.port) -}}
{{- fail (printf "metrics.port %d is the API's port" $port) -}}
{{- end -}}
{{- $port -}}
{{- end -}}
