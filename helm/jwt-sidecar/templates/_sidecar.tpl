{{/*
Named templates of the jwt-sidecar chart. The chart's own manifests use them, and so can an
existing app chart that has jwt-sidecar as a dependency: it passes the subchart's own scope,
`(index .Subcharts "jwt-sidecar")`, so names, values and the config come out exactly as the
subchart renders them (examples/app-chart shows it):

  jwt-sidecar.initContainers   the sidecar as an init container (sidecar.native), else nothing
  jwt-sidecar.containers       the sidecar as a plain container (not sidecar.native), else nothing
  jwt-sidecar.container        the sidecar container itself (one list item)
  jwt-sidecar.volumes          its volumes (list items): config, /tmp, TLS Secret, static keys,
                               key snapshot emptyDir, extras
  jwt-sidecar.podAnnotations   checksum/config (sidecar.rollOnConfigChange), else nothing
  jwt-sidecar.terminationGracePeriodSeconds
                               shutdown.delay + shutdown.timeout + margin, in whole seconds
  jwt-sidecar.configmap        the ConfigMap holding sidecar.yaml (the subchart renders it)
  jwt-sidecar.config           the rendered sidecar.yaml text
  jwt-sidecar.httpPort / jwt-sidecar.adminPort
  jwt-sidecar.httpPortName / jwt-sidecar.adminPortName
                               the sidecar's container port names, jwt-proxy and jwt-admin
  jwt-sidecar.appReadinessProbe
                               a readinessProbe for the app through the sidecar's port on
                               app.healthPath (checked against the routes, _checks.tpl), or
                               nothing when app.healthPath is empty
  jwt-sidecar.scheme           HTTPS when the proxy port speaks TLS, else HTTP (_tls.tpl), for a
                               probe through the sidecar's port
*/}}

