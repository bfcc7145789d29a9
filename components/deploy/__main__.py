"""CLI of the deploy step: publish, rollback, status and serve.

python -m components.deploy publish MODEL_DIR --model-repository DIR --model-name NAME
python -m components.deploy rollback --model-repository DIR --model-name NAME [--to-version V]
python -m components.deploy rollback --target vertex --project P --region R [--endpoint E]
python -m components.deploy rollback --target gke [--namespace serving] [--kubeconfig FILE]
python -m components.deploy teardown --stack-outputs FILE|- [--kubeconfig FILE]
python -m components.deploy status --model-repository DIR --model-name NAME
python -m components.deploy serve --model-repository DIR|gs://... --model-name NAME [--port 8501]
python -m components.deploy forecast [--url http://127.0.0.1:8501] [--csv FILE] [--coin bitcoin]
                                    [--json]

``serve`` honours Vertex AI's custom-container variables: AIP_HTTP_PORT (the port, and
binding 0.0.0.0), AIP_STORAGE_URI (the model when --model-repository is not given),
AIP_HEALTH_ROUTE and AIP_PREDICT_ROUTE (extra routes for health and predict).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from components.common.cli import (
    EXIT_FAILED,
    EXIT_USAGE,
    configure_logging,
    defaults_of,
    error_prefix,
)
from components.common.features import HISTORY_DAYS
from components.common.results import ParameterError, model_name_problem
from components.deploy.client import ClientError
from components.deploy.deploy import TARGETS, DeployError, rollback, run
from components.deploy.gke import GkeError
from components.deploy.repository import ModelRepository, RepositoryError
from components.deploy.serving import ModelLoadError
from components.deploy.vertex import VertexError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
DEFAULTS = defaults_of(run)


def _model_name(text: str) -> str:
    """argparse type: a model name (one folder name; train's and the repository's rule)."""
    if problem := model_name_problem(text):
        raise argparse.ArgumentTypeError(problem)
    return text


def _repo_args(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument(
        "--model-repository",
        required=required,
        metavar="DIR",
        help="root of the local model repository (<DIR>/<name>/<version>/)"
        + ("" if required else "; required for --target local"),
    )
    parser.add_argument(
        "--model-name",
        default=DEFAULTS["model_name"],
        type=_model_name,
        metavar="NAME",
        help=f"model name: the folder under the repository (default: {DEFAULTS['model_name']})",
    )


def _vertex_args(parser: argparse.ArgumentParser, deploy: bool = True) -> None:
    from components.deploy.vertex import VertexTarget

    group = parser.add_argument_group("--target vertex")
    group.add_argument("--project", help="Google Cloud project")
    group.add_argument("--region", help="Vertex AI region, e.g. europe-west1")
    group.add_argument("--endpoint", help="endpoint display name (default: <model name>-endpoint)")
    group.add_argument("--api-endpoint", help=argparse.SUPPRESS)  # tests: a loopback stand-in
    if not deploy:
        return
    group.add_argument("--image", help="serving image pinned by digest (<image>@sha256:...)")
    for flag, default in (
        ("--machine-type", VertexTarget.machine_type),
        ("--min-replicas", VertexTarget.min_replicas),
        ("--max-replicas", VertexTarget.max_replicas),
    ):
        group.add_argument(flag, type=type(default), default=default, help=f"(default: {default})")
    group.add_argument("--service-account", help="the serving service account's e-mail")


def _gke_args(parser: argparse.ArgumentParser) -> None:
    from components.deploy.gke import GkeTarget

    group = parser.add_argument_group("--target gke")
    group.add_argument(
        "--namespace",
        default=GkeTarget.namespace,
        help=f"namespace of the serving objects (default: {GkeTarget.namespace})",
    )
    group.add_argument(
        "--kubeconfig",
        help="kubeconfig file (default: $KUBECONFIG; in a pod, the in-cluster account)",
    )


def _vertex_target(args: argparse.Namespace, image_required: bool = True):
    from components.deploy.vertex import VertexTarget

    missing = [
        f"--{name}"
        for name in ("project", "region", *(("image",) if image_required else ()))
        if not getattr(args, name)
    ]
    if missing:
        raise ParameterError(f"--target vertex needs {', '.join(missing)}")
    from components.deploy.vertex import default_endpoint_name

    settings = {
        key: getattr(args, key)
        for key in ("machine_type", "min_replicas", "max_replicas", "service_account")
        if hasattr(args, key)
    }
    return VertexTarget(
        project=args.project,
        region=args.region,
        image=getattr(args, "image", None) or "unused@sha256:" + "0" * 64,
        endpoint_name=args.endpoint or default_endpoint_name(args.model_name),
        model_display_name=args.model_name,
        **settings,
    )


def _publish_vertex(args: argparse.Namespace) -> dict:
    from components.common.uris import is_gcs_uri
    from components.deploy.repository import validate_version
    from components.deploy.vertex import deploy_vertex

    target = _vertex_target(args)
    if not is_gcs_uri(args.model_dir):
        raise ParameterError(
            f"--target vertex needs MODEL_DIR as gs://... (Vertex AI reads the model from "
            f"Cloud Storage), got {args.model_dir!r}"
        )
    if not args.version:
        raise ParameterError("--target vertex needs --version (the folder under MODEL_DIR)")
    version = validate_version(args.version)
    deployment = deploy_vertex(
        target,
        artifact_uri=f"{args.model_dir.rstrip('/')}/{version}",
        model_name=args.model_name,
        version=version,
        api_endpoint=args.api_endpoint,
    )
    return {"target": "vertex", "version": version, **deployment.to_json()}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m components.deploy",
        description="Publish a trained SavedModel to a local model repository (TF-Serving "
        "layout, never overwriting a version, smoke-tested before it becomes "
        "CURRENT), roll back, and serve the CURRENT version over HTTP. On the cloud "
        "targets, roll back the GKE Deployment or the Vertex AI endpoint, and tear down "
        "what deploys created before `pulumi destroy` (`make destroy` does it first).",
        epilog="examples:\n"
        "  python -m components.deploy publish /tmp/train/model --model-repository "
        ".local/model_repository\n"
        "  python -m components.deploy status --model-repository .local/model_repository\n"
        "  python -m components.deploy serve --model-repository .local/model_repository "
        "--port 8501\n"
        "  python -m components.deploy rollback --target gke\n"
        "  python -m components.deploy rollback --target vertex --project P --region R "
        "--endpoint E\n"
        "  pulumi stack output --json | python -m components.deploy teardown "
        "--stack-outputs -\n\n"
        "exit status: 0 success, 1 the step failed, 2 unusable arguments",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings only")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "publish",
        help="publish <MODEL_DIR>/<version>/ and make it CURRENT",
        description="Copy each <MODEL_DIR>/<version>/ SavedModel into "
        "<repository>/<name>/<version>/, smoke-test it, record the "
        "deployment and make the newest one CURRENT.",
    )
    p.add_argument(
        "model_dir",
        metavar="MODEL_DIR",
        help="train output: a folder holding <version>/saved_model.pb",
    )
    _repo_args(p, required=False)
    p.add_argument(
        "--target",
        default=DEFAULTS["target"],
        choices=TARGETS,
        help="where to deploy: local (a model repository); vertex (Vertex AI; MODEL_DIR is "
        "then a gs:// folder holding <version>/ and --version is required); gke (MODEL_DIR "
        "is published to the gs:// --model-repository, then rolled out in the cluster) "
        "(default: local)",
    )
    p.add_argument("--version", help="publish only this version folder of MODEL_DIR")
    p.add_argument("--metrics", metavar="JSON", help="metrics to record, as a JSON object")
    p.add_argument("--source-run", help="the pipeline run that produced the model")
    _vertex_args(p)
    _gke_args(p)

    p = sub.add_parser(
        "rollback",
        help="make an earlier deployed version CURRENT",
        description="Point CURRENT back at an earlier deployed version (by "
        "default the highest one below CURRENT) and record it.",
    )
    _repo_args(p, required=False)
    p.add_argument("--to-version", help="version to roll back to (default: the previous one)")
    p.add_argument(
        "--target",
        default="local",
        choices=TARGETS,
        help="local: move CURRENT; vertex: give the endpoint's traffic back to the previous "
        "deployed model; gke: re-apply the previously deployed version (default: local)",
    )
    _vertex_args(p, deploy=False)
    _gke_args(p)

    p = sub.add_parser(
        "teardown",
        help="remove what deploys created outside the Pulumi stack (before `pulumi destroy`)",
        description="On Vertex AI, undeploy every model from the endpoint and delete the "
        "registry model (the endpoint is the stack's); on GKE, delete the Deployments, "
        "Services, HPAs and PDBs the deploy step created in the serving namespace (the "
        "namespace is the stack's). Settings come from the stack outputs (project, region, "
        "vertex_endpoint, serving_namespace) or the flags.",
    )
    p.add_argument(
        "--stack-outputs",
        metavar="FILE",
        help="JSON of `pulumi stack output --json` (- for stdin)",
    )
    p.add_argument(
        "--model-name",
        default=DEFAULTS["model_name"],
        metavar="NAME",
        help=f"the registry model's display name (default: {DEFAULTS['model_name']})",
    )
    p.add_argument("--skip-vertex", action="store_true", help="leave Vertex AI alone")
    p.add_argument("--skip-gke", action="store_true", help="leave the cluster alone")
    _vertex_args(p, deploy=False)
    _gke_args(p)

    p = sub.add_parser("status", help="print the deployed versions and CURRENT as JSON")
    _repo_args(p)

    p = sub.add_parser(
        "serve",
        help="serve the CURRENT version over HTTP (KServe V1 predict, V2 health, metrics)",
        description="Serve the CURRENT version of a model repository (a local folder or "
        "gs://bucket/prefix) or one SavedModel folder on KServe's ModelServer: GET "
        '/v1/models/<name>, POST /v1/models/<name>:predict with {"instances": [feature '
        'rows or {"history": [>= 31 daily bars]}]}, /v2/health/live, /v2/health/ready, '
        "/metrics. A new CURRENT (deploy, rollback) is loaded without a restart. Vertex "
        "AI's AIP_HTTP_PORT, AIP_STORAGE_URI, AIP_HEALTH_ROUTE and AIP_PREDICT_ROUTE are "
        "honoured.",
    )
    p.add_argument(
        "--model-repository",
        default=os.environ.get("AIP_STORAGE_URI"),
        metavar="DIR",
        help="model repository root (<DIR>/<name>/CURRENT), local or gs://, or a folder "
        "holding saved_model.pb (default: $AIP_STORAGE_URI)",
    )
    p.add_argument(
        "--model-name",
        default=DEFAULTS["model_name"],
        type=_model_name,
        metavar="NAME",
        help=f"model name: the folder under the repository (default: {DEFAULTS['model_name']})",
    )
    p.add_argument(
        "--host",
        default=None,
        help="address to bind (default: 0.0.0.0 when AIP_HTTP_PORT is set, else 127.0.0.1)",
    )
    p.add_argument(
        "--port",
        type=int,
        default=None,
        help="port (default: $AIP_HTTP_PORT, else 8501; 0 = any free)",
    )
    p.add_argument(
        "--poll-seconds",
        type=float,
        default=2.0,
        help="how often CURRENT is re-read (default: 2; 0 = never)",
    )
    p.add_argument("--access-log", action="store_true", help="log every request")

    p = sub.add_parser(
        "forecast",
        help="ask a running server for the next day's close from the last days of a CSV",
        description=f"Post the last {HISTORY_DAYS} days of one coin in a Kaggle-schema CSV "
        "as a history instance to <url>/v1/models/<name>:predict and print the forecast: "
        "the median close and the 90% interval (--json: the server's whole answer, the "
        "quantiles of the close and of the log return among it).",
    )
    p.add_argument("--url", default="http://127.0.0.1:8501", help="the server's base URL")
    p.add_argument(
        "--model-name",
        default=DEFAULTS["model_name"],
        type=_model_name,
        metavar="NAME",
        help=f"model name (default: {DEFAULTS['model_name']})",
    )
    p.add_argument(
        "--csv",
        default=os.path.join(
            os.environ.get("CRYPTO_DATA_DIR", "../shared/data"), "crypto-markets-bitcoin.csv"
        ),
        metavar="FILE",
        help="daily bars (default: $CRYPTO_DATA_DIR or ../shared/data, crypto-markets-bitcoin.csv)",
    )
    p.add_argument("--coin", default="bitcoin", help="the coin's slug (default: bitcoin)")
    p.add_argument("--json", action="store_true", help="print the server's answer as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.quiet)
    try:
        if args.command == "publish" and args.target == "vertex":
            print(json.dumps(_publish_vertex(args), indent=2))
        elif args.command == "rollback" and args.target == "vertex":
            from components.deploy.vertex import rollback_vertex

            moved = rollback_vertex(
                _vertex_target(args, image_required=False), api_endpoint=args.api_endpoint
            )
            print(json.dumps(moved, indent=2))
        elif args.command == "rollback" and args.target == "gke":
            from components.deploy.gke import api_client, rollback_gke

            moved = rollback_gke(
                namespace=args.namespace,
                model_name=args.model_name,
                api=api_client(args.kubeconfig),
            )
            print(json.dumps(moved, indent=2))
        elif args.command == "teardown":
            print(json.dumps(_teardown(args), indent=2))
        elif args.command == "publish" and args.target == "gke":
            result = run(
                args.model_dir,
                target="gke",
                model_repository=args.model_repository,
                model_name=args.model_name,
                metrics=_metrics(args.metrics),
                source_run=args.source_run,
                version=args.version,
                image=args.image,
                serving_min_replicas=args.min_replicas,
                serving_max_replicas=args.max_replicas,
                serving_namespace=args.namespace,
                kubeconfig=args.kubeconfig,
            )
            print(json.dumps(result.to_json(), indent=2))
        elif args.command == "publish":
            result = run(
                args.model_dir,
                target=args.target,
                model_repository=args.model_repository,
                model_name=args.model_name,
                metrics=_metrics(args.metrics),
                source_run=args.source_run,
                version=args.version,
            )
            print(json.dumps(result.to_json(), indent=2))
        elif args.command == "rollback":
            if not args.model_repository:
                raise ParameterError("--model-repository is required for --target local")
            result = rollback(args.model_repository, args.model_name, args.to_version)
            print(json.dumps(result.to_json(), indent=2))
        elif args.command == "status":
            repo = ModelRepository(args.model_repository, args.model_name)
            print(
                json.dumps(
                    {
                        "name": repo.model_name,
                        "current_version": repo.current(),
                        "versions": repo.deployed_versions(),
                    },
                    indent=2,
                )
            )
        elif args.command == "serve":
            return _serve(args)
        elif args.command == "forecast":
            from components.deploy.client import forecast, last_bars

            answer = forecast(args.url, args.model_name, last_bars(args.csv, args.coin))
            print(json.dumps(answer, indent=2) if args.json else _forecast_line(answer))
    except ParameterError as exc:
        print(f"{error_prefix(parser)}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (
        ClientError,
        VertexError,
        GkeError,
        DeployError,
        ModelLoadError,
        RepositoryError,
        NotImplementedError,
        OSError,
    ) as exc:
        print(f"{error_prefix(parser)}: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return 0


def _stack_outputs(path: str | None) -> dict:
    if path is None:
        return {}
    try:
        text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
        outputs = json.loads(text)
    except (OSError, json.JSONDecodeError) as exc:
        raise ParameterError(f"--stack-outputs {path}: cannot read JSON ({exc})") from None
    if not isinstance(outputs, dict):
        raise ParameterError(f"--stack-outputs {path}: not a JSON object of stack outputs")
    return outputs


def _teardown(args: argparse.Namespace) -> dict:
    """Vertex AI first (it needs no cluster), then the cluster's serving objects."""
    outputs = _stack_outputs(args.stack_outputs)
    done: dict = {}
    if not args.skip_vertex:
        from components.deploy.vertex import teardown_vertex

        project = args.project or outputs.get("project")
        region = args.region or outputs.get("region")
        endpoint = args.endpoint or outputs.get("vertex_endpoint")
        missing = [
            name
            for name, value in (
                ("--project", project),
                ("--region", region),
                ("--endpoint", endpoint),
            )  # fmt: skip
            if not value
        ]
        if missing:
            raise ParameterError(
                f"teardown needs {', '.join(missing)} (or --stack-outputs with project, "
                "region, vertex_endpoint), or --skip-vertex"
            )
        done["vertex"] = teardown_vertex(
            project=project,
            region=region,
            endpoint_name=endpoint,
            model_display_name=args.model_name,
            api_endpoint=args.api_endpoint,
        )
    if not args.skip_gke:
        from components.deploy.gke import api_client, teardown_gke

        namespace = outputs.get("serving_namespace") or args.namespace
        done["gke"] = {
            "namespace": namespace,
            "deleted": teardown_gke(namespace, api=api_client(args.kubeconfig)),
        }
    return done


