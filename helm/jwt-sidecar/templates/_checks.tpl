{{/*
Render-time checks (issue #14 §4): settings that the sidecar or the kubelet would refuse only
once the pod runs, refused by `helm template` / `helm install` with a message that says what to
change. Each one mirrors a rule of the sidecar or of Kubernetes; the sidecar's own check at
start-up (`check-config`) stays the authority, these only move the failure earlier.

  jwt-sidecar.checkNative       a native sidecar (restartPolicy: Always init container) needs
                                Kubernetes 1.29+ (.Capabilities.KubeVersion)
  jwt-sidecar.checkFetchUrls    issuers[].jwksUri / discoveryUrl / a discovery issuer: https
                                unless loopback or allowInsecureHttp (src/http/transport.ts)
  jwt-sidecar.checkHealthPath   the app's probe through the proxy port meets an `auth: none`
                                (or `optional`) route first (src/policy/routes.ts)
  jwt-sidecar.routeMatches      one route's path pattern against a path, as the sidecar matches
*/}}

{{/*
Restartable init containers are beta and on by default from Kubernetes 1.29 (KEP-753). An
older API server drops `restartPolicy: Always` from the init container, which then never
exits: the pod hangs in Init forever instead of failing, hence a render-time refusal.
*/}}
{{- define "jwt-sidecar.checkNative" -}}
{{- if and .Values.sidecar.native (semverCompare "<1.29.0-0" .Capabilities.KubeVersion.Version) }}
{{- fail (printf "sidecar.native needs Kubernetes 1.29 or later (restartable init containers); this cluster is %s: set sidecar.native=false" .Capabilities.KubeVersion.Version) }}
{{- end }}
{{- end }}

{{/*
"https unless loopback" (src/http/transport.ts, RFC 8725 §3.10): keys fetched over plain http
from another host can be swapped by anyone on the path, so the sidecar refuses such a URL at
start-up unless the issuer says allowInsecureHttp: true. Loopback is localhost, 127.0.0.0/8 and
::1 (inside a pod: the pod itself). A URL written with ${VAR} is resolved only at start-up, so
it is left to the sidecar's own check.
*/}}
{{- define "jwt-sidecar.checkFetchUrls" -}}
{{- range $i, $issuer := (default (list) (get (default (dict) .Values.config) "issuers")) }}
{{- /* sprig's get gives "" for a missing key: only a key that is there counts. */}}
{{- $allow := false }}
{{- if hasKey $issuer "allowInsecureHttp" }}
{{- $allow = index $issuer "allowInsecureHttp" }}
{{- end }}
{{- if not $allow }}
{{- $urls := list }}
{{- range $key := list "jwksUri" "discoveryUrl" }}
{{- with get $issuer $key }}
{{- $urls = append $urls (list $key . "") }}
{{- end }}
{{- end }}
{{- /* discovery: true without discoveryUrl fetches <issuer>/.well-known/openid-configuration (OIDC Discovery 1.0 §4). */}}
{{- if and (eq (toString (get $issuer "discovery")) "true") (not (get $issuer "discoveryUrl")) (get $issuer "issuer") }}
{{- $urls = append $urls (list "issuer" (get $issuer "issuer") " (with discovery: true the sidecar fetches <issuer>/.well-known/openid-configuration, which names the keys)") }}
{{- end }}
{{- range $urls }}
{{- $key := index . 0 }}
{{- $url := toString (index . 1) }}
{{- $why := index . 2 }}
{{- if and (hasPrefix "http://" (lower $url)) (not (contains "${" $url)) }}
{{- $host := lower (urlParse $url).hostname }}
{{- if not (or (eq $host "localhost") (eq $host "::1") (regexMatch "^127\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}$" $host)) }}
{{- fail (printf "config.issuers[%d].%s %q is plain http to %s, which is not loopback%s: anyone on the network path could replace the issuer's keys (RFC 8725 §3.10), and the sidecar refuses to start with it. Use an https:// URL, or set config.issuers[%d].allowInsecureHttp: true to accept that risk (an identity provider inside the cluster without TLS, say)" $i $key $url $host $why $i) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
"true" when a route's path pattern matches the path, else empty. Argument: (list route path).
The same rules as compilePathPattern and createRouteMatcher in src/policy/routes.ts: `/exact`,
`/prefix/**` (the prefix and everything below it), `*` is one segment; a route that protects
(auth required or deny, the default) matches any letter case and one trailing slash, a route
that admits without a token (none, optional) matches as written, unless caseSensitive says
otherwise.
*/}}
{{- define "jwt-sidecar.routeMatches" -}}
{{- $route := index . 0 }}
{{- $path := index . 1 }}
{{- $protects := has (default "required" (get $route "auth")) (list "required" "deny") }}
{{- $caseSensitive := not $protects }}
{{- if hasKey $route "caseSensitive" }}
{{- $caseSensitive = get $route "caseSensitive" }}
{{- end }}
{{- $pattern := toString (get $route "path") }}
{{- $prefix := hasSuffix "/**" $pattern }}
{{- $body := $pattern }}
{{- if $prefix }}
{{- $body = trimSuffix "/**" $pattern }}
{{- end }}
{{- if and $prefix (eq $body "") }}
{{- if hasPrefix "/" $path }}true{{ end }}
{{- else }}
{{- $parts := list }}
{{- range splitList "*" $body }}
{{- $parts = append $parts (regexQuoteMeta .) }}
{{- end }}
{{- $tail := "" }}
{{- if $prefix }}
{{- $tail = "(?:/.*)?" }}
{{- else if and $protects (not (hasSuffix "/" $pattern)) }}
{{- $tail = "/?" }}
{{- end }}
{{- if regexMatch (printf "^%s%s%s$" (ternary "" "(?i)" $caseSensitive) (join "[^/]+" $parts) $tail) $path }}true{{ end }}
{{- end }}
{{- end }}

