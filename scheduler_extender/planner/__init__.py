"""``scheduler-extender plan``: users per node and memory-overcommit risk for a node type and a
guarantee/limit pair.  The arithmetic is in ``scheduler_extender.core.capacity`` and
``core.allocatable``; this package reads the catalog and flags and renders the result."""
