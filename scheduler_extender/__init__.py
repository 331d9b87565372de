"""scheduler-extender: a packing kube-scheduler extender for JupyterHub user pods."""

__version__ = "0.1.0"