{{- define "jwt-sidecar.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "jwt-sidecar.fullname" -}}
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

{{- define "jwt-sidecar.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels of the chart's own pods (example app). */}}
{{- define "jwt-sidecar.selectorLabels" -}}
app.kubernetes.io/name: {{ include "jwt-sidecar.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "jwt-sidecar.labels" -}}
helm.sh/chart: {{ include "jwt-sidecar.chart" . }}
{{ include "jwt-sidecar.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
The labels of the pods that run the sidecar: the chart's own pods with app.enabled, otherwise
`podSelector` (the app's pod labels), which must then be set.
*/}}
{{- define "jwt-sidecar.podSelector" -}}
{{- if .Values.app.enabled }}
{{- if .Values.podSelector }}
{{- fail "podSelector must stay empty with app.enabled: the chart selects its own pods" }}
{{- end }}
{{- include "jwt-sidecar.selectorLabels" . }}
{{- else }}
{{- if not .Values.podSelector }}
{{- fail "app.enabled is false (inject mode): set podSelector to the labels of your app's pods (the NetworkPolicy, the PodDisruptionBudget and the monitors select them)" }}
{{- end }}
{{- toYaml .Values.podSelector }}
{{- end }}
{{- end }}

{{/*
The sidecar image. No public image is published, so there is no default repository: a render
without image.repository fails here, naming what to do, rather than deploying a pod that sits in
ImagePullBackOff on a name nobody pushed.
*/}}
{{- define "jwt-sidecar.image" -}}
{{- if not .Values.image.repository }}
{{- fail "image.repository is not set: build the image (docs/kubernetes.md#image) and set image.repository=<your registry>/jwt-sidecar" }}
{{- end }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "jwt-sidecar.httpPort" -}}
{{- .Values.sidecar.ports.http | int }}
{{- end }}

{{- define "jwt-sidecar.adminPort" -}}
{{- .Values.sidecar.ports.admin | int }}
{{- end }}

{{/*
Container port names are looked up pod-wide: a Service's targetPort, a PodMonitor's port. An
app's own port is very often named `http` (`helm create` names it so, and points the Service's
targetPort at it), so the sidecar's names carry a prefix: injected into such a pod, they stay
unique and never capture (or get captured by) the app's Service.
*/}}
{{- define "jwt-sidecar.httpPortName" -}}
jwt-proxy
{{- end }}

{{- define "jwt-sidecar.adminPortName" -}}
jwt-admin
{{- end }}

{{/* host:port, with an IPv6 host in brackets. Argument: (list host port). */}}
{{- define "jwt-sidecar.listenAddress" -}}
{{- $host := index . 0 }}
{{- if contains ":" $host }}
{{- printf "[%s]:%d" (trimAll "[]" $host) (index . 1 | int) }}
{{- else }}
{{- printf "%s:%d" $host (index . 1 | int) }}
{{- end }}
{{- end }}

{{/*
The sidecar's config file: .Values.config, plus `listen` and `admin.listen` from sidecar.ports,
`upstream.url` defaulting to the app on loopback, and `tls` pointed at the tlsSecret mount
(_tls.tpl). The schema keeps `listen` and `admin.listen` out of .Values.config, so the ports
have one source. The key snapshot files are checked against the writable mounts
(_snapshot.tpl), the key URLs and the native sidecar's Kubernetes version too (_checks.tpl):
every render of the config, in every mode, runs those checks.
*/}}
{{- define "jwt-sidecar.config" -}}
{{- $cfg := deepCopy (default (dict) .Values.config) }}
{{- if eq (.Values.sidecar.ports.http | int) (.Values.sidecar.ports.admin | int) }}
{{- fail "sidecar.ports.http and sidecar.ports.admin must differ" }}
{{- end }}
{{- $_ := set $cfg "listen" (include "jwt-sidecar.listenAddress" (list .Values.sidecar.listenHost .Values.sidecar.ports.http)) }}
{{- $admin := default (dict) (get $cfg "admin") }}
{{- $_ := set $admin "listen" (include "jwt-sidecar.listenAddress" (list .Values.sidecar.listenHost .Values.sidecar.ports.admin)) }}
{{- $_ := set $cfg "admin" $admin }}
{{- $upstream := default (dict) (get $cfg "upstream") }}
{{- if not (get $upstream "url") }}
{{- $_ := set $upstream "url" (printf "http://127.0.0.1:%d" (.Values.app.port | int)) }}
{{- end }}
{{- $_ := set $cfg "upstream" $upstream }}
{{- include "jwt-sidecar.applyTls" (list . $cfg) }}
{{- include "jwt-sidecar.checkSnapshots" . }}
{{- include "jwt-sidecar.checkFetchUrls" . }}
{{- include "jwt-sidecar.checkNative" . }}
{{- toYaml $cfg }}
{{- end }}

{{/* A duration of the config (1h30m, 25s, 500ms) in seconds, as a float. */}}
{{- define "jwt-sidecar.seconds" -}}
{{- $d := toString . }}
{{- if not (regexMatch "^([0-9]+(\\.[0-9]+)?(ms|s|m|h|d))+$" $d) }}
{{- fail (printf "cannot read %q as a duration (like 5s or 1m30s)" $d) }}
{{- end }}
{{- $units := dict "ms" 0.001 "s" 1.0 "m" 60.0 "h" 3600.0 "d" 86400.0 }}
{{- $total := 0.0 }}
{{- range regexFindAll "[0-9]+(\\.[0-9]+)?(ms|s|m|h|d)" $d -1 }}
{{- $number := regexFind "^[0-9]+(\\.[0-9]+)?" . }}
{{- $unit := trimPrefix $number . }}
{{- $total = addf $total (mulf (float64 $number) (get $units $unit)) }}
{{- end }}
{{- $total }}
{{- end }}

{{/*
terminationGracePeriodSeconds: the sidecar needs shutdown.delay + shutdown.timeout after
SIGTERM (docs/cli.md#running-it), plus a margin. app.terminationGracePeriodSeconds may raise it,
never lower it below delay + timeout.
*/}}
{{- define "jwt-sidecar.terminationGracePeriodSeconds" -}}
{{- $shutdown := default (dict) (get (default (dict) .Values.config) "shutdown") }}
{{- $needed := addf (include "jwt-sidecar.seconds" (default "5s" (get $shutdown "delay")) | float64) (include "jwt-sidecar.seconds" (default "25s" (get $shutdown "timeout")) | float64) | ceil | int }}
{{- $fixed := .Values.app.terminationGracePeriodSeconds }}
{{- if kindIs "invalid" $fixed }}
{{- add $needed (.Values.sidecar.terminationGracePeriodMarginSeconds | int) }}
{{- else if lt ($fixed | int) $needed }}
{{- fail (printf "app.terminationGracePeriodSeconds (%d) is shorter than config.shutdown.delay + shutdown.timeout (%ds): the kubelet would kill the sidecar while it drains" ($fixed | int) $needed) }}
{{- else }}
{{- $fixed | int }}
{{- end }}
{{- end }}

{{- define "jwt-sidecar.staticKeysSecretName" -}}
{{- if and .Values.staticKeys.secretName .Values.staticKeys.files }}
{{- fail "staticKeys: set secretName or files, not both" }}
{{- end }}
{{- if .Values.staticKeys.secretName }}
{{- .Values.staticKeys.secretName }}
{{- else if .Values.staticKeys.files }}
{{- printf "%s-keys" (include "jwt-sidecar.fullname" .) }}
{{- end }}
{{- end }}

{{/* Pod annotations: checksum/config rolls the pods when the rendered config changes. */}}
{{- define "jwt-sidecar.podAnnotations" -}}
{{- if .Values.sidecar.rollOnConfigChange -}}
checksum/config: {{ include "jwt-sidecar.config" . | sha256sum }}
{{- end }}
{{- end }}

{{/* The sidecar container, one list item. */}}
{{- define "jwt-sidecar.container" -}}
- name: {{ .Values.sidecar.name }}
  image: {{ include "jwt-sidecar.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  {{- if .Values.sidecar.native }}
  # A native sidecar: started before the app containers, running for the pod's lifetime.
  restartPolicy: Always
  {{- end }}
  env:
    # The image sets it too; stated here so the mount path below has one visible reader.
    - name: JWT_SIDECAR_CONFIG
      value: /etc/jwt-sidecar/sidecar.yaml
    {{- with .Values.sidecar.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  ports:
    - name: {{ include "jwt-sidecar.httpPortName" . }}
      containerPort: {{ include "jwt-sidecar.httpPort" . }}
      protocol: TCP
    - name: {{ include "jwt-sidecar.adminPortName" . }}
      containerPort: {{ include "jwt-sidecar.adminPort" . }}
      protocol: TCP
  startupProbe:
    httpGet:
      path: /readyz
      port: {{ include "jwt-sidecar.adminPortName" . }}
    {{- toYaml .Values.sidecar.startupProbe | nindent 4 }}
  readinessProbe:
    httpGet:
      path: /readyz
      port: {{ include "jwt-sidecar.adminPortName" . }}
    {{- toYaml .Values.sidecar.readinessProbe | nindent 4 }}
  livenessProbe:
    httpGet:
      path: /healthz
      port: {{ include "jwt-sidecar.adminPortName" . }}
    {{- toYaml .Values.sidecar.livenessProbe | nindent 4 }}
  resources:
    {{- toYaml .Values.sidecar.resources | nindent 4 }}
  securityContext:
    {{- toYaml .Values.sidecar.securityContext | nindent 4 }}
  volumeMounts:
    # Whole directories, never subPath: the kubelet's ..data symlink swap then reaches the
    # running sidecar, which watches the directory (live reload, key rotation).
    - name: jwt-sidecar-config
      mountPath: /etc/jwt-sidecar
      readOnly: true
    - name: jwt-sidecar-tmp
      mountPath: /tmp
    {{- if include "jwt-sidecar.snapshotVolume" . }}
    # Writable, unlike the rest of the filesystem: the key snapshot (issuers[].snapshot.file),
    # kept across the sidecar's restarts within the pod.
    - name: jwt-sidecar-snapshot
      mountPath: {{ clean .Values.snapshot.mountPath }}
    {{- end }}
    {{- if .Values.tlsSecret.secretName }}
    - name: jwt-sidecar-tls
      mountPath: {{ clean .Values.tlsSecret.mountPath }}
      readOnly: true
    {{- end }}
    {{- if include "jwt-sidecar.staticKeysSecretName" . }}
    - name: jwt-sidecar-keys
      mountPath: {{ .Values.staticKeys.mountPath }}
      readOnly: true
    {{- end }}
    {{- with .Values.sidecar.extraVolumeMounts }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end }}

{{- define "jwt-sidecar.initContainers" -}}
{{- include "jwt-sidecar.checkNative" . }}
{{- if .Values.sidecar.native }}
{{- include "jwt-sidecar.container" . }}
{{- end }}
{{- end }}

{{- define "jwt-sidecar.containers" -}}
{{- if not .Values.sidecar.native }}
{{- include "jwt-sidecar.container" . }}
{{- end }}
{{- end }}

{{/*
The app's readinessProbe, through the sidecar's proxy port (the app itself listens on loopback
only, where the kubelet, probing the pod IP, cannot reach it): a GET of app.healthPath on an
`auth: none` route, over HTTPS when the proxy port speaks TLS (the kubelet does not verify the
certificate). Nothing when app.healthPath is empty. Fails when no such route takes the path
first, or when the port demands client certificates, which the kubelet never presents.
*/}}
{{- define "jwt-sidecar.appReadinessProbe" -}}
{{- with .Values.app.healthPath }}
{{- if include "jwt-sidecar.mutualTls" $ }}
{{- fail "app.healthPath probes the app through the sidecar's port, which requires client certificates (tlsSecret.clientCa or config.tls.clientCaFile) that the kubelet never presents: set app.healthPath to \"\" (the sidecar's own probes stay on the admin port)" }}
{{- end }}
{{- include "jwt-sidecar.checkHealthPath" $ -}}
readinessProbe:
  httpGet:
    path: {{ . }}
    port: {{ include "jwt-sidecar.httpPort" $ }}
    scheme: {{ include "jwt-sidecar.scheme" $ }}
  periodSeconds: 5
  failureThreshold: 2
{{- end }}
{{- end }}

{{/* The sidecar's pod volumes, list items. */}}
{{- define "jwt-sidecar.volumes" -}}
- name: jwt-sidecar-config
  configMap:
    name: {{ include "jwt-sidecar.fullname" . }}
- name: jwt-sidecar-tmp
  emptyDir:
    sizeLimit: 16Mi
{{- if include "jwt-sidecar.snapshotVolume" . }}
- name: jwt-sidecar-snapshot
  emptyDir:
    sizeLimit: {{ .Values.snapshot.sizeLimit }}
{{- end }}
{{- with .Values.tlsSecret.secretName }}
- name: jwt-sidecar-tls
  secret:
    secretName: {{ . }}
{{- end }}
{{- with include "jwt-sidecar.staticKeysSecretName" . }}
- name: jwt-sidecar-keys
  secret:
    secretName: {{ . }}
{{- end }}
{{- with .Values.sidecar.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The ConfigMap with sidecar.yaml. */}}
{{- define "jwt-sidecar.configmap" -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "jwt-sidecar.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "jwt-sidecar.labels" . | nindent 4 }}
data:
  sidecar.yaml: |
    # Rendered by the jwt-sidecar Helm chart from .Values.config (listen addresses from
    # sidecar.ports). Check it with: jwt-sidecar check-config --config sidecar.yaml
    {{- include "jwt-sidecar.config" . | nindent 4 }}
{{- end }}
