{{/*
Storage for the key snapshot (issue #13 §3, docs/keys.md#cold-starts-during-an-idp-outage-the-key-snapshot). The
image's root filesystem is read-only, so config.issuers[].snapshot.file must be written to a
writable volume; an emptyDir is the right one: it survives the sidecar's restarts within the
pod (which is the point: a sidecar restarted during an IdP outage still has keys), it is this
pod's alone (the file is not signed, so nobody else may write it), and it goes with the pod.

The chart mounts an emptyDir at snapshot.mountPath when some issuer's snapshot.file is in that
directory, and fails the render when a snapshot.file's directory is no writable mount of the
sidecar container, rather than letting every write fail at runtime (jwks.snapshot_write_failed).
The directory must be the mount itself: an emptyDir starts empty and the sidecar creates no
directories (it writes a temporary file next to the snapshot and renames it).

  jwt-sidecar.snapshotDirs    the directories of the config's snapshot files, a JSON list
  jwt-sidecar.snapshotVolume  "true" when the emptyDir is mounted, else empty
  jwt-sidecar.checkSnapshots  fails when a snapshot file cannot be written
*/}}

{{/* The sidecar reads relative paths against its config file's directory (src/config/convert.ts). */}}
{{- define "jwt-sidecar.configDir" -}}
/etc/jwt-sidecar
{{- end }}

{{- define "jwt-sidecar.snapshotDirs" -}}
{{- $dirs := list }}
{{- range $issuer := (default (list) (get (default (dict) .Values.config) "issuers")) }}
{{- with dig "snapshot" "file" "" $issuer }}
{{- $file := toString . }}
{{- if not (isAbs $file) }}
{{- $file = printf "%s/%s" (include "jwt-sidecar.configDir" $) $file }}
{{- end }}
{{- $dirs = append $dirs (dir (clean $file)) }}
{{- end }}
{{- end }}
{{- toJson $dirs }}
{{- end }}

{{- define "jwt-sidecar.snapshotVolume" -}}
{{- if has (clean .Values.snapshot.mountPath) (include "jwt-sidecar.snapshotDirs" . | fromJsonArray) }}true{{ end }}
{{- end }}

{{/*
The sidecar container's writable directories: /tmp, snapshot.mountPath (mounted whenever a
snapshot file is in it), and each sidecar.extraVolumeMounts entry that is not readOnly and whose
volume, when this chart knows it (sidecar.extraVolumes, app.volumes), is not one the kubelet
always mounts read-only (configMap, secret, projected, downwardAPI). A JSON list.
*/}}
{{- define "jwt-sidecar.writableDirs" -}}
{{- $dirs := list "/tmp" (clean .Values.snapshot.mountPath) }}
{{- $volumes := concat (default (list) .Values.sidecar.extraVolumes) (ternary (default (list) .Values.app.volumes) (list) .Values.app.enabled) }}
{{- range $mount := .Values.sidecar.extraVolumeMounts }}
{{- if not $mount.readOnly }}
{{- $readOnlyKind := false }}
{{- range $volume := $volumes }}
{{- if and (eq $volume.name $mount.name) (or $volume.configMap $volume.secret $volume.projected $volume.downwardAPI) }}
{{- $readOnlyKind = true }}
{{- end }}
{{- end }}
{{- if not $readOnlyKind }}
{{- $dirs = append $dirs (clean $mount.mountPath) }}
{{- end }}
{{- end }}
{{- end }}
{{- toJson $dirs }}
{{- end }}

{{- define "jwt-sidecar.checkSnapshots" -}}
{{- $writable := include "jwt-sidecar.writableDirs" . | fromJsonArray }}
{{- $mountPath := clean .Values.snapshot.mountPath }}
{{- range $i, $issuer := (default (list) (get (default (dict) .Values.config) "issuers")) }}
{{- with dig "snapshot" "file" "" $issuer }}
{{- $file := toString . }}
{{- if contains "${" $file }}
{{- fail (printf "config.issuers[%d].snapshot.file %q: write the path without ${…}, so the chart can check that it is on a writable volume (the root filesystem is read-only); use %s/%s.jwks.json" $i $file $mountPath (get $issuer "name")) }}
{{- end }}
{{- $resolved := ternary $file (printf "%s/%s" (include "jwt-sidecar.configDir" $) $file) (isAbs $file) | clean }}
{{- if not (has (dir $resolved) $writable) }}
{{- fail (printf "config.issuers[%d].snapshot.file %q: %s is not a writable mount of the sidecar (its root filesystem is read-only, so every snapshot write would fail); put the file directly in snapshot.mountPath, where the chart mounts an emptyDir: %s/%s.jwks.json" $i $file (dir $resolved) $mountPath (get $issuer "name")) }}
{{- end }}
{{- end }}
{{- end }}
{{- if include "jwt-sidecar.snapshotVolume" . }}
{{- range $mount := .Values.sidecar.extraVolumeMounts }}
{{- if eq (clean $mount.mountPath) $mountPath }}
{{- fail (printf "sidecar.extraVolumeMounts mounts %s at %s, where the chart mounts the snapshot emptyDir (snapshot.mountPath): choose another snapshot.mountPath" $mount.name $mountPath) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
