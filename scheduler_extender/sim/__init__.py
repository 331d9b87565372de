"""The simulator: a discrete-event model of a JupyterHub cluster (users, kube-scheduler, Cluster
Autoscaler, image pulls, placeholders) that calls the very same core functions as the service.

Modules: ``scenario`` (validated scenario files), ``workload`` (users, traces, lower bound),
``plugins`` and ``scheduler`` (the kube-scheduler model), ``autoscaler`` (the CA model),
``cluster`` (the in-place snapshot), ``engine`` (the event loop), ``metrics``, ``report``
(tables, JSON, plots), ``runner`` and ``cli`` (``scheduler-extender simulate``).
"""
