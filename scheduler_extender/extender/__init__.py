"""The extender service: what kube-scheduler sends (``wire``), the FastAPI app that answers it
(``app``), its settings, metrics, cluster state and the ``serve`` entry point.  The decisions
themselves are in ``scheduler_extender.core``."""
