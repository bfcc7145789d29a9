"""Compile the pipeline for a cluster and submit it to Kubeflow Pipelines.

The run is created from the compiled package (``create_run_from_pipeline_package``), not
by uploading a pipeline first: every run carries the exact spec it ran (visible on its
run page), and nothing accumulates in the KFP pipeline list or clashes with an earlier
upload of the same name. Recurring runs do upload (``pipeline.schedule``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import urllib.error
import urllib.request
import warnings
from pathlib import Path
from typing import Any

import yaml

HEALTHZ_PATH = "/apis/v2beta1/healthz"
PORT_FORWARD_HINT = (
    "Reach the KFP API through the UI service: in another terminal run\n"
    "    make kubeconfig && export KUBECONFIG=$PWD/.local/kubeconfig\n"
    "    kubectl -n {namespace} port-forward svc/ml-pipeline-ui 8080:80\n"
    "then pass --host http://localhost:8080 (the default)."
)


class SubmitError(RuntimeError):
    """Compiling for the cluster or submitting the run failed; the message says why."""


class KfpUnreachableError(SubmitError):
    """No Kubeflow Pipelines API answers at the host."""


def check_registry(images: dict[str, str], registry_url: str) -> None:
    """Every step image must live in the stack's registry: the cluster's nodes may pull
    only from there (their service account reads that one repository)."""
    prefix = registry_url.rstrip("/") + "/"
    wrong = {step: ref for step, ref in images.items() if not ref.startswith(prefix)}
    if wrong:
        listed = ", ".join(f"{step}={ref}" for step, ref in sorted(wrong.items()))
        raise SubmitError(
            f"images are not in the stack's registry {registry_url}: {listed}. Build them "
            "there with `make images REGISTRY=$(pulumi stack output registry_url)`."
        )


def check_kfp_reachable(
    host: str, *, kfp_namespace: str = "kubeflow", timeout: float = 10.0
) -> dict:
    """GET the KFP health endpoint; return its JSON or raise a ``KfpUnreachableError``
    that says how to reach the cluster. Fails in seconds, where ``kfp.Client`` retries."""
    url = host.rstrip("/") + HEALTHZ_PATH
    hint = PORT_FORWARD_HINT.format(namespace=kfp_namespace)
    # No proxy from the environment, as kfp.Client (urllib3) uses none: same route as the run.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        raise KfpUnreachableError(
            f"{url} answered HTTP {exc.code}: this does not look like the Kubeflow Pipelines "
            f"API (is --host the KFP UI or ml-pipeline service?).\n{hint}"
        ) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise KfpUnreachableError(
            f"cannot reach Kubeflow Pipelines at {host} ({reason}).\n{hint}"
        ) from None
    try:
        return json.loads(body or b"{}")
    except json.JSONDecodeError:
        raise KfpUnreachableError(
            f"{url} did not answer with JSON: this does not look like the Kubeflow Pipelines "
            f"API.\n{hint}"
        ) from None


def default_run_name(pipeline_yaml: Path) -> str:
    spec = next(yaml.safe_load_all(pipeline_yaml.read_text(encoding="utf-8")))
    name = spec.get("pipelineInfo", {}).get("name", "pipeline")
    return f"{name} {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S} UTC"


def run_url(host: str, run_id: str) -> str:
    """The run's page in the KFP UI (when ``host`` is the UI, as with the port-forward)."""
    return f"{host.rstrip('/')}/#/runs/details/{run_id}"


def submit(
    host: str,
    pipeline_yaml: Path,
    arguments: dict[str, Any],
    *,
    experiment: str,
    run_name: str | None,
    namespace: str | None,
    pipeline_root: str | None = None,
    kfp_namespace: str = "kubeflow",
    enable_caching: bool | None = None,
    client=None,
) -> str:
    """Create a run of the compiled ``pipeline_yaml`` in ``experiment`` (created if new)
    and return its run id. ``namespace`` is the user namespace of a multi-user KFP
    install (None for the standalone install); ``pipeline_root`` overrides the cluster's
    default artifact location; ``enable_caching=False`` runs every step afresh (None: each
    task's own setting); ``client`` replaces ``kfp.Client`` (tests)."""
    if client is None:
        client = connect(host, namespace=namespace, kfp_namespace=kfp_namespace)
    chatter = io.StringIO()  # kfp prints its own links; ours follow
    with kfp_errors(host, kfp_namespace, "the run"), contextlib.redirect_stdout(chatter):
        result = client.create_run_from_pipeline_package(
            str(pipeline_yaml),
            arguments=arguments,
            run_name=run_name or default_run_name(pipeline_yaml),
            experiment_name=experiment,
            namespace=namespace,
            pipeline_root=pipeline_root,
            enable_caching=enable_caching,
        )
    return result.run_id


def connect(host: str, *, namespace: str | None, kfp_namespace: str = "kubeflow"):
    """A ``kfp.Client`` for ``host`` after a quick health check (``KfpUnreachableError``
    says how to reach the cluster); refuses a multi-user install without ``namespace``."""
    health = check_kfp_reachable(host, kfp_namespace=kfp_namespace)
    if health.get("multi_user") and not namespace:
        raise SubmitError(
            "this Kubeflow Pipelines install is multi-user: pass "
            "--namespace with your profile namespace."
        )
    import kfp

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module="kfp")
        return kfp.Client(host=host, namespace=namespace) if namespace else kfp.Client(host=host)


@contextlib.contextmanager
def kfp_errors(host: str, kfp_namespace: str, what: str):
    """Turn the kfp client's connection and API errors into ``SubmitError``s that say
    what was refused and why."""
    import kfp_server_api
    import urllib3

    hint = PORT_FORWARD_HINT.format(namespace=kfp_namespace)
    try:
        yield
    except urllib3.exceptions.HTTPError as exc:
        raise KfpUnreachableError(
            f"lost the connection to Kubeflow Pipelines at {host} ({exc}).\n{hint}"
        ) from None
    except kfp_server_api.ApiException as exc:
        detail = (exc.body or b"").decode() if isinstance(exc.body, bytes) else exc.body
        raise SubmitError(
            f"Kubeflow Pipelines at {host} refused {what}: HTTP {exc.status} {exc.reason}: {detail}"
        ) from None
