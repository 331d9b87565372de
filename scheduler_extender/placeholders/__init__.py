"""The placeholder controller: keeps the planned number of low-priority placeholder pods per pool.
How many and why is decided in ``scheduler_extender.core.placeholders``; this package observes the
cluster, calls that plan and writes the difference."""
