"""The HTTP shell: kube-scheduler's extender verbs over the pure core.

``create_app`` builds a FastAPI app around a ``ClusterState`` (and optionally a ``Binder``); there
are no import-time singletons.  Each verb reads the body with a size cap, validates it against the
wire models, converts the pod once, calls one core function on the current snapshot and writes
the reply with the exact upstream key names.

Hot-path choices (see benchmarks/extender_latency.py): handlers take the raw ``Request`` and
return a ``Response`` so FastAPI does no second validation or serialization pass; JSON is decoded
by orjson, checked by pydantic's ``validate_python``, and replies are encoded by orjson.

Errors: bad input is HTTP 400 with a message naming the field; an unexpected failure is HTTP 500.
While the state is not ready (first sync not done, or the watch broken for longer than the
staleness bound) ``filter``, ``prioritize`` and ``preempt`` answer HTTP 503 at once: the shipped
extender is ``ignorable``, so kube-scheduler then decides with its own fresh cache and in-tree
MostAllocated rather than follow scores computed from a stale view.  ``bind`` is not gated: it
acts on the API server, not on our view.  Nothing here ever takes the process down.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry
from pydantic import TypeAdapter, ValidationError

from scheduler_extender import __version__
from scheduler_extender.core.drain import prior_of
from scheduler_extender.core.filtering import filter_nodes
from scheduler_extender.core.policy import PolicyConfig
from scheduler_extender.core.preemption import Candidate, choose_candidates, classify_victims
from scheduler_extender.core.scoring import score_nodes
from scheduler_extender.core.types import Pod
from scheduler_extender.extender.lifetimes import LifetimeLearner
from scheduler_extender.extender.metrics import ExtenderMetrics
from scheduler_extender.extender.settings import Settings
from scheduler_extender.extender.state import ClusterState
from scheduler_extender.extender.wire import (
    ExtenderArgs,
    ExtenderBindingArgs,
    ExtenderBindingResult,
    ExtenderFilterResult,
    ExtenderPreemptionArgs,
    ExtenderPreemptionResult,
    HostPriorityList,
)
from scheduler_extender.kube.convert import ConversionError, PlaceholderRule, pod_from_json
from scheduler_extender.ops import PATHS, Check, ops_reply
from scheduler_extender.validation import describe_validation_error

log = logging.getLogger("scheduler_extender")

_ARGS = TypeAdapter(ExtenderArgs)
_PREEMPT_ARGS = TypeAdapter(ExtenderPreemptionArgs)
_BIND_ARGS = TypeAdapter(ExtenderBindingArgs)

BIND_DISABLED = (
    "binding is not enabled in this extender; remove bindVerb from the scheduler's extender "
    "configuration or start the extender with live cluster state and binding enabled"
)


class Binder(Protocol):
    """Creates a pod's Binding.  Returns "" on success, else the error for the scheduler."""

    async def bind(self, args: ExtenderBindingArgs) -> str: ...


class BadRequestError(Exception):
    """Input the extender cannot act on; answered with HTTP 400 and this message."""


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (without reading on) anything over ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise BadRequestError(f"invalid Content-Length header {declared!r}") from None
        if size > limit:
            raise BadRequestError(f"request body of {size} bytes exceeds max_body_bytes={limit}")
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise BadRequestError(f"request body exceeds max_body_bytes={limit}")
        chunks.append(chunk)
    if not total:
        raise BadRequestError("empty request body; expected a JSON object")
    return b"".join(chunks)


def decode_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object.  orjson then pydantic's ``validate_python`` is faster than
    pydantic's own JSON parser here (measured in benchmarks/extender_latency.py's notes)."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequestError(f"invalid JSON: {exc}") from None
    if not isinstance(value, dict):
        kind = "array" if isinstance(value, list) else type(value).__name__
        raise BadRequestError(f"request body must be a JSON object, got {kind}")
    return value


def _json(content: Any) -> Response:
    return Response(orjson.dumps(content), media_type="application/json")


