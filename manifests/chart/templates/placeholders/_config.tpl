{{- /*
  The placeholder controller's configuration (the file `scheduler-extender placeholders
  --config` reads). Pools not fully specified take the user pods' scheduling constraints, so a
  placeholder lands where a user would and a user can take its place.
*/}}
{{- define "se.placeholders.config" -}}
{{- $up := .Values.scheduling.userPlaceholder }}
{{- $su := .Values.singleuser }}
{{- $requests := dict }}
{{- if and $up.resources $up.resources.requests }}
{{- $requests = $up.resources.requests }}
{{- else }}
{{- with $su.cpu.guarantee }}{{ $_ := set $requests "cpu" . }}{{ end }}
{{- with $su.memory.guarantee }}{{ $_ := set $requests "memory" . }}{{ end }}
{{- end }}
{{- $userAffinity := include "se.userAffinity" . | fromYaml | default dict }}
{{- $userTolerations := concat .Values.scheduling.userPods.tolerations $su.extraTolerations | default list }}
{{- $pools := $up.pools }}
{{- if not $pools }}
{{- $pools = list (dict "name" "default" "count" (dict "mode" "static" "static" ($up.replicas | int))) }}
{{- end }}
{{- $rendered := list }}
{{- range $pool := $pools }}
{{- $count := $pool.count | default dict }}
{{- $out := dict
      "name" $pool.name
      "size" (hasKey $pool "size" | ternary $pool.size "user")
      "requests" (hasKey $pool "requests" | ternary $pool.requests $requests)
      "nodeSelector" (hasKey $pool "nodeSelector" | ternary $pool.nodeSelector ($su.nodeSelector | default dict))
      "tolerations" (hasKey $pool "tolerations" | ternary $pool.tolerations $userTolerations)
      "affinity" (hasKey $pool "affinity" | ternary $pool.affinity $userAffinity)
      "count" (dict
        "mode" (hasKey $count "mode" | ternary $count.mode "static")
        "static" (hasKey $count "static" | ternary $count.static 0)
        "min" (hasKey $count "min" | ternary $count.min 0)
        "max" (hasKey $count "max" | ternary $count.max 20)
        "safety" (hasKey $count "safety" | ternary $count.safety 1.5)
        "windows" (hasKey $count "windows" | ternary $count.windows list)) }}
{{- $rendered = append $rendered $out }}
{{- end }}
{{- $schedulerName := .Values.scheduling.userScheduler.enabled | ternary .Values.scheduling.userScheduler.schedulerName "default-scheduler" }}
{{- dict
      "namespace" .Release.Namespace
      "leaseName" (include "se.placeholders.lease" .)
      "schedulerName" $schedulerName
      "priorityClassName" (include "se.placeholderPriority.fullname" .)
      "image" (include "se.image" (dict "root" . "image" $up.image))
      "resyncSeconds" ($up.resyncSeconds | int)
      "pools" $rendered
    | toYaml }}
{{- end }}
