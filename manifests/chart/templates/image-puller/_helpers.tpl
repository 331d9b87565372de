{{- /*
  The images every user node should have, from the same sources as z2jh's pullers: the
  singleuser image, network-tools (an init container of every user pod while
  cloudMetadata.blockWithIptables is on), the images of singleuser init and extra containers,
  profileList kubespawner_override images (also inside profile_options choices) and
  prePuller.extraImages. Returns a YAML list of {name, image}, each image once.
*/}}
{{- define "se.imagePuller.images" -}}
{{- $su := .Values.singleuser }}
{{- $out := list }}
{{- $seen := dict }}
{{- $add := list }}
{{- $add = append $add (list "singleuser" (include "se.image" (dict "root" . "image" $su.image))) }}
{{- if $su.cloudMetadata.blockWithIptables }}
{{- $add = append $add (list "network-tools" (include "se.image" (dict "root" . "image" $su.networkTools.image))) }}
{{- end }}
{{- range $i, $c := $su.initContainers }}
{{- $add = append $add (list (printf "init-%d" $i) $c.image) }}
{{- end }}
{{- range $i, $c := $su.extraContainers }}
{{- $add = append $add (list (printf "extra-container-%d" $i) $c.image) }}
{{- end }}
{{- if .Values.prePuller.pullProfileListImages }}
{{- range $i, $profile := $su.profileList }}
{{- with $profile.kubespawner_override }}
{{- with .image }}
{{- $add = append $add (list (printf "profile-%d" $i) .) }}
{{- end }}
{{- end }}
{{- $n := 0 }}
{{- range $option, $spec := $profile.profile_options }}
{{- range $choice, $choiceSpec := $spec.choices }}
{{- with $choiceSpec.kubespawner_override }}
{{- with .image }}
{{- $add = append $add (list (printf "profile-%d-choice-%d" $i $n) .) }}
{{- $n = add1 $n }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- range $key, $image := .Values.prePuller.extraImages }}
{{- $slug := regexReplaceAll "[^a-z0-9-]+" (lower $key) "-" | trunc 40 | trimAll "-" }}
{{- $add = append $add (list (printf "extra-%s" $slug) (include "se.image" (dict "root" $ "image" $image))) }}
{{- end }}
{{- range $add }}
{{- $image := index . 1 | toString }}
{{- if and $image (not (hasKey $seen $image)) }}
{{- $_ := set $seen $image true }}
{{- $out = append $out (dict "name" (printf "pull-%s" (index . 0)) "image" $image) }}
{{- end }}
{{- end }}
{{- $out | toYaml }}
{{- end }}

{{- /* Where pullers run: exactly where user pods may run, plus new nodes that still carry the
      startup taint (pulling there is what the taint waits for). */}}
{{- define "se.imagePuller.placement" -}}
{{- $placement := dict }}
{{- with concat .Values.scheduling.userPods.tolerations .Values.singleuser.extraTolerations .Values.prePuller.extraTolerations (include "se.startupTaint.tolerations" . | fromYamlArray) }}
{{- $_ := set $placement "tolerations" . }}
{{- end }}
{{- with .Values.singleuser.nodeSelector }}{{ $_ := set $placement "nodeSelector" . }}{{ end }}
{{- /* A preferred affinity means nothing to a DaemonSet; a required one restricts it. */}}
{{- if eq .Values.scheduling.userPods.nodeAffinity.matchNodePurpose "require" }}
{{- $_ := set $placement "affinity" (include "se.userAffinity" . | fromYaml) }}
{{- end }}
{{- with $placement }}{{ toYaml . }}{{ end }}
{{- end }}

{{- /* Changes when what the hook puller would pull, or where, changes. */}}
{{- define "se.imagePuller.checksum" -}}
{{- dict "images" (include "se.imagePuller.images" . | fromYamlArray) "placement" (include "se.imagePuller.placement" . | fromYaml | default dict) "pause" (include "se.image" (dict "root" . "image" .Values.prePuller.pause.image)) | toJson | sha256sum }}
{{- end }}

