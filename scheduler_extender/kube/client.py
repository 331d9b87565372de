"""The one thin wrapper over the ``kubernetes`` client: every call the extender makes to the API.

Everything that talks to kube-apiserver goes through ``KubeClient``, so it is the single seam for
tests (they run the real client against ``tests/fakeapi``, or replace this class).  It does no
caching, retrying or threading of its own, and switches off urllib3's retries (``connect``): the
reflector decides when to list, watch and back off, and each call makes one attempt within its
timeout.

Responses are read raw (``_preload_content=False``) and parsed with orjson instead of the client's
model deserialization: the cache needs plain JSON for ``convert`` anyway, and building
``V1Pod`` models first costs far more than the parse (``benchmarks/cache_sync.py`` measures it).
It also sidesteps the client failing to deserialize the ``Status`` that ``pods/binding`` returns
(ref: https://github.com/kubernetes-client/python/issues/825).

Config discovery follows the usual order: in-cluster service account, else a kubeconfig (the
given path, else ``$KUBECONFIG``, else ``~/.kube/config``), with an optional context.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

log = logging.getLogger(__name__)

Kind = Literal["nodes", "pods"]
Obj = dict[str, Any]

#: The service account token every in-cluster pod gets (ref: client-go rest.InClusterConfig).
SERVICE_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")


class KubeConfigError(RuntimeError):
    """A cluster configuration was found but cannot be used (bad kubeconfig, unknown context)."""


class ApiError(Exception):
    """The API server answered with an error ``Status`` (HTTP error or watch ERROR event)."""

    def __init__(self, code: int, reason: str, message: str, causes: tuple[str, ...] = ()) -> None:
        super().__init__(f"{code} {reason}: {message}" if reason else f"{code}: {message}")
        self.code = code
        self.reason = reason
        self.message = message
        self.causes = causes

    @classmethod
    def from_status(cls, status: Any, default_code: int = 0) -> ApiError:
        if not isinstance(status, Mapping):
            return cls(default_code, "", str(status)[:500])
        details = status.get("details")
        causes: tuple[str, ...] = ()
        if isinstance(details, Mapping):
            causes = tuple(
                str(c.get("reason") or c.get("type") or "")
                for c in details.get("causes") or ()
                if isinstance(c, Mapping)
            )
        code = status.get("code")
        return cls(
            code if isinstance(code, int) else default_code,
            str(status.get("reason") or ""),
            str(status.get("message") or ""),
            causes,
        )

    @property
    def network(self) -> bool:
        """No answer at all: the connection failed, broke or timed out (``NETWORK``)."""
        return self.reason == NETWORK

    @property
    def expired(self) -> bool:
        """410 Gone/Expired: the resourceVersion or continue token is compacted; relist."""
        return self.code == 410 or self.reason in ("Expired", "Gone")

    @property
    def too_large_resource_version(self) -> bool:
        """The server has not seen this resourceVersion (a restored etcd); relist.
        ref: k8s.io/apiserver/pkg/storage/errors.go NewTooLargeResourceVersionError."""
        return "ResourceVersionTooLarge" in self.causes or self.message.startswith(
            "Too large resource version"
        )


#: The ``reason`` of an ``ApiError`` for a call that got no answer (code 0).
NETWORK = "NetworkError"


@contextlib.contextmanager
def _network_errors() -> Iterator[None]:
    """Turn a failure to talk to the API server into ``ApiError(0, NETWORK, ...)``.

    With urllib3's retries off, a refused connection, a reset, a response cut short or a timeout
    surfaces as one of urllib3's ``HTTPError``s (``MaxRetryError``, ``ProtocolError``,
    ``ReadTimeoutError``...) or a plain ``OSError`` (socket timeouts, ``ConnectionError``).
    Callers handle ``ApiError`` (and decide by ``code``/``network``); without this they would
    see a type they do not expect and crash, or misreport.  Streaming a watch is not wrapped:
    the informers tell a silent watch (``ReadTimeoutError``) from a broken one themselves.
    """
    try:
        yield
    except (HTTPError, OSError) as exc:
        raise ApiError(
            0, NETWORK, f"cannot reach the API server: {type(exc).__name__}: {exc}"
        ) from exc


def resource_version(obj: Obj) -> str:
    """``metadata.resourceVersion`` of an object or a list; "" when it has none."""
    meta = obj.get("metadata")
    return str(meta.get("resourceVersion") or "") if isinstance(meta, dict) else ""


@dataclass(frozen=True, slots=True)
class ListPage:
    items: list[Obj]
    resource_version: str
    continue_token: str

    @classmethod
    def of(cls, data: Obj) -> ListPage:
        """A page from a decoded List response."""
        meta = data.get("metadata") or {}
        return cls(data.get("items") or [], resource_version(data), str(meta.get("continue") or ""))


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One decoded watch event: ``type`` is ADDED, MODIFIED, DELETED, BOOKMARK or ERROR."""

    type: str
    object: Obj


