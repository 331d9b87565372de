"""Image pullers: ``await-images``, the Helm hook that waits until the puller DaemonSet has the
images on every node."""
