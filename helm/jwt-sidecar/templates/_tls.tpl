{{/*
The proxy port's TLS (issue #13 §1, docs/how-it-works.md#tls-listener; RFC 6750 §5.3: bearer tokens only
over TLS). With tlsSecret.secretName the chart mounts that kubernetes.io/tls Secret as a
directory and points config.tls at its files, so the mount and the config have one source:

  config.tls.certFile      <tlsSecret.mountPath>/tls.crt
  config.tls.keyFile       <tlsSecret.mountPath>/tls.key
  config.tls.clientCaFile  <tlsSecret.mountPath>/ca.crt, only with tlsSecret.clientCa (mutual TLS)

A path the user wrote into config.tls for one of these keys must be the same path: two
sources that disagree fail the render rather than one silently winning. config.tls.minVersion, http2,
and a clientCaFile from elsewhere (an extra mount) without tlsSecret.clientCa, are the user's.
Without tlsSecret, a config.tls must name its own files (mounted with sidecar.extraVolumes).

  jwt-sidecar.applyTls   (list $root $cfg): sets $cfg.tls as above, or fails
  jwt-sidecar.scheme     HTTPS when the proxy port speaks TLS, else HTTP (for probes through it)
  jwt-sidecar.mutualTls  "true" when the proxy port requires client certificates, else empty
*/}}

{{- define "jwt-sidecar.applyTls" -}}
{{- $root := index . 0 }}
{{- $cfg := index . 1 }}
{{- $secret := $root.Values.tlsSecret }}
{{- $tls := default (dict) (get $cfg "tls") }}
{{- if $secret.secretName }}
{{- $dir := clean $secret.mountPath }}
{{- $files := dict "certFile" (printf "%s/tls.crt" $dir) "keyFile" (printf "%s/tls.key" $dir) }}
{{- if $secret.clientCa }}
{{- $_ := set $files "clientCaFile" (printf "%s/ca.crt" $dir) }}
{{- end }}
{{- range $key := list "certFile" "keyFile" "clientCaFile" }}
{{- if hasKey $files $key }}
{{- $want := get $files $key }}
{{- if and (hasKey $tls $key) (ne (toString (get $tls $key)) $want) }}
{{- fail (printf "config.tls.%s is %q, but tlsSecret.secretName (%s) mounts the certificate at %s, so the chart sets config.tls.%s to %q: leave config.tls.%s unset, or drop tlsSecret and mount your own files" $key (toString (get $tls $key)) $secret.secretName $dir $key $want $key) }}
{{- end }}
{{- $_ := set $tls $key $want }}
{{- end }}
{{- end }}
{{- $_ := set $cfg "tls" $tls }}
{{- else }}
{{- if $secret.clientCa }}
{{- fail "tlsSecret.clientCa needs tlsSecret.secretName: ca.crt is read from that Secret" }}
{{- end }}
{{- if and (hasKey $cfg "tls") (not (and (get $tls "certFile") (get $tls "keyFile"))) }}
{{- fail "config.tls needs certFile and keyFile: set tlsSecret.secretName (the chart mounts the Secret and sets both), or mount your own files with sidecar.extraVolumes and name them" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "jwt-sidecar.scheme" -}}
{{- if or .Values.tlsSecret.secretName (hasKey (default (dict) .Values.config) "tls") }}HTTPS{{ else }}HTTP{{ end }}
{{- end }}

{{- define "jwt-sidecar.mutualTls" -}}
{{- if or (and .Values.tlsSecret.secretName .Values.tlsSecret.clientCa) (dig "tls" "clientCaFile" "" (default (dict) .Values.config)) }}true{{ end }}
{{- end }}