def _api_error(exc: Any) -> ApiError:
    """An ``ApiError`` from the client's ``ApiException`` (its body is a Status, usually)."""
    body = getattr(exc, "body", None)
    status: Any = None
    if body:
        try:
            status = orjson.loads(body)
        except orjson.JSONDecodeError:
            status = None
    code = int(getattr(exc, "status", 0) or 0)
    if isinstance(status, Mapping):
        return ApiError.from_status(status, code)
    return ApiError(code, str(getattr(exc, "reason", "") or ""), str(body or exc)[:500])


class WatchStream:
    """An open watch: iterate for events; ``close()`` from any thread ends the iteration."""

    def __init__(self, response: Any) -> None:
        self._response = response
        self._closed = threading.Event()

    def __iter__(self) -> Iterator[WatchEvent]:
        buffer = b""
        try:
            for chunk in self._response.stream(1 << 16, decode_content=False):
                if self._closed.is_set():
                    return
                buffer += chunk
                if b"\n" not in chunk:
                    continue
                lines = buffer.split(b"\n")
                buffer = lines.pop()
                for line in lines:
                    if line.strip():
                        yield _decode_event(line)
        finally:
            self.close()
        # A stream that ended without a final newline ends mid-event: the half line is dropped
        # and the caller re-watches from the last complete event it saw.

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        shutdown = getattr(self._response, "shutdown", None)  # urllib3 >= 2.3: unblocks a read
        try:
            if shutdown is not None:
                shutdown()
            self._response.close()
            # Only now hand the (closed) connection back: a half-read stream must never be reused.
            self._response.release_conn()
        except Exception:  # pragma: no cover - closing a broken socket
            log.debug("closing watch response failed", exc_info=True)


