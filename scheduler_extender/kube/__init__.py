"""Everything that knows Kubernetes shapes: the one client wrapper (``client``, the single mock
seam) and the conversion of Kubernetes JSON into core types (``convert``, quantities included).
Nothing here makes a scheduling decision."""
