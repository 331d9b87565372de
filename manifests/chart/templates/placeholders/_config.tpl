{{- /*
  The placeholder controller's configuration (the file `scheduler-extender placeholders
  --config` reads). Pools not fully specified take the user pods' scheduling constraints, so a
  placeholder lands where a user would and a user can take its place. The placeholders are
  owned by the controller's Deployment: uninstalling or disabling the controller has them
  garbage-collected. Without explicit pools, the default pool is adaptive unless z2jh's
  `replicas` is set (then static).
*/}}
{{- define "se.placeholders.config" -}}
{{- $up := .Values.scheduling.userPlaceholder }}
{{- $su := .Values.singleuser }}
{{- $requests := dict }}
{{- if and $up.resources $up.resources.requests }}
{{- $requests = $up.resources.requests }}
{{- else }}
{{- with $su.cpu.guarantee }}{{ $_ := set $requests "cpu" . }}{{ end }}
{{- with $su.memory.guarantee }}{{ $_ := set $requests "memory" (include "se.kubespawnerBytes" .) }}{{ end }}
{{- range $name, $value := ($su.extraResource.guarantees | default dict) }}{{ $_ := set $requests $name (toString $value) }}{{ end }}
{{- end }}
{{- $userAffinity := include "se.userAffinity" . | fromYaml | default dict }}
{{- $userTolerations := concat .Values.scheduling.userPods.tolerations $su.extraTolerations | default list }}
{{- $pools := $up.pools }}
{{- if not $pools }}
{{- if kindIs "invalid" $up.replicas }}
{{- $pools = list (dict "name" "default" "count" ($up.count | default dict)) }}
{{- else }}
{{- $pools = list (dict "name" "default" "count" (dict "mode" "static" "static" ($up.replicas | int))) }}
{{- end }}
{{- end }}
{{- $nodeSized := false }}
{{- $rendered := list }}
{{- range $pool := $pools }}
{{- $count := $pool.count | default dict }}
{{- $out := dict
      "name" $pool.name
      "size" (hasKey $pool "size" | ternary $pool.size "user")
      "requests" (hasKey $pool "requests" | ternary $pool.requests $requests)
      "nodeSelector" (hasKey $pool "nodeSelector" | ternary $pool.nodeSelector ($su.nodeSelector | default dict))
      "tolerations" (concat (hasKey $pool "tolerations" | ternary $pool.tolerations $userTolerations) (include "se.startupTaint.tolerations" $ | fromYamlArray) | default list)
      "affinity" (hasKey $pool "affinity" | ternary $pool.affinity $userAffinity)
      "count" (dict
        "mode" (hasKey $count "mode" | ternary $count.mode "static")
        "static" (hasKey $count "static" | ternary $count.static 0)
        "min" (hasKey $count "min" | ternary $count.min 0)
        "max" (hasKey $count "max" | ternary $count.max 20)
        "safety" (hasKey $count "safety" | ternary $count.safety 1.5)
        "windows" (hasKey $count "windows" | ternary $count.windows list)) }}
{{- range $key := list "rateWindowSeconds" "burstWindowSeconds" "burstMinArrivals" "scaleDownDelaySeconds" "nodeReadySeconds" "nodeReadyMinSeconds" "nodeReadyMaxSeconds" "readySamples" "bootSeconds" "imagePullSeconds" "forecastMinWeeks" "forecastAlpha" }}
{{- if hasKey $count $key }}{{ $_ := set $out.count $key (get $count $key) }}{{ end }}
{{- end }}
{{- range $key := list "nodeRequests" "nodeFraction" "images" "userLabels" }}
{{- if hasKey $pool $key }}{{ $_ := set $out $key (get $pool $key) }}{{ end }}
{{- end }}
{{- if eq $out.size "node" }}{{ $nodeSized = true }}{{ end }}
{{- $rendered = append $rendered $out }}
{{- end }}
{{- $startupTaint := dict }}
{{- if .Values.scheduling.startupTaint.enabled }}
{{- $startupTaint = include "se.startupTaint.config" . | fromYaml }}
{{- end }}
{{- $schedulerName := .Values.scheduling.userScheduler.enabled | ternary .Values.scheduling.userScheduler.schedulerName "default-scheduler" }}
{{- $config := dict
      "namespace" .Release.Namespace
      "leaseName" (include "se.placeholders.lease" .)
      "schedulerName" $schedulerName
      "priorityClassName" (include "se.placeholderPriority.fullname" .)
      "image" (include "se.image" (dict "root" . "image" $up.image))
      "resyncSeconds" ($up.resyncSeconds | int)
      "pools" $rendered
      "owner" (dict "apiVersion" "apps/v1" "kind" "Deployment" "name" (include "se.placeholders.fullname" .))
      "users" (dict "namespace" .Release.Namespace "labelSelector" "component=singleuser-server")
      "timezone" ($up.timezone | default "UTC")
      "metricsPort" ($up.controller.metricsPort | int)
      "measureNodeOverhead" $nodeSized
      "backend" ($up.backend | default "pods")
      "capacityBuffer" (dict
        "fallback" ($up.capacityBuffer.fallback | default "pods")
        "provisioningStrategy" ($up.capacityBuffer.provisioningStrategy | default "buffer.x-k8s.io/active-capacity")) }}
{{- with $startupTaint }}{{ $_ := set $config "startupTaint" . }}{{ end }}
{{- $config | toYaml }}
{{- end }}
