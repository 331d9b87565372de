"""Traces of real hubs for the simulator: ``scheduler-extender trace prometheus`` reads user
pods' lifetimes and requests from Prometheus (``prometheus.py``), turns them into sessions
(``sessions.py``, pure) and writes the CSV that ``simulate --trace`` replays (``cli.py``)."""
