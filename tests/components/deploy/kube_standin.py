"""A loopback stand-in of the slice of the Kubernetes API the gke deploy target uses:
server-side apply (PATCH, application/apply-patch+yaml), reads of a Deployment and its
status, pod and object lists by label selector, deletes. It keeps the objects, bumps a
Deployment's generation when its spec changes, and reports the rollout the test scripts
(``rollout``: one status per read, the last one repeated)."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.loopback import json_server

_OBJECT = re.compile(
    r"^(/apis?/[^/]+(?:/[^/]+)?)/namespaces/([^/]+)/([^/]+)(?:/([^/]+))?(/status)?$"
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
    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.objects: dict[str, dict] = {}
        self.rollout = [stale, progressing, available]
        self.pods: list[dict] = []
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
        match = _OBJECT.match(path)
        if not match:
            return _status(404, f"no route {path}")
        prefix, namespace, plural, name, status = match.groups()
        key = f"{prefix}/namespaces/{namespace}/{plural}/{name}"
        if name is None:  # a list
            if method != "GET":
                return _status(405, "method not allowed")
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
        if method == "PATCH":
            return 200, self._apply(key, body)
        stored = self.objects.get(key)
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
def running(tmp_path: Path) -> Iterator[tuple[FakeKube, Path]]:
    """The stand-in on a loopback port, and a kubeconfig that points the real client at it
    with a bearer token."""
    fake = FakeKube()

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
