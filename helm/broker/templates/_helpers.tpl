{{/* Names and labels. */}}
{{- define "broker.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "broker.fullname" -}}
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

{{- define "broker.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "broker.selectorLabels" -}}
app.kubernetes.io/name: {{ include "broker.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "broker.labels" -}}
helm.sh/chart: {{ include "broker.chart" . }}
{{ include "broker.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: broker
{{- end }}

{{- define "broker.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "broker.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "broker.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Host name of the issuer URL: the main ingress host unless ingress.host is set. */}}
{{- define "broker.host" -}}
{{- default (urlParse .Values.issuer).host .Values.ingress.host }}
{{- end }}

{{/* Paths inside the container (the image's runtime contract). */}}
{{- define "broker.configPath" -}}/etc/broker/broker.yaml{{- end }}
{{- define "broker.keysDir" -}}/etc/broker/keys{{- end }}
{{- define "broker.bankidDir" -}}/etc/broker/bankid{{- end }}
{{- define "broker.authzDir" -}}/etc/broker/authz{{- end }}
{{- define "broker.sithsDir" -}}/etc/broker/siths{{- end }}
{{- define "broker.httpPort" -}}8080{{- end }}

{{/* Secret names: the operator's existing Secret, or the one this chart renders. */}}
{{- define "broker.keysSecret" -}}
{{- default (printf "%s-keys" (include "broker.fullname" .)) .Values.keys.existingSecret }}
{{- end }}
{{- define "broker.bankidSecret" -}}
{{- default (printf "%s-bankid" (include "broker.fullname" .)) .Values.bankid.existingSecret }}
{{- end }}
{{- define "broker.clientsSecret" -}}
{{- default (printf "%s-clients" (include "broker.fullname" .)) .Values.clientSecrets.existingSecret }}
{{- end }}
{{- define "broker.redisSecret" -}}
{{- default (printf "%s-redis" (include "broker.fullname" .)) .Values.redis.auth.existingSecret }}
{{- end }}
{{- define "broker.pairwiseSecret" -}}
{{- default (printf "%s-pairwise" (include "broker.fullname" .)) .Values.pairwiseSalt.existingSecret }}
{{- end }}
{{- define "broker.authzSecret" -}}
{{- default (printf "%s-authz" (include "broker.fullname" .)) .Values.authorization.existingSecret }}
{{- end }}

{{- define "broker.sithsTrustStore" -}}
{{- with .Values.siths }}{{ if and .enabled (or .trustStore.existingConfigMap .trustStore.existingSecret) }}true{{ end }}{{ end }}
{{- end }}

{{- define "broker.pairwiseEnabled" -}}
{{- if or .Values.pairwiseSalt.existingSecret .Values.pairwiseSalt.value }}true{{ end }}
{{- end }}

{{- define "broker.authzFileEnabled" -}}
{{- if and (eq .Values.authorization.source "file") (or .Values.authorization.existingSecret .Values.authorization.content) }}true{{ end }}
{{- end }}

{{/* The env var that carries one client's secret. */}}
{{- define "broker.clientSecretEnv" -}}
{{- printf "BROKER_CLIENT_SECRET_%s" (regexReplaceAll "[^A-Z0-9]" (upper .) "_") }}
{{- end }}

{{/* Does this client authenticate with a secret that the chart must inject? */}}
{{- define "broker.clientNeedsSecret" -}}
{{- $method := default "client_secret_basic" .token_endpoint_auth_method }}
{{- if and (hasPrefix "client_secret" $method) (not (hasKey . "client_secret")) }}true{{ end }}
{{- end }}

{{/* The store URL; passwords stay ${VAR} references the broker expands from its env. */}}
{{- define "broker.storeUrl" -}}
{{- $r := .Values.redis }}
{{- if $r.url }}
{{- $r.url }}
{{- else }}
{{- $cred := "" }}
{{- if $r.auth.enabled }}
{{- $cred = printf "%s:${BROKER_REDIS_PASSWORD}@" $r.auth.username }}
{{- end }}
{{- if eq $r.mode "sentinel" }}
{{- $q := list }}
{{- if and $r.auth.enabled $r.auth.sentinelPasswordKey }}
{{- $q = append $q "sentinel_password=${BROKER_REDIS_SENTINEL_PASSWORD}" }}
{{- end }}
{{- if $r.tls }}
{{- $q = append $q "ssl=true" }}
{{- end }}
{{- $hosts := required "redis.sentinel.hosts must list at least one sentinel" (join "," $r.sentinel.hosts) }}
{{- printf "redis+sentinel://%s%s/%s/%d" $cred $hosts $r.sentinel.masterName (int $r.db) }}
{{- if $q }}?{{ join "&" $q }}{{ end }}
{{- else }}
{{- printf "%s://%s%s:%d/%d" (ternary "rediss" "redis" $r.tls) $cred $r.host (int $r.port) (int $r.db) }}
{{- end }}
{{- end }}
{{- end }}

{{/* broker.yaml, built as a dict and merged with .Values.config last. */}}
{{- define "broker.config" -}}
{{- $v := .Values }}
{{- $cfg := dict "issuer" (trimSuffix "/" $v.issuer) }}
{{- $_ := set $cfg "store" (dict "url" (include "broker.storeUrl" .) "prefix" $v.redis.keyPrefix "timeout" $v.redis.timeout "replicas" $v.redis.replicas "replica_timeout" $v.redis.replicaTimeout) }}
{{- $_ := set $cfg "keys" (dict "dir" (include "broker.keysDir" .)) }}
{{- $_ := set $cfg "http" (dict "trusted_proxies" $v.trustedProxies "graceful_shutdown_seconds" (int $v.gracefulShutdownSeconds)) }}
{{- $_ := set $cfg "metrics" (dict "port" (int $v.metrics.port)) }}
{{- if include "broker.pairwiseEnabled" . }}
{{- $_ := set $cfg "pairwise_salt" "${BROKER_PAIRWISE_SALT}" }}
{{- end }}
{{- $clients := list }}
{{- range $v.clients }}
{{- $c := deepCopy . }}
{{- if include "broker.clientNeedsSecret" . }}
{{- $_ := set $c "client_secret" (printf "${%s}" (include "broker.clientSecretEnv" .client_id)) }}
{{- end }}
{{- $clients = append $clients $c }}
{{- end }}
{{- $_ := set $cfg "clients" $clients }}
{{- $connectors := dict }}
{{- if $v.bankid.enabled }}
{{- $bankid := dict "environment" $v.bankid.environment }}
{{- if ne $v.bankid.environment "simulator" }}
{{- $p12 := printf "%s/%s" (include "broker.bankidDir" .) $v.bankid.certificateKey }}
{{- $_ := set $bankid "certificate" (dict "p12" $p12 "password" "${BROKER_BANKID_CERT_PASSWORD}") }}
{{- end }}
{{- $_ := set $connectors "bankid" (mustMergeOverwrite $bankid (deepCopy $v.bankid.settings)) }}
{{- end }}
{{- if $v.siths.enabled }}
{{- $proxy := dict "format" "nginx" "header" $v.siths.header "trusted_proxies" $v.trustedProxies }}
{{- $siths := dict "mode" "proxy" "login_url" (printf "https://%s%s" $v.siths.host $v.siths.loginPath) "proxy" $proxy }}
{{- if include "broker.sithsTrustStore" . }}
{{- $_ := set $siths "trust" (dict "ca_bundle" (printf "%s/%s" (include "broker.sithsDir" .) $v.siths.trustStore.key)) }}
{{- end }}
{{- $_ := set $connectors "siths" (mustMergeOverwrite $siths (deepCopy $v.siths.settings)) }}
{{- end }}
{{- $_ := set $cfg "connectors" $connectors }}
{{- $authz := dict "source" $v.authorization.source }}
{{- if include "broker.authzFileEnabled" . }}
{{- $_ := set $authz "path" (printf "%s/%s" (include "broker.authzDir" .) $v.authorization.key) }}
{{- end }}
{{- $_ := set $cfg "authorization" (mustMergeOverwrite $authz (deepCopy $v.authorization.settings)) }}
{{- toYaml (mustMergeOverwrite $cfg (deepCopy $v.config)) }}
{{- end }}

{{/* Checks that the schema cannot express. */}}
{{- define "broker.validate" -}}
{{- if not (hasPrefix "https://" .Values.issuer) }}
{{- fail "issuer must be an https:// URL" }}
{{- end }}
{{- if .Values.siths.enabled }}
{{- if not .Values.siths.host }}
{{- fail "siths.host is required when siths.enabled is true" }}
{{- end }}
{{- if not .Values.siths.clientCASecret }}
{{- fail "siths.clientCASecret (a Secret with ca.crt holding the SITHS CAs) is required when siths.enabled is true" }}
{{- end }}
{{- if not .Values.trustedProxies }}
{{- fail "siths.enabled needs trustedProxies: the ingress controller pods' network, the only senders whose certificate header the broker may trust" }}
{{- end }}
{{- if and (not (include "broker.sithsTrustStore" .)) (not (dig "trust" "ca_bundle" "" .Values.siths.settings)) }}
{{- fail "siths.enabled needs siths.trustStore.existingConfigMap or .existingSecret (the pinned SITHS CA bundle the broker re-validates cards against)" }}
{{- end }}
{{- if eq .Values.siths.host (include "broker.host" .) }}
{{- fail "siths.host must differ from the main host: client certificates are asked for per host" }}
{{- end }}
{{- $login := .Values.siths.loginPath }}
{{- $routed := false }}
{{- range .Values.siths.paths }}
{{- if hasPrefix . $login }}{{ $routed = true }}{{ end }}
{{- end }}
{{- if not $routed }}
{{- fail (printf "siths.paths must route %s (the certificate step) to the broker" $login) }}
{{- end }}
{{- end }}
{{- if and .Values.redis.auth.enabled (not .Values.redis.auth.existingSecret) (not .Values.redis.auth.password) }}
{{- fail "redis.auth.enabled needs redis.auth.existingSecret (or redis.auth.password on a test cluster)" }}
{{- end }}
{{- $envs := dict }}
{{- range .Values.clients }}
{{- if include "broker.clientNeedsSecret" . }}
{{- $env := include "broker.clientSecretEnv" .client_id }}
{{- if hasKey $envs $env }}
{{- fail (printf "clients %s and %s map to the same variable %s; set client_secret yourself for one of them" (get $envs $env) .client_id $env) }}
{{- end }}
{{- $_ := set $envs $env .client_id }}
{{- if and (not $.Values.clientSecrets.existingSecret) (not (hasKey $.Values.clientSecrets.values .client_id)) }}
{{- fail (printf "client %s authenticates with a secret: put it in clientSecrets.existingSecret (key %q) or clientSecrets.values" .client_id .client_id) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Request limits for ingress-nginx, matching what `broker serve` enforces behind it
(docs/operations.md, "Server limits"): bodies up to 64 KiB (http.max_body_bytes), read whole
by nginx before the broker sees the request, so a slow or endless body stops at the edge.
Annotations given in the values win over these. Header size, header and body timeouts and
keep-alive are controller-wide settings (the ingress-nginx ConfigMap), not annotations.
*/}}
{{- define "broker.ingressLimits" -}}
nginx.ingress.kubernetes.io/proxy-body-size: "64k"
nginx.ingress.kubernetes.io/client-body-buffer-size: "64k"
nginx.ingress.kubernetes.io/proxy-request-buffering: "on"
{{- end }}
