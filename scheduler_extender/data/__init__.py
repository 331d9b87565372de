"""Data files shipped with the package (demo cluster snapshot, scenarios, node types)."""