def _decode_event(line: bytes) -> WatchEvent:
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ApiError(0, "BadWatchEvent", f"undecodable watch event: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise ApiError(0, "BadWatchEvent", f"watch event without an object: {line[:200]!r}")
    return WatchEvent(str(data.get("type") or ""), data["object"])


@dataclass(frozen=True, slots=True)
class CustomResource:
    """A namespaced custom resource: ``/apis/{group}/{version}/namespaces/{ns}/{plural}``."""

    group: str
    version: str
    plural: str

    def path(self, ns: str) -> tuple[str, str, str, str]:
        """The arguments ``CustomObjectsApi``'s namespaced calls take before the name."""
        return self.group, self.version, ns, self.plural


class KubeClient:
    """Typed calls the extender needs, over one ``kubernetes.client.ApiClient``."""

    def __init__(self, api_client: Any, source: str) -> None:
        self.api_client = api_client
        self.core = client.CoreV1Api(api_client)
        self.coordination = client.CoordinationV1Api(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)
        self.source = source

    def close(self) -> None:
        self.api_client.close()

    def _call(self, method: str, *args: Any, api: Any = None, **kwargs: Any) -> Any:
        try:
            with _network_errors():
                return getattr(api or self.core, method)(*args, _preload_content=False, **kwargs)
        except ApiException as exc:
            raise _api_error(exc) from None

    def _json(self, method: str, *args: Any, api: Any = None, **kwargs: Any) -> Obj:
        """Call and decode the JSON body (an object)."""
        response = self._call(method, *args, api=api, **kwargs)
        try:
            with _network_errors():
                data: Obj = orjson.loads(response.data)
        finally:
            response.release_conn()
        return data

    def list(self, kind: Kind, *, limit: int, continue_token: str, timeout: float) -> ListPage:
        """One page of a cluster-wide list, as a consistent read (resourceVersion unset).

        Unset resourceVersion with ``limit`` is the paged, consistent LIST of the API concepts
        doc; "0" would be served from the watch cache and ignore ``limit``
        (ref: https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions).
        """
        method = "list_node" if kind == "nodes" else "list_pod_for_all_namespaces"
        kwargs: dict[str, Any] = {"limit": limit, "_request_timeout": timeout}
        if continue_token:
            kwargs["_continue"] = continue_token
        response = self._call(method, **kwargs)
        try:
            with _network_errors():
                data = orjson.loads(response.data)
        finally:
            response.release_conn()
        return ListPage.of(data)

    def watch(
        self, kind: Kind, *, resource_version: str, timeout_seconds: int, read_timeout: float
    ) -> WatchStream:
        """A watch from ``resource_version`` with bookmarks.  The server ends it after
        ``timeout_seconds``; a silent connection fails after ``read_timeout``."""
        method = "list_node" if kind == "nodes" else "list_pod_for_all_namespaces"
        return self._watch(method, resource_version, timeout_seconds, read_timeout)

    def _watch(
        self,
        method: str,
        rv: str,
        timeout_seconds: int,
        read_timeout: float,
        *args: Any,
        **kwargs: Any,
    ) -> WatchStream:
        """A watch with bookmarks: the server ends it after ``timeout_seconds``, a silent
        connection fails after ``read_timeout`` (connecting may take at most 10 s of it)."""
        response = self._call(
            method,
            *args,
            watch=True,
            resource_version=rv,
            allow_watch_bookmarks=True,
            timeout_seconds=timeout_seconds,
            _request_timeout=(min(10.0, read_timeout), read_timeout),
            **kwargs,
        )
        return WatchStream(response)

    def get_pod(self, namespace: str, name: str, *, timeout: float) -> Obj:
        return self._json("read_namespaced_pod", name, namespace, _request_timeout=timeout)

    def bind(self, namespace: str, name: str, uid: str, node: str, *, timeout: float) -> None:
        """POST the pod's ``binding`` subresource; the UID makes it a precondition, so a
        recreated pod of the same name is never bound by mistake."""
        body = client.V1Binding(
            metadata=client.V1ObjectMeta(name=name, namespace=namespace, uid=uid or None),
            target=client.V1ObjectReference(api_version="v1", kind="Node", name=node),
        )
        response = self._call(
            "create_namespaced_pod_binding", name, namespace, body, _request_timeout=timeout
        )
        try:
            with _network_errors():
                response.read()  # drain the Status so the connection can be reused
        finally:
            response.release_conn()

    def get_node(self, name: str, *, timeout: float) -> Obj:
        return self._json("read_node", name, _request_timeout=timeout)

    # --- the placeholder controller's calls ---

    def list_pods(
        self,
        namespace: str | None,
        *,
        label_selector: str = "",
        field_selector: str = "",
        limit: int,
        continue_token: str,
        timeout: float,
    ) -> ListPage:
        """One page of pods in ``namespace`` (all namespaces when None), filtered by selectors."""
        kwargs: dict[str, Any] = {"limit": limit, "_request_timeout": timeout}
        if continue_token:
            kwargs["_continue"] = continue_token
        if label_selector:
            kwargs["label_selector"] = label_selector
        if field_selector:
            kwargs["field_selector"] = field_selector
        if namespace is None:
            data = self._json("list_pod_for_all_namespaces", **kwargs)
        else:
            data = self._json("list_namespaced_pod", namespace, **kwargs)
        return ListPage.of(data)

    def watch_pods(
        self,
        namespace: str,
        *,
        label_selector: str = "",
        resource_version: str,
        timeout_seconds: int,
        read_timeout: float,
    ) -> WatchStream:
        """A watch of the pods in ``namespace`` matching ``label_selector``, with bookmarks."""
        kwargs: dict[str, Any] = {}
        if label_selector:
            kwargs["label_selector"] = label_selector
        return self._watch(
            "list_namespaced_pod",
            resource_version,
            timeout_seconds,
            read_timeout,
            namespace,
            **kwargs,
        )

    def create_pod(self, namespace: str, body: Obj, *, timeout: float) -> Obj:
        return self._json("create_namespaced_pod", namespace, body, _request_timeout=timeout)

    def delete_pod(
        self, namespace: str, name: str, *, uid: str, grace_period_seconds: int, timeout: float
    ) -> Obj:
        """Delete with a UID precondition: a newer pod that took the name is never deleted
        (the API server answers 409 Conflict instead)."""
        body = client.V1DeleteOptions(
            grace_period_seconds=grace_period_seconds,
            preconditions=client.V1Preconditions(uid=uid) if uid else None,
        )
        return self._json(
            "delete_namespaced_pod", name, namespace, body=body, _request_timeout=timeout
        )

    def get_lease(self, namespace: str, name: str, *, timeout: float) -> Obj:
        return self._json(
            "read_namespaced_lease",
            name,
            namespace,
            api=self.coordination,
            _request_timeout=timeout,
        )

    def create_lease(self, namespace: str, body: Obj, *, timeout: float) -> Obj:
        return self._json(
            "create_namespaced_lease",
            namespace,
            body,
            api=self.coordination,
            _request_timeout=timeout,
        )

    def replace_lease(self, namespace: str, name: str, body: Obj, *, timeout: float) -> Obj:
        """PUT the Lease; ``metadata.resourceVersion`` in ``body`` makes it conditional (409
        Conflict when someone else wrote it first)."""
        return self._json(
            "replace_namespaced_lease",
            name,
            namespace,
            body,
            api=self.coordination,
            _request_timeout=timeout,
        )

    # --- ConfigMaps (the forecast profiles) ---

    def get_config_map(self, namespace: str, name: str, *, timeout: float) -> Obj:
        return self._json("read_namespaced_config_map", name, namespace, _request_timeout=timeout)

    def create_config_map(self, namespace: str, body: Obj, *, timeout: float) -> Obj:
        return self._json("create_namespaced_config_map", namespace, body, _request_timeout=timeout)

    def replace_config_map(self, namespace: str, name: str, body: Obj, *, timeout: float) -> Obj:
        """PUT the ConfigMap; ``metadata.resourceVersion`` in ``body`` makes it conditional."""
        return self._json(
            "replace_namespaced_config_map", name, namespace, body, _request_timeout=timeout
        )

    # --- custom resources and PodTemplates (the CapacityBuffer backend) ---

    def api_resources(self, group: str, version: str, *, timeout: float) -> Obj:
        """Discovery: the ``APIResourceList`` of ``/apis/{group}/{version}`` (404 when the
        API server does not serve that group version)."""
        return self._json(
            "get_api_resources", group, version, api=self.custom, _request_timeout=timeout
        )

    def get_custom(self, res: CustomResource, ns: str, name: str, *, timeout: float) -> Obj:
        return self._json(
            "get_namespaced_custom_object", *res.path(ns), name, api=self.custom,
            _request_timeout=timeout,
        )  # fmt: skip

    def list_custom(
        self, res: CustomResource, ns: str, *, label_selector: str, timeout: float
    ) -> ListPage:
        """Every object of the kind in ``ns`` matching ``label_selector`` (one unpaged list:
        a controller owns a handful)."""
        data = self._json(
            "list_namespaced_custom_object", *res.path(ns), label_selector=label_selector,
            api=self.custom, _request_timeout=timeout,
        )  # fmt: skip
        return ListPage.of(data)

    def create_custom(self, res: CustomResource, ns: str, body: Obj, *, timeout: float) -> Obj:
        return self._json(
            "create_namespaced_custom_object", *res.path(ns), body, api=self.custom,
            _request_timeout=timeout,
        )  # fmt: skip

    def replace_custom(
        self, res: CustomResource, ns: str, name: str, body: Obj, *, timeout: float
    ) -> Obj:
        """PUT; ``metadata.resourceVersion`` in ``body`` makes it conditional (409 Conflict)."""
        return self._json(
            "replace_namespaced_custom_object", *res.path(ns), name, body, api=self.custom,
            _request_timeout=timeout,
        )  # fmt: skip

    def delete_custom(
        self, res: CustomResource, ns: str, name: str, *, uid: str, timeout: float
    ) -> Obj:
        """Delete with a UID precondition (409 Conflict when the name now holds another)."""
        return self._json(
            "delete_namespaced_custom_object", *res.path(ns), name,
            body={"preconditions": {"uid": uid}} if uid else None, api=self.custom,
            _request_timeout=timeout,
        )  # fmt: skip

    def get_pod_template(self, ns: str, name: str, *, timeout: float) -> Obj:
        return self._json("read_namespaced_pod_template", name, ns, _request_timeout=timeout)

    def create_pod_template(self, ns: str, body: Obj, *, timeout: float) -> Obj:
        return self._json("create_namespaced_pod_template", ns, body, _request_timeout=timeout)

    def replace_pod_template(self, ns: str, name: str, body: Obj, *, timeout: float) -> Obj:
        return self._json(
            "replace_namespaced_pod_template", name, ns, body, _request_timeout=timeout
        )

    def delete_pod_template(self, ns: str, name: str, *, uid: str, timeout: float) -> Obj:
        body = client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=uid or None))
        return self._json(
            "delete_namespaced_pod_template", name, ns, body=body, _request_timeout=timeout
        )

    # --- the startup-taint removal's calls ---

    def patch_node_taints(
        self, name: str, taints: Sequence[Obj], *, resource_version: str, timeout: float
    ) -> Obj:
        """Set the node's ``spec.taints`` to ``taints`` with a JSON merge patch that carries
        ``metadata.resourceVersion``: the API server applies it only to that version of the
        node and answers 409 Conflict if anyone wrote it since, so a taint another writer
        added or changed meanwhile is never dropped (ref: controller-runtime
        ``client.MergeFromWithOptimisticLock``). A merge patch replaces the list whole."""
        body = {
            "metadata": {"resourceVersion": resource_version},
            "spec": {"taints": [dict(t) for t in taints]},
        }
        return self._json(
            "patch_node",
            name,
            body,
            _content_type="application/merge-patch+json",
            _request_timeout=timeout,
        )

    # --- the image-puller awaiter's call ---

    def get_daemonset(self, namespace: str, name: str, *, timeout: float) -> Obj:
        return self._json(
            "read_namespaced_daemon_set", name, namespace, api=self.apps, _request_timeout=timeout
        )

    def get_owner(self, kind: str, namespace: str, name: str, *, timeout: float) -> Obj:
        """The Deployment or ConfigMap that owns the placeholders."""
        if kind == "Deployment":
            return self._json(
                "read_namespaced_deployment",
                name,
                namespace,
                api=self.apps,
                _request_timeout=timeout,
            )
        if kind == "ConfigMap":
            return self._json(
                "read_namespaced_config_map", name, namespace, _request_timeout=timeout
            )
        raise ValueError(f"unsupported owner kind {kind!r}")