class Extender:
    """The verbs, bound to one state, policy and metrics set."""

    def __init__(
        self,
        settings: Settings,
        state: ClusterState,
        metrics: ExtenderMetrics,
        binder: Binder | None,
        lifetimes: LifetimeLearner | None = None,
    ) -> None:
        self.state = state
        self.metrics = metrics
        self.binder = binder
        self.limit = settings.max_body_bytes
        self.policy: PolicyConfig = settings.policy()
        self.rule: PlaceholderRule = settings.placeholder_rule()
        #: Session lifetimes for the drain term (prior only unless the live cache feeds it).
        self.lifetimes = lifetimes or LifetimeLearner(
            prior_of(self.policy), settings.lifetime_refresh_seconds
        )
        self.clock: Callable[[], float] = time.time

    def _pod(self, obj: dict[str, Any]) -> Pod:
        try:
            return pod_from_json(obj, self.rule)
        except ConversionError as exc:
            raise BadRequestError(str(exc)) from None

    def _node_names(self, args: ExtenderArgs) -> list[str]:
        if args.NodeNames is not None:
            return args.NodeNames
        names = []
        for i, item in enumerate(args.node_items()):
            meta = item.get("metadata")
            name = meta.get("name") if isinstance(meta, dict) else None
            if not isinstance(name, str) or not name:
                raise BadRequestError(f"Nodes.items.{i}.metadata.name: a node needs a name")
            names.append(name)
        return names

    async def filter(self, body: bytes) -> Response:
        args = _ARGS.validate_python(decode_object(body))
        pod = self._pod(args.Pod)
        names = self._node_names(args)
        outcome = filter_nodes(pod, names, self.state.snapshot(), self.policy)
        if outcome.unknown:
            self.metrics.unknown_nodes.labels("filter").inc(len(outcome.unknown))
        if outcome.failed:
            self.metrics.filtered_out.labels("true").inc(len(outcome.failed))
        if outcome.unresolvable:
            self.metrics.filtered_out.labels("false").inc(len(outcome.unresolvable))
        reply: dict[str, Any] = {
            "Nodes": None,
            "NodeNames": None,
            "FailedNodes": dict(outcome.failed),
            "FailedAndUnresolvableNodes": dict(outcome.unresolvable),
            "Error": "",
        }
        if args.NodeNames is not None:
            reply["NodeNames"] = list(outcome.passed)
        else:
            # Echo the scheduler's own node objects: it rebuilds its node list from this reply.
            keep = set(outcome.passed)
            items = [
                item for item, name in zip(args.node_items(), names, strict=True) if name in keep
            ]
            reply["Nodes"] = {"metadata": {}, "items": items}
        return _json(reply)

    async def prioritize(self, body: bytes) -> Response:
        args = _ARGS.validate_python(decode_object(body))
        pod = self._pod(args.Pod)
        names = self._node_names(args)
        drain = self.lifetimes.drain(self.clock()) if self.policy.drain_weight else None
        outcome = score_nodes(pod, names, self.state.snapshot(), self.policy, drain)
        if outcome.unknown:
            self.metrics.unknown_nodes.labels("prioritize").inc(len(outcome.unknown))
        return _json([{"Host": host, "Score": score} for host, score in outcome.scores])

    async def preempt(self, body: bytes) -> Response:
        args = _PREEMPT_ARGS.validate_python(decode_object(body))
        pod = self._pod(args.Pod)
        snapshot = self.state.snapshot()
        candidates: list[Candidate] = []
        if args.NodeNameToMetaVictims is not None:
            for node, meta in args.NodeNameToMetaVictims.items():
                uids = tuple(p.UID for p in (meta.Pods or [])) if meta else ()
                pdb = meta.NumPDBViolations if meta else 0
                candidates.append(Candidate(node, uids, classify_victims(uids, snapshot), pdb))
        elif args.NodeNameToVictims is not None:
            for node, victims in args.NodeNameToVictims.items():
                pods = [
                    self._pod_at(p, f"NodeNameToVictims.{node}.Pods.{i}")
                    for i, p in enumerate((victims.Pods or []) if victims else [])
                ]
                pdb = victims.NumPDBViolations if victims else 0
                candidates.append(
                    Candidate(
                        node,
                        tuple(p.uid for p in pods),
                        tuple(p.placeholder for p in pods),
                        pdb,
                    )
                )
        chosen = choose_candidates(pod, candidates, snapshot, self.policy)
        dropped = len(candidates) - len(chosen)
        if dropped:
            self.metrics.preempt_dropped.inc(dropped)
        by_node = {c.node: c for c in candidates}
        result = {
            name: {
                "Pods": [{"UID": uid} for uid in by_node[name].victims],
                "NumPDBViolations": by_node[name].pdb_violations,
            }
            for name in chosen
        }
        return _json({"NodeNameToMetaVictims": result})

    def _pod_at(self, obj: dict[str, Any], path: str) -> Pod:
        try:
            return pod_from_json(obj, self.rule, path)
        except ConversionError as exc:
            raise BadRequestError(str(exc)) from None

    async def bind(self, body: bytes) -> Response:
        args = _BIND_ARGS.validate_python(decode_object(body))
        if self.binder is None:
            self.metrics.binds.labels("disabled").inc()
            return _json({"Error": BIND_DISABLED})
        error = await self.binder.bind(args)
        self.metrics.binds.labels("failed" if error else "bound").inc()
        return _json({"Error": error})


