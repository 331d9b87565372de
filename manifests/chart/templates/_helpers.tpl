{{- /* Names ------------------------------------------------------------------------------ */}}

{{- define "se.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- /* The release's base name: the release name when it already contains the chart name. */}}
{{- define "se.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "se.userScheduler.fullname" -}}{{ include "se.fullname" . }}-user-scheduler{{- end }}
{{- define "se.userScheduler.lease" -}}{{ include "se.fullname" . }}-user-scheduler{{- end }}
{{- define "se.placeholders.fullname" -}}{{ include "se.fullname" . }}-placeholders{{- end }}
{{- define "se.placeholders.lease" -}}{{ include "se.fullname" . }}-placeholders{{- end }}
{{- define "se.continuousPuller.fullname" -}}{{ include "se.fullname" . }}-continuous-image-puller{{- end }}
{{- define "se.hookPuller.fullname" -}}{{ include "se.fullname" . }}-hook-image-puller{{- end }}
{{- define "se.awaiter.fullname" -}}{{ include "se.fullname" . }}-hook-image-awaiter{{- end }}
{{- define "se.pullerChecksum.fullname" -}}{{ include "se.fullname" . }}-image-puller{{- end }}
{{- define "se.defaultPriority.fullname" -}}{{ include "se.fullname" . }}-default-priority{{- end }}
{{- define "se.pullerPriority.fullname" -}}{{ include "se.fullname" . }}-image-puller{{- end }}
{{- define "se.placeholderPriority.fullname" -}}{{ include "se.fullname" . }}-user-placeholder{{- end }}

{{- define "se.userScheduler.serviceAccountName" -}}
{{- $sa := .Values.scheduling.userScheduler.serviceAccount }}
{{- if $sa.create }}{{ default (include "se.userScheduler.fullname" .) $sa.name }}{{ else }}{{ default "default" $sa.name }}{{ end }}
{{- end }}

{{- define "se.placeholders.serviceAccountName" -}}
{{- $sa := .Values.scheduling.userPlaceholder.controller.serviceAccount }}
{{- if $sa.create }}{{ default (include "se.placeholders.fullname" .) $sa.name }}{{ else }}{{ default "default" $sa.name }}{{ end }}
{{- end }}

{{- define "se.awaiter.serviceAccountName" -}}
{{- $sa := .Values.prePuller.hook.serviceAccount }}
{{- if $sa.create }}{{ default (include "se.awaiter.fullname" .) $sa.name }}{{ else }}{{ default "default" $sa.name }}{{ end }}
{{- end }}

{{- /* Labels: call with (dict "root" $ "component" "user-scheduler") ------------------------ */}}

{{- define "se.selectorLabels" -}}
app.kubernetes.io/name: {{ include "se.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "se.labels" -}}
{{ include "se.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- end }}

{{- /* Images: call with (dict "root" $ "image" .Values.x.image) ---------------------------- */}}

{{- define "se.image" -}}
{{- if not .image.name }}{{ fail "an image name is empty: set image.name (and the other *.image.name values)" }}{{ end }}
{{- .image.name }}:{{ .image.tag | default .root.Chart.AppVersion }}
{{- end }}

{{- /* The cluster's Kubernetes version as an upstream release tag, v<major>.<minor>.<patch>:
      .Capabilities.KubeVersion.Version without a vendor suffix (v1.31.4-eks-2d5f260 ->
      v1.31.4, v1.30.5-gke.1014001 -> v1.30.5, v1.33.2+k3s1 -> v1.33.2). Helm reads it from
      the API server on install and upgrade; `helm template` uses --kube-version, or Helm's
      built-in default without it. .Capabilities.KubeVersion.Minor is not used: managed
      clusters report it with a "+" ("31+"). A version without a patch gives x.y.0. */}}
{{- define "se.kubeVersionTag" -}}
{{- $version := .Capabilities.KubeVersion.Version | toString }}
{{- $minor := regexFind "^v?[0-9]+\\.[0-9]+" $version }}
{{- if not $minor }}
{{- fail (printf "cannot derive a kube-scheduler tag from the Kubernetes version %q: set scheduling.userScheduler.image.tag" $version) }}
{{- end }}
{{- /* `helm template --kube-version 1.32` gives no patch: x.y.0 is always released. */}}
{{- $patch := regexFind "^\\.[0-9]+" (trimPrefix $minor $version) | default ".0" }}
{{- printf "v%s%s" (trimPrefix "v" $minor) $patch }}
{{- end }}

{{- /* kube-scheduler's tag: scheduling.userScheduler.image.tag, or when empty the cluster's
      own version, so the scheduler is never newer than the API server (version skew policy:
      https://kubernetes.io/releases/version-skew-policy/#kube-controller-manager-kube-scheduler-and-cloud-controller-manager). */}}
{{- define "se.userScheduler.imageTag" -}}
{{- $tag := .Values.scheduling.userScheduler.image.tag }}
{{- if not $tag }}
{{- $tag = include "se.kubeVersionTag" . }}
{{- if gt (include "se.minorNumber" $tag | int) (include "se.minorNumber" (include "se.userScheduler.newestMinor" .) | int) }}
{{- fail (printf "Kubernetes %s is newer than v%s, the newest kube-scheduler this chart's RBAC covers (a newer one may wait forever for objects it may not list): set scheduling.userScheduler.image.tag to a v%s release (the version skew policy allows one minor older than the API server), or use a newer chart" .Capabilities.KubeVersion.Version (include "se.userScheduler.newestMinor" .) (include "se.userScheduler.newestMinor" .)) }}
{{- end }}
{{- end }}
{{- $tag }}
{{- end }}

{{- /* The newest kube-scheduler minor whose needs the user-scheduler's ClusterRole was checked
      against (tests/chart/test_rbac.py: upstream's roles at v1.36 with default feature
      gates). A newer release may watch more (v1.37 makes DRADeviceTaintRules GA), and a
      scheduler that may not list what it watches never becomes ready. */}}
{{- define "se.userScheduler.newestMinor" -}}1.36{{- end }}

{{- /* "<major>.<minor>" of a version or tag such as v1.31.4, or "" when it has none. */}}
{{- define "se.minorOf" -}}
{{- regexFind "[0-9]+\\.[0-9]+" (toString .) }}
{{- end }}

{{- /* A version's major*1000+minor, for comparisons (0 when it has none). */}}
{{- define "se.minorNumber" -}}
{{- $parts := splitList "." (include "se.minorOf" .) }}
{{- if eq (len $parts) 2 }}{{ add (mul (index $parts 0 | int) 1000) (index $parts 1 | int) }}{{ else }}0{{ end }}
{{- end }}

{{- define "se.imagePullPolicy" -}}
{{- with .pullPolicy }}imagePullPolicy: {{ . }}{{ end }}
{{- end }}

{{- /* imagePullSecrets of a list of image dicts, deduplicated. */}}
{{- define "se.imagePullSecrets" -}}
{{- $names := list }}
{{- range . }}
{{- range .pullSecrets }}
{{- if kindIs "map" . }}{{ $names = append $names .name }}{{ else }}{{ $names = append $names . }}{{ end }}
{{- end }}
{{- end }}
{{- with $names | uniq }}
{{- $secrets := list }}
{{- range . }}{{ $secrets = append $secrets (dict "name" .) }}{{ end }}
{{- dict "imagePullSecrets" $secrets | toYaml }}
{{- end }}
{{- end }}

{{- /* Scheduling ------------------------------------------------------------------------- */}}

{{- /* Tolerations of user pods: the dedicated-node taints plus singleuser.extraTolerations. */}}
{{- define "se.userTolerations" -}}
{{- concat .Values.scheduling.userPods.tolerations .Values.singleuser.extraTolerations | toYaml }}
{{- end }}

{{- /* Node affinity toward hub.jupyter.org/node-purpose=<purpose>: call with
      (dict "match" "prefer|require|ignore" "purpose" "user|core"). Empty when ignore. */}}
{{- define "se.purposeNodeAffinity" -}}
{{- $term := dict "matchExpressions" (list (dict "key" "hub.jupyter.org/node-purpose" "operator" "In" "values" (list .purpose))) }}
{{- if eq .match "require" -}}
nodeAffinity:
  requiredDuringSchedulingIgnoredDuringExecution:
    nodeSelectorTerms:
      {{- list $term | toYaml | nindent 6 }}
{{- else if eq .match "prefer" -}}
nodeAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      preference:
        {{- $term | toYaml | nindent 8 }}
{{- end }}
{{- end }}

{{- /* A z2jh memory guarantee as the quantity KubeSpawner puts in the user pod. KubeSpawner's
      ByteSpecification reads K/M/G/T as powers of 1024 (jupyterhub/kubespawner
      kubespawner/traitlets.py), while Kubernetes reads "1G" as 10^9 bytes: copied verbatim, a
      placeholder would be 7 % smaller than the user who preempts it and the user might not fit
      in its place. So "1G" becomes "1Gi"; plain numbers are bytes; anything else is kept. */}}
{{- define "se.kubespawnerBytes" -}}
{{- if kindIs "string" . }}
{{- if regexMatch "^[0-9]*[.]?[0-9]+[KMGT]$" . }}{{ printf "%si" . }}{{ else }}{{ . }}{{ end }}
{{- else }}{{ int64 . }}{{ end }}
{{- end }}

{{- define "se.coreAffinity" -}}
{{- include "se.purposeNodeAffinity" (dict "match" .Values.scheduling.corePods.nodeAffinity.matchNodePurpose "purpose" "core") }}
{{- end }}

{{- define "se.userAffinity" -}}
{{- include "se.purposeNodeAffinity" (dict "match" .Values.scheduling.userPods.nodeAffinity.matchNodePurpose "purpose" "user") }}
{{- end }}

{{- /* The host kube-scheduler dials to reach the extender listening on `host`. */}}
{{- define "se.extender.dialHost" -}}
{{- $host := .Values.scheduling.userScheduler.extender.host | toString }}
{{- if or (eq $host "") (eq $host "0.0.0.0") }}127.0.0.1
{{- else if eq $host "::" }}[::1]
{{- else if contains ":" $host }}[{{ $host }}]
{{- else }}{{ $host }}
{{- end }}
{{- end }}

{{- define "se.extender.url" -}}
http://{{ include "se.extender.dialHost" . }}:{{ .Values.scheduling.userScheduler.extender.port | int }}
{{- end }}

{{- /* The extender's probe. On loopback (the default) the kubelet cannot reach it, so the
      probe runs inside the container, without any HTTP(S)_PROXY the pod may have been given
      (urllib would send even 127.0.0.1 to it). Listening on all addresses, the kubelet asks
      directly. The in-container probe gives up after .seconds without an answer (the
      kubelet's timeoutSeconds must leave room for the interpreter to start on top of it).
      Both ways the request goes through the event loop that serves the verbs, so a frozen
      loop fails it. Call with (dict "root" $ "path" "/healthz" "seconds" 2). */}}
{{- define "se.extender.probe" -}}
{{- $host := .root.Values.scheduling.userScheduler.extender.host | toString }}
{{- if has $host (list "" "0.0.0.0" "::") }}
httpGet:
  path: {{ .path }}
  port: extender
{{- else }}
exec:
  command:
    - python
    - -c
    - "import sys, urllib.request as u; u.build_opener(u.ProxyHandler({})).open(sys.argv[1], timeout=float(sys.argv[2]))"
    - {{ include "se.extender.url" .root }}{{ .path }}
    - {{ .seconds | quote }}
{{- end }}
{{- end }}

{{- /* A writable /tmp for containers with a read-only root filesystem. */}}
{{- define "se.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- end }}

{{- define "se.tmpVolumeMount" -}}
- name: tmp
  mountPath: /tmp
{{- end }}

{{- /* The startup taint's toleration (a YAML list, empty when the feature is off): for
      placeholders and image pullers, never for user pods. Any value and effect of the key. */}}
{{- define "se.startupTaint.tolerations" -}}
{{- $st := .Values.scheduling.startupTaint }}
{{- if $st.enabled }}
{{- list (dict "key" $st.key "operator" "Exists") | toYaml }}
{{- else }}
{{- list | toYaml }}
{{- end }}
{{- end }}

{{- /* The placeholder controller's `startupTaint` block (docs/placeholders.md). */}}
{{- define "se.startupTaint.config" -}}
{{- $st := .Values.scheduling.startupTaint }}
{{- $images := $st.images }}
{{- if not $images }}
{{- $images = list }}
{{- range include "se.imagePuller.images" . | fromYamlArray }}{{ $images = append $images .image }}{{ end }}
{{- end }}
{{- $out := dict "key" $st.key "images" $images "nodeSelector" ($st.nodeSelector | default .Values.singleuser.nodeSelector | default dict) }}
{{- if not (kindIs "invalid" $st.maxWaitSeconds) }}{{ $_ := set $out "maxWaitSeconds" $st.maxWaitSeconds }}{{ end }}
{{- if .Values.prePuller.continuous.enabled }}
{{- $parts := list }}
{{- range $k, $v := include "se.selectorLabels" (dict "root" . "component" "continuous-image-puller") | fromYaml }}
{{- $parts = append $parts (printf "%s=%s" $k $v) }}
{{- end }}
{{- $_ := set $out "pullerSelector" (join "," $parts) }}
{{- end }}
{{- $out | toYaml }}
{{- end }}
