"""A loopback stand-in of the slice of the Kubernetes API the gke deploy target uses:
server-side apply (PATCH, application/apply-patch+yaml), reads of a Deployment (and of its
status subresource), pod and object lists by label selector, deletes. It keeps the
objects, bumps a Deployment's generation when its spec changes, and reports the rollout
the test scripts (``rollout``: one status per read, the last one repeated).

Like the API server, it authorizes every request first, with RBAC, as the deploy step's
identity: the Role ``serving-deployer`` of the stack (``infra.serving.SERVING_RULES``),
bound in the serving namespace only. A request whose (API group, resource[/subresource],
verb) no rule allows gets 403 Forbidden, the API server's Status; so a call the Role does
not grant fails the tests as it would fail on the cluster. The verb is the API server's:
GET of one object ``get``, of a collection ``list`` (``watch`` with ``?watch``), POST
``create``, PUT ``update``, PATCH ``patch``, DELETE ``delete`` (``deletecollection`` on a
collection); a server-side apply that creates its object also needs ``create``."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import infra.serving
from tests.loopback import json_server

_PATH = re.compile(
    r"^(?P<prefix>/api/v1|/apis/(?P<group>[^/]+)/[^/]+)/namespaces/(?P<namespace>[^/]+)"
    r"/(?P<plural>[^/]+)(?:/(?P<name>[^/]+)(?:/(?P<subresource>[^/]+))?)?$"
)
_VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
#: Who the deploy step is to the API server: KFP's runner, through its in-cluster token.
DEPLOYER = f"system:serviceaccount:{infra.serving.KFP_NAMESPACE}:{infra.serving.DEPLOYER_KSA}"
#: (API group, resources, verbs) rules, as infra.serving.SERVING_RULES.
Rules = Sequence[tuple[str, Sequence[str], Sequence[str]]]


def verb_of(method: str, name: str | None, query: dict) -> str:
    """The RBAC verb of a request, as the API server derives it."""
    if name is None:
        if method == "GET":
            watch = query.get("watch", [""])[0].lower()
            return "watch" if watch in ("true", "1") else "list"
        if method == "DELETE":
            return "deletecollection"
    return _VERBS.get(method, method.lower())


def allows(rules: Rules, group: str, resource: str, verb: str) -> bool:
    """Whether any rule grants ``verb`` on ``resource`` (``plural`` or
    ``plural/subresource``) of API group ``group``: RBAC's matching, wildcards included."""
    return any(
        (group in groups or "*" in groups)
        and (resource in resources or "*" in resources)
        and (verb in verbs or "*" in verbs)
        for groups, resources, verbs in (
            ((g,) if isinstance(g, str) else tuple(g), tuple(r), tuple(v)) for g, r, v in rules
        )
    )


def progressing(generation: int) -> dict:
    """A rollout under way: the new pod is up but not ready, the old one serves."""
    return {
        "observedGeneration": generation,
        "replicas": 2,
        "updatedReplicas": 1,
        "availableReplicas": 1,
        "unavailableReplicas": 1,
    }


def stale(generation: int) -> dict:
    """The controller has not seen the new spec yet."""
    return {"observedGeneration": generation - 1, "replicas": 1, "availableReplicas": 1}


def available(generation: int) -> dict:
    return {
        "observedGeneration": generation,
        "replicas": 1,
        "updatedReplicas": 1,
        "readyReplicas": 1,
        "availableReplicas": 1,
    }


def stuck(generation: int) -> dict:
    return {
        **progressing(generation),
        "conditions": [
            {
                "type": "Progressing",
                "status": "False",
                "reason": "ProgressDeadlineExceeded",
                "message": "ReplicaSet has timed out progressing.",
            }
        ],
    }


def pod(name: str, labels: dict, waiting: tuple[str, str] | None = None) -> dict:
    state = {"waiting": {"reason": waiting[0], "message": waiting[1]}} if waiting else {}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "serving", "labels": labels},
        "status": {
            "phase": "Pending",
            "containerStatuses": [
                {
                    "name": "server",
                    "image": "img",
                    "imageID": "",
                    "ready": False,
                    "restartCount": 3,
                    "state": state,
                }
            ],
        },
    }