{{- /*
  Non-empty when the hook puller and awaiter should run: the hook is enabled and, with
  pullOnlyOnChanges, the images differ from those recorded by the last release. Offline
  renders (helm template) cannot look the record up and always include the hook.
*/}}
{{- define "se.imagePuller.hook.install" -}}
{{- $hook := .Values.prePuller.hook }}
{{- if $hook.enabled }}
{{- if $hook.pullOnlyOnChanges }}
{{- $recorded := lookup "v1" "ConfigMap" .Release.Namespace (include "se.pullerChecksum.fullname" .) | default dict }}
{{- $old := get ($recorded.data | default dict) "hook-image-puller-checksum" }}
{{- if ne $old (include "se.imagePuller.checksum" .) }}changed{{ end }}
{{- else }}always{{ end }}
{{- end }}
{{- end }}

{{- /* A DaemonSet of pullers: call with (dict "root" $ "hook" true|false). */}}
{{- define "se.imagePuller.daemonset" -}}
{{- $root := .root }}
{{- $pp := $root.Values.prePuller }}
{{- $component := .hook | ternary "hook-image-puller" "continuous-image-puller" }}
{{- $selector := include "se.selectorLabels" (dict "root" $root "component" $component) }}
{{- $priorityClass := "" }}
{{- if $root.Values.scheduling.podPriority.enabled }}
{{- $priorityClass = include "se.pullerPriority.fullname" $root }}
{{- /* A pre-install hook runs before the release's PriorityClasses exist: use the class only
      once it is there (an upgrade), else the pods would be refused admission. */}}
{{- if and .hook (not (lookup "scheduling.k8s.io/v1" "PriorityClass" "" $priorityClass)) }}
{{- $priorityClass = "" }}
{{- end }}
{{- end }}
{{- $images := list $pp.pause.image $root.Values.singleuser.image $root.Values.singleuser.networkTools.image }}
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: {{ .hook | ternary (include "se.hookPuller.fullname" $root) (include "se.continuousPuller.fullname" $root) }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "se.labels" (dict "root" $root "component" $component) | nindent 4 }}
  {{- if .hook }}
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
    helm.sh/hook-weight: "-10"
  {{- end }}
spec:
  selector:
    matchLabels:
      {{- $selector | nindent 6 }}
  updateStrategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: 100%
  {{- if not (kindIs "invalid" $pp.revisionHistoryLimit) }}
  revisionHistoryLimit: {{ $pp.revisionHistoryLimit }}
  {{- end }}
  template:
    metadata:
      labels:
        {{- $selector | nindent 8 }}
        {{- with $pp.labels }}
        {{- . | toYaml | nindent 8 }}
        {{- end }}
      {{- with $pp.annotations }}
      annotations:
        {{- . | toYaml | nindent 8 }}
      {{- end }}
    spec:
      {{- with $priorityClass }}
      priorityClassName: {{ . }}
      {{- end }}
      {{- with include "se.imagePuller.placement" $root }}{{ . | nindent 6 }}{{ end }}
      terminationGracePeriodSeconds: 0
      automountServiceAccountToken: false
      enableServiceLinks: false
      securityContext:
        runAsNonRoot: true
        seccompProfile:
          type: RuntimeDefault
      {{- with include "se.imagePullSecrets" $images }}{{ . | nindent 6 }}{{ end }}
      initContainers:
        {{- range include "se.imagePuller.images" $root | fromYamlArray }}
        - name: {{ .name }}
          image: {{ .image }}
          # Only the pull matters; a shell that exits at once is in nearly every user image.
          command: ["/bin/sh", "-c", "exit 0"]
          resources:
            {{- $pp.resources | toYaml | nindent 12 }}
          securityContext:
            {{- $pp.containerSecurityContext | toYaml | nindent 12 }}
        {{- end }}
      containers:
        - name: pause
          image: {{ include "se.image" (dict "root" $root "image" $pp.pause.image) }}
          {{- with include "se.imagePullPolicy" $pp.pause.image }}{{ . | nindent 10 }}{{ end }}
          resources:
            {{- $pp.resources | toYaml | nindent 12 }}
          securityContext:
            {{- $pp.pause.containerSecurityContext | toYaml | nindent 12 }}
{{- end }}