def in_cluster(environ: Mapping[str, str] = os.environ) -> bool:
    return bool(environ.get("KUBERNETES_SERVICE_HOST")) and SERVICE_TOKEN.is_file()


def kubeconfig_path(explicit: Path | None, environ: Mapping[str, str] = os.environ) -> Path | None:
    """The kubeconfig to use: ``explicit``, else the first existing file in ``$KUBECONFIG``,
    else ``~/.kube/config``; None when there is none."""
    if explicit is not None:
        if not explicit.is_file():
            raise KubeConfigError(f"kubeconfig not found: {explicit}")
        return explicit
    for part in (environ.get("KUBECONFIG") or "").split(os.pathsep):
        if part and Path(part).expanduser().is_file():
            return Path(part).expanduser()
    default = Path("~/.kube/config").expanduser()
    return default if default.is_file() else None


def connect(
    *,
    kubeconfig: Path | None = None,
    context: str | None = None,
    environ: Mapping[str, str] = os.environ,
) -> KubeClient | None:
    """A client for the cluster this process should use, or None when no config is found.

    An explicit ``kubeconfig`` (or ``context``) wins over in-cluster config, so an operator can
    point a pod at another cluster; otherwise in-cluster config wins over ``~/.kube/config``.
    """
    configuration = client.Configuration()
    try:
        if kubeconfig is None and context is None and in_cluster(environ):
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            return _client(configuration, "in-cluster service account")
        path = kubeconfig_path(kubeconfig, environ)
        if path is None:
            if context is not None:
                raise KubeConfigError(f"context {context!r} given but no kubeconfig found")
            return None
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(path),
            context=context,
            client_configuration=configuration,
            persist_config=False,
        )
    except (config.ConfigException, OSError, ValueError) as exc:
        raise KubeConfigError(f"cannot load cluster config: {exc}") from exc
    where = f"kubeconfig {path}" + (f" context {context}" if context else "")
    return _client(configuration, where)


def _client(configuration: Any, source: str) -> KubeClient:
    """The ``KubeClient`` over ``configuration``, with urllib3's own retries switched off.

    urllib3 retries a request whose response does not start within the read timeout up to three
    more times by default, so one call against a hung API server would block for four read
    timeouts.  Every caller here has its own retry policy (the reflector's backoff, bind's single
    deadline, the controller's reconcile loop), so each call makes exactly one attempt and
    fails within its own timeout.
    """
    configuration.retries = False
    return KubeClient(client.ApiClient(configuration), source)