def _metrics(text: str | None) -> dict | None:
    if not text:
        return None
    try:
        metrics = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParameterError(f"--metrics is not valid JSON: {exc}") from None
    if not isinstance(metrics, dict):
        raise ParameterError("--metrics must be a JSON object")
    return metrics


def _forecast_line(answer: dict) -> str:
    """The forecast for a person: the median close and the widest central interval of
    ``INTERVALS`` (90%, else 50%) whose levels the model has (none for a point model)."""
    from components.common.quantiles import INTERVALS, level_key

    close, predicted = answer["close"], answer["predicted_close"]
    change = 100.0 * (predicted / close - 1.0) if close else float("nan")
    line = (
        f"forecast for {answer['date']}: close {predicted:,.2f} ({change:+.2f}% from {close:,.2f})"
    )
    prices = answer.get("quantiles") or {}
    for name, (lower, upper) in sorted(INTERVALS.items(), key=lambda i: i[1][0]):
        low, high = prices.get(level_key(lower)), prices.get(level_key(upper))
        if low is not None and high is not None:
            line += f"; {name}% interval {low:,.2f} .. {high:,.2f}"
            break
    return f"{line}; model version {answer.get('model_version')}"


def _serve(args: argparse.Namespace) -> int:
    from components.deploy.server import ForecastModel, Server
    from components.deploy.source import SourceError, open_source

    if not args.model_repository:
        raise ParameterError("--model-repository is required (or set AIP_STORAGE_URI)")
    port = args.port
    if port is None:
        aip_port = os.environ.get("AIP_HTTP_PORT")
        if aip_port is not None and not aip_port.isdigit():
            raise ParameterError(f"AIP_HTTP_PORT must be a port number, got {aip_port!r}")
        port = int(aip_port) if aip_port else 8501
    if not 0 <= port <= 65535:
        raise ParameterError(f"--port must be in 0..65535, got {port}")
    if args.poll_seconds < 0:
        raise ParameterError(f"--poll-seconds must be >= 0, got {args.poll_seconds}")
    host = args.host or ("0.0.0.0" if os.environ.get("AIP_HTTP_PORT") else "127.0.0.1")
    try:
        source = open_source(args.model_repository, args.model_name)
        if source.current() is None:
            raise RepositoryError(
                f"model {args.model_name!r} has no CURRENT version in {source.description}; "
                "publish one first (python -m components.deploy publish ...)"
            )
    except SourceError as exc:
        raise RepositoryError(str(exc)) from None
    model = ForecastModel(args.model_name, source, poll_seconds=args.poll_seconds)
    # Load now: a broken CURRENT is logged and leaves the server up but not ready, so a
    # rollback (a new CURRENT) recovers it without a restart.
    model.load()
    server = Server(
        model,
        host,
        port,
        health_route=os.environ.get("AIP_HEALTH_ROUTE") or None,
        predict_route=os.environ.get("AIP_PREDICT_ROUTE") or None,
        access_log=args.access_log,
    )
    state = f"version {model.serving.version}" if model.ready else f"NOT READY ({model.error})"
    print(
        f"serving {args.model_name} {state} at {server.url}/v1/models/{args.model_name}",
        flush=True,
    )
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