class FakeKube:
    def __init__(self, rules: Rules | None = None) -> None:
        self.requests: list[dict] = []
        self.objects: dict[str, dict] = {}
        self.rollout = [stale, progressing, available]
        self.pods: list[dict] = []
        #: The Role's rules; read from the stack's code when the stand-in starts.
        self.rules: Rules = infra.serving.SERVING_RULES if rules is None else rules
        self.namespace = infra.serving.SERVING_NAMESPACE
        #: (API group, resource, verb) of every request the rules allowed, and refused.
        self.allowed: set[tuple[str, str, str]] = set()
        self.refused: list[tuple[str, str, str]] = []
        self._reads = 0
        self._version = 100

    def calls(self) -> list[tuple[str, str]]:
        return [(r["method"], r["path"]) for r in self.requests]

    def handle(self, method: str, path: str, query: dict, headers, body) -> tuple[int, dict]:
        self.requests.append(
            {
                "method": method,
                "path": path,
                "query": query,
                "content_type": headers.get("Content-Type"),
                "authorization": headers.get("Authorization"),
                "body": body,
            }
        )
        match = _PATH.match(path)
        if not match:
            return _status(404, f"no route {path}")
        prefix, namespace, plural, name, subresource = match.group(
            "prefix", "namespace", "plural", "name", "subresource"
        )
        group = match["group"] or ""
        resource = f"{plural}/{subresource}" if subresource else plural
        verb = verb_of(method, name, query)
        refusal = self._authorize(namespace, group, resource, verb, name)
        if refusal:
            return refusal
        key = f"{prefix}/namespaces/{namespace}/{plural}/{name}"
        if name is None:  # a list
            if verb != "list":
                return _status(405, f"{verb} of a collection is not in this stand-in")
            if plural == "pods":
                items = self.pods
            else:
                items = [
                    o
                    for k, o in self.objects.items()
                    if k.startswith(f"{prefix}/namespaces/{namespace}/{plural}/")
                    and _selected(o, query.get("labelSelector", [""])[0])
                ]
            return 200, {"kind": "List", "apiVersion": "v1", "metadata": {}, "items": items}
        if subresource not in (None, "status") or (subresource and method != "GET"):
            return _status(404, f"no route {method} {path}")
        stored = self.objects.get(key)
        if method == "PATCH":
            # Server-side apply creates a missing object: the API server then also
            # authorizes ``create`` (as for PUT), not only ``patch``.
            if stored is None:
                refusal = self._authorize(namespace, group, resource, "create", name)
                if refusal:
                    return refusal
            return 200, self._apply(key, body)
        if stored is None:
            return _status(404, f'{plural} "{name}" not found')
        if method == "GET":
            answer = copy.deepcopy(stored)
            if plural == "deployments":
                step = self.rollout[min(self._reads, len(self.rollout) - 1)]
                self._reads += 1
                answer["status"] = step(stored["metadata"]["generation"])
            return 200, answer
        if method == "DELETE":
            del self.objects[key]
            return 200, {"kind": "Status", "apiVersion": "v1", "status": "Success"}
        return _status(405, "method not allowed")

    def _authorize(
        self, namespace: str, group: str, resource: str, verb: str, name: str | None
    ) -> tuple[int, dict] | None:
        """None if the Role allows the request; else the API server's 403 Status."""
        if namespace == self.namespace and allows(self.rules, group, resource, verb):
            self.allowed.add((group, resource, verb))
            return None
        self.refused.append((group, resource, verb))
        plural, _, subresource = resource.partition("/")
        qualified = f"{plural}.{group}" if group else plural
        what = f'{qualified} "{name}"' if name else qualified
        message = (
            f'{what} is forbidden: User "{DEPLOYER}" cannot {verb} resource "{resource}" '
            f'in API group "{group}" in the namespace "{namespace}"'
        )
        code, payload = _status(403, message)
        details = {"group": group, "kind": plural}
        if name:
            details["name"] = name
        return code, {**payload, "reason": "Forbidden", "details": details}

    def _apply(self, key: str, body: dict) -> dict:
        self._version += 1
        old = self.objects.get(key)
        obj = copy.deepcopy(body)
        generation = 1
        if old is not None:
            generation = old["metadata"]["generation"]
            if old.get("spec") != body.get("spec"):
                generation += 1
        obj["metadata"]["generation"] = generation
        obj["metadata"]["resourceVersion"] = str(self._version)
        self.objects[key] = obj
        self._reads = 0
        return obj


def disruptions_allowed(pdb: dict, replicas: int, healthy: int | None = None) -> int:
    """How many pods of a ``replicas``-pod workload a PodDisruptionBudget lets a drain evict
    now (``healthy`` of them ready; all by default): the disruption controller's
    ``disruptionsAllowed``. With ``maxUnavailable`` (or a percentage ``minAvailable``) the
    expected count is the workload's scale, with an integer ``minAvailable`` the pods."""
    healthy = replicas if healthy is None else healthy
    spec = pdb["spec"]

    def scaled(value, total: int) -> int:  # intstr: an int or "N%", rounded up
        if isinstance(value, str) and value.endswith("%"):
            return -(-int(value[:-1]) * total // 100)
        return int(value)

    if "maxUnavailable" in spec:
        desired = max(0, replicas - scaled(spec["maxUnavailable"], replicas))
    elif "minAvailable" in spec:
        desired = scaled(spec["minAvailable"], replicas)
    else:
        raise ValueError(f"a PodDisruptionBudget needs minAvailable or maxUnavailable: {spec}")
    return max(0, healthy - desired)


def _selected(obj: dict, selector: str) -> bool:
    labels = obj["metadata"].get("labels") or {}
    wanted = dict(term.split("=", 1) for term in selector.split(",") if term)
    return all(labels.get(k) == v for k, v in wanted.items())


def _status(code: int, message: str) -> tuple[int, dict]:
    return code, {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "message": message,
        "code": code,
    }


@contextmanager
def running(tmp_path: Path, rules: Rules | None = None) -> Iterator[tuple[FakeKube, Path]]:
    """The stand-in on a loopback port, and a kubeconfig that points the real client at it
    with a bearer token. ``rules``: the deployer Role's, by default the stack's
    (``infra.serving.SERVING_RULES``)."""
    fake = FakeKube(rules)

    def handle(method, path, query, headers, raw):
        return fake.handle(method, path, query, headers, json.loads(raw) if raw else None)

    with json_server(handle) as url:
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [
                        {
                            "name": "standin",
                            "cluster": {"server": url},
                        }
                    ],
                    "users": [{"name": "runner", "user": {"token": "standin-token"}}],
                    "contexts": [
                        {"name": "standin", "context": {"cluster": "standin", "user": "runner"}}
                    ],
                    "current-context": "standin",
                }
            ),
            encoding="utf-8",
        )
        yield fake, kubeconfig
