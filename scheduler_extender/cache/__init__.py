"""The live, watch-fed cluster cache: ``store`` (pure state and snapshots), ``reflector``
(list/watch/relist/backoff per kind) and ``live`` (threads, ``LiveState``, ``LiveBinder``)."""