def create_app(
    settings: Settings,
    *,
    state: ClusterState,
    binder: Binder | None = None,
    registry: CollectorRegistry | None = None,
    lifetimes: LifetimeLearner | None = None,
) -> FastAPI:
    """The extender service for ``state``, configured by ``settings``; ``lifetimes`` is the
    learner the live cache feeds (without one the drain term uses its prior only)."""
    registry = registry if registry is not None else CollectorRegistry()
    metrics = ExtenderMetrics(registry, lambda: float(len(state.snapshot().nodes)))
    ext = Extender(settings, state, metrics, binder, lifetimes)
    app = FastAPI(
        title="scheduler-extender",
        version=__version__,
        description="kube-scheduler extender (v1 wire protocol) that packs JupyterHub user pods.",
    )
    app.state.extender = ext
    app.state.metrics = metrics

    def verb(
        name: str, handler: Callable[[bytes], Awaitable[Response]], gated: bool
    ) -> Callable[[Request], Awaitable[Response]]:
        latency = metrics.latency.labels(name)
        outcomes = {
            o: metrics.requests.labels(name, o) for o in ("ok", "bad_request", "not_ready", "error")
        }

        async def endpoint(request: Request) -> Response:
            start = time.perf_counter()
            try:
                if gated:
                    ready = state.readiness()
                    if not ready.ready:
                        outcomes["not_ready"].inc()
                        latency.observe(time.perf_counter() - start)
                        return JSONResponse({"error": f"not ready: {ready.reason}"}, 503)
                response = await handler(await read_body(request, ext.limit))
                outcomes["ok"].inc()
            except ValidationError as exc:
                outcomes["bad_request"].inc()
                response = JSONResponse({"error": describe_validation_error(exc)}, 400)
            except BadRequestError as exc:
                outcomes["bad_request"].inc()
                response = JSONResponse({"error": str(exc)}, 400)
            except Exception:
                outcomes["error"].inc()
                log.exception("%s failed", name)
                response = JSONResponse({"error": f"internal error in {name}; see logs"}, 500)
            latency.observe(time.perf_counter() - start)
            return response

        endpoint.__name__ = name
        return endpoint

    body_doc = {"requestBody": {"required": True, "content": {"application/json": {}}}}
    wire_docs: dict[str, tuple[type[Any], type[Any]]] = {
        "filter": (ExtenderArgs, ExtenderFilterResult),
        "prioritize": (ExtenderArgs, HostPriorityList),
        "preempt": (ExtenderPreemptionArgs, ExtenderPreemptionResult),
        "bind": (ExtenderBindingArgs, ExtenderBindingResult),
    }
    handlers = {
        "filter": ext.filter,
        "prioritize": ext.prioritize,
        "preempt": ext.preempt,
        "bind": ext.bind,
    }
    for name, handler in handlers.items():
        request_model, reply_model = wire_docs[name]
        app.add_api_route(
            f"/{name}",
            verb(name, handler, gated=name != "bind"),
            methods=["POST"],
            response_model=None,
            summary=f"kube-scheduler extender {name} verb",
            description=f"Request body: {request_model.__name__}; reply: {reply_model.__name__}.",
            openapi_extra=body_doc,
        )

    add_ops_routes(app, state, registry)
    return app


def add_ops_routes(app: FastAPI, state: ClusterState, registry: CollectorRegistry) -> None:
    """``/healthz`` (liveness), ``/readyz`` (readiness) and ``/metrics`` (Prometheus)."""

    def ready() -> tuple[bool, str]:
        readiness = state.readiness()
        return readiness.ready, "ok" if readiness.ready else f"not ready: {readiness.reason}"

    checks: dict[str, Check] = {"/healthz": lambda: (True, "ok"), "/readyz": ready}
    for path in PATHS:

        async def endpoint(request: Request) -> Response:
            # Answered on the event loop the verbs use: a probe that gets an answer proves
            # the loop is not frozen (scheduler_extender.ops).
            reply = ops_reply(request.url.path, registry, checks)
            return Response(reply.body, reply.status, media_type=reply.content_type)

        app.add_api_route(path, endpoint, methods=["GET"], include_in_schema=False)


def create_ops_app(state: ClusterState, registry: CollectorRegistry) -> FastAPI:
    """Health, readiness and metrics only, never the verbs: what ``serve --metrics-port`` exposes
    to the pod network so Prometheus can scrape while ``bind`` & co. stay on loopback."""
    app = FastAPI(title="scheduler-extender (metrics)", version=__version__, openapi_url=None)
    add_ops_routes(app, state, registry)
    return app