{{/*
app.healthPath is probed by the kubelet through the sidecar's proxy port, without a token. The
first route that matches GET <path> (first match wins, no match is 403) must admit that:
`auth: none`, or `optional`. Anything else fails the probe forever and the pod never becomes
ready, which is far harder to read from `kubectl describe pod` than from this message.
*/}}
{{- define "jwt-sidecar.checkHealthPath" -}}
{{- $raw := .Values.app.healthPath }}
{{- if $raw }}
{{- /* Routes match the path only, never the query (src/policy/routes.ts). */}}
{{- $path := regexReplaceAll "[?#].*$" $raw "" }}
{{- $first := dict }}
{{- range $i, $route := (default (list) (get (default (dict) .Values.config) "routes")) }}
{{- if not $first }}
{{- $methods := list }}
{{- range (default (list) (get $route "methods")) }}
{{- $methods = append $methods (upper (toString .)) }}
{{- end }}
{{- if and (or (empty $methods) (has "GET" $methods)) (include "jwt-sidecar.routeMatches" (list $route $path)) }}
{{- $first = dict "index" $i "name" (toString (get $route "name")) "auth" (default "required" (get $route "auth")) }}
{{- end }}
{{- end }}
{{- end }}
{{- $fix := printf "add the route {name: health, path: %s, methods: [GET], auth: none} to config.routes before any route that matches it, or set app.healthPath to \"\" (no probe through the sidecar)" $path }}
{{- if not $first }}
{{- fail (printf "app.healthPath %q: no route in config.routes matches GET %s, so the sidecar answers the kubelet's readiness probe with 403 and the pod never becomes ready: %s" $raw $path $fix) }}
{{- else if not (has $first.auth (list "none" "optional")) }}
{{- fail (printf "app.healthPath %q: the first route in config.routes that matches GET %s is routes[%d] (%s, auth: %s), so the kubelet's readiness probe, which carries no token, gets %s and the pod never becomes ready: %s" $raw $path $first.index $first.name $first.auth (ternary "403" "401" (eq $first.auth "deny")) $fix) }}
{{- end }}
{{- end }}
{{- end }}
