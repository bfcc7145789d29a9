"""``python -m pipeline``: compile the pipeline, run it locally, or submit it to a cluster."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from components.images import (
    DATAFLOW_WORKER,
    DEFAULT_REGISTRY,
    DEFAULT_TAG,
    ImagesError,
    image_refs,
    is_pinned,
    load_images,
)

DEFAULT_ROOT = Path(".local")
DEFAULT_YAML = Path("out/crypto_pipeline.yaml")
DEFAULT_GCP_YAML = Path("out/crypto_pipeline.gcp.yaml")
DEFAULT_HOST = "http://localhost:8080"
DEFAULT_EXPERIMENT = "crypto-forecast"
#: What `make images` writes.
DEFAULT_IMAGES = Path("build/images.json")


def _given_arguments(args: argparse.Namespace) -> tuple[dict, list[str]]:
    """The pipeline parameters set on the command line, typed; and a sentence per value of
    the wrong type (all of them, not only the first as argparse would)."""
    from pipeline.parameters import PARAMETER_TYPES, convert

    given = {
        name: getattr(args, name)
        for name in PARAMETER_TYPES
        if getattr(args, name, None) is not None
    }
    return convert(given)


def _refuse(problems: list[str]) -> int:
    """Print every problem, each naming its parameter; exit status 2 (usage error)."""
    if len(problems) == 1:
        print(f"error: {problems[0]}", file=sys.stderr)
    else:
        print(f"error: {len(problems)} problems with the parameters:", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
    print("Nothing was run.", file=sys.stderr)
    return 2


def _add_images_options(parser: argparse.ArgumentParser, registry_help: str) -> None:
    group = parser.add_argument_group("step images (one of)")
    choice = group.add_mutually_exclusive_group()
    choice.add_argument(
        "--images",
        metavar="IMAGES.json",
        help='JSON {"ingest": "<image>", ...} as `make images` writes it (build/images.json)',
    )
    choice.add_argument("--registry", help=registry_help)
    group.add_argument(
        "--tag", default=DEFAULT_TAG, help="image tag with --registry (default: %(default)s)"
    )


def _images(args: argparse.Namespace, registry: str = DEFAULT_REGISTRY) -> dict[str, str]:
    """The step -> image mapping the command line names (ImagesError if it is unusable)."""
    if args.images:
        return load_images(args.images)
    return image_refs(args.registry or registry, args.tag)


def _add_pipeline_options(
    parser: argparse.ArgumentParser, local_defaults: dict[str, str], show_defaults: bool
) -> None:
    """Every pipeline parameter as an option. Values are kept as strings here and typed by
    ``_given_arguments``, so every wrong value is reported at once. The defaults are shown
    only for ``--help``: finding them loads every step (seconds)."""
    from pipeline.parameters import PARAMETER_HELP, PARAMETER_TYPES, flag

    defaults = {}
    if show_defaults:
        from pipeline.crypto_pipeline import pipeline_inputs

        defaults = {name: default for name, _, default in pipeline_inputs()}
    group = parser.add_argument_group("pipeline parameters")
    for name, ptype in PARAMETER_TYPES.items():
        shown = local_defaults.get(name, repr(defaults.get(name)))
        text = PARAMETER_HELP.get(name, "")
        if show_defaults:
            text = f"{text} (default: {shown})"
        group.add_argument(
            flag(name),
            dest=name,
            default=None,
            metavar=ptype.__name__.upper(),
            help=text.replace("%", "%%"),  # argparse formats help with %
        )


def _cmd_compile(args) -> int:
    from pipeline.crypto_pipeline import compile_pipeline

    try:
        images = _images(args)
    except ImagesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(compile_pipeline(args.output, images))
    return 0


def _cmd_run_local(args) -> int:
    from components.common.uris import local_dir_problem
    from components.ingest import DEFAULT_SOURCE
    from pipeline.local import local_argument_problems, source_problem
    from pipeline.parameters import check_arguments

    # Every parameter is checked before the first step, and every problem reported at once.
    root = Path(args.root).resolve()
    arguments, problems = _given_arguments(args)
    if problem := local_dir_problem("root", str(root)):
        problems.append(f"--root: {problem}")
    arguments.setdefault("lake", str(root / "lake"))
    arguments.setdefault("model_repository", str(root / "model_repository"))
    if "source" in arguments and "://" not in arguments["source"] and arguments["source"]:
        arguments["source"] = str(Path(arguments["source"]).resolve())
    problems += local_argument_problems(arguments)
    problems += check_arguments(arguments)
    if not any(p.startswith("--source:") for p in problems):
        if problem := source_problem(arguments.get("source", DEFAULT_SOURCE)):
            problems.append(problem)
    if problems:
        return _refuse(problems)

    from pipeline.crypto_pipeline import compile_pipeline
    from pipeline.local import run_compiled_locally
    from pipeline.summary import format_summary

    runner = None
    if args.local_runner == "docker":
        try:
            images = load_images(args.images or DEFAULT_IMAGES)
        except ImagesError as exc:
            print(f"error: {exc}; `make images PUSH=0` builds them locally", file=sys.stderr)
            return 2
        runner = _docker_runner(root, arguments)
    else:
        images = None  # SubprocessRunner runs every step in this virtual environment
    pipeline_yaml = compile_pipeline(root / "crypto_pipeline.yaml", images, retries=False)
    how = "in the step images (DockerRunner)" if runner else "in this venv (SubprocessRunner)"
    print(f"Compiled {pipeline_yaml}; running it with kfp.local {how}")
    result = run_compiled_locally(
        pipeline_yaml, arguments, root / "pipeline_root", cache=args.cache, runner=runner
    )
    print(format_summary(result))
    return 0 if result.succeeded else 1


def _docker_runner(root: Path, arguments: dict):
    """DockerRunner with the run's folders mounted; a local source is mounted read-only."""
    from components.common.uris import is_local, local_path
    from pipeline.local import docker_runner, prepare_for_image_user

    writable = [
        root / "pipeline_root",
        Path(arguments["lake"]),
        Path(arguments["model_repository"]),
    ]
    prepare_for_image_user(writable)
    source = arguments.get("source", "")
    read_only = [local_path(source).resolve()] if source and is_local(source) else []
    return docker_runner(writable[1:], read_only)


def _prepare_cloud(args) -> tuple[Path, dict, dict] | int:
    """The gcp-profile arguments with the command line's on top, checked; the pipeline
    compiled with the stack's pinned images and shown: ``(yaml, arguments, stack outputs)``,
    or the exit status of a usage error (printed)."""
    from components.common.uris import is_http_url
    from pipeline.local import source_problem
    from pipeline.parameters import check_arguments
    from pipeline.profiles import (
        StackOutputsError,
        cloud_settings,
        cloud_warnings,
        gcp_arguments,
        load_stack_outputs,
        validate_cloud_arguments,
        validate_stack_outputs,
    )
    from pipeline.submit import SubmitError, check_registry

    try:
        given, problems = _given_arguments(args)
        if problems:  # wrong types: refused before the stack is even read
            return _refuse(problems + check_arguments(given))
        outputs = load_stack_outputs(args.stack_outputs, args.stack)
        validate_stack_outputs(outputs)
        arguments = gcp_arguments(outputs) | given
        problems = check_arguments(arguments)
        source = arguments.get("source", "")
        if source and is_http_url(source) and not any(p.startswith("--source:") for p in problems):
            if problem := source_problem(source):
                problems.append(problem)
        if problems:
            return _refuse(problems)
        validate_cloud_arguments(arguments)
        registry = str(outputs["registry_url"]).rstrip("/")
        images = _images(args, registry)
        check_registry(images, registry)
        if arguments.get("runner") == "dataflow" and DATAFLOW_WORKER not in images:
            raise SubmitError(
                f"runner 'dataflow' needs the {DATAFLOW_WORKER} image (the Dataflow workers' "
                "SDK container) in --images: build it with `make images`, or pass --runner local."
            )
        unpinned = sorted(step for step, ref in images.items() if not is_pinned(ref))
        if unpinned and not args.allow_unpinned:
            raise SubmitError(
                f"image(s) of {', '.join(unpinned)} are not pinned to a digest, so the run "
                "could execute other code than was built and tested: pass --images "
                "build/images.json from `make images`, or --allow-unpinned to accept tags."
            )
    except (StackOutputsError, ImagesError, SubmitError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    from pipeline.crypto_pipeline import compile_pipeline

    pipeline_yaml = compile_pipeline(args.output, images)
    print(f"Compiled {pipeline_yaml} with the step images:")
    for step, image in images.items():
        print(f"    {step:<16} {image}")
    print("Pipeline arguments:")
    for name, value in sorted(arguments.items()):
        print(f"    {name} = {value!r}")
    print(f"Pipeline root: {outputs['pipeline_root']}")
    for line in cloud_settings(arguments):
        print(line)
    sys.stdout.flush()
    for warning in cloud_warnings(arguments):
        print(f"warning: {warning}", file=sys.stderr)
    return pipeline_yaml, arguments, outputs


def _cmd_submit(args) -> int:
    from pipeline.submit import SubmitError, run_url, submit

    prepared = _prepare_cloud(args)
    if isinstance(prepared, int):
        return prepared
    pipeline_yaml, arguments, outputs = prepared
    if args.dry_run:
        print(
            f"Dry run: nothing submitted (would go to experiment {args.experiment!r} "
            f"at {args.host})."
        )
        return 0

    try:
        run_id = submit(
            args.host,
            pipeline_yaml,
            arguments,
            experiment=args.experiment,
            run_name=args.run_name,
            namespace=args.namespace,
            pipeline_root=str(outputs["pipeline_root"]),
            kfp_namespace=str(outputs.get("kfp_namespace") or "kubeflow"),
            enable_caching=False if args.no_cache else None,
        )
    except SubmitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"Submitted run {run_id} to experiment {args.experiment!r}.")
    print(f"Run details: {run_url(args.host, run_id)}")
    return 0


def _kfp_client(args):
    from pipeline.submit import connect

    return connect(args.host, namespace=args.namespace)


def _cmd_schedule(args) -> int:
    from pipeline.crypto_pipeline import PIPELINE_NAME
    from pipeline.revision import git_revision
    from pipeline.schedule import kfp_cron, schedule
    from pipeline.submit import SubmitError

    try:
        cron = kfp_cron(args.cron)  # a bad cron is refused before anything is compiled
    except SubmitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    prepared = _prepare_cloud(args)
    if isinstance(prepared, int):
        return prepared
    pipeline_yaml, arguments, outputs = prepared
    name = args.name or f"{PIPELINE_NAME} {args.cron}"
    if args.dry_run:
        print(f"Dry run: nothing scheduled (would schedule {name!r}, cron {cron!r}).")
        return 0
    try:
        scheduled = schedule(
            _kfp_client(args),
            pipeline_yaml,
            arguments,
            pipeline_name=PIPELINE_NAME,
            cron=args.cron,
            experiment=args.experiment,
            name=name,
            revision=git_revision(),
            namespace=args.namespace,
            pipeline_root=str(outputs["pipeline_root"]),
            host=args.host,
            kfp_namespace=str(outputs.get("kfp_namespace") or "kubeflow"),
        )
    except SubmitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"Scheduled {scheduled.name!r} (id {scheduled.recurring_run_id}): cron "
        f"{scheduled.cron!r} (UTC), at most one run at a time, pipeline version "
        f"{scheduled.version_name!r}, experiment {args.experiment!r}."
    )
    return 0


def _cmd_schedules(args) -> int:
    from pipeline.crypto_pipeline import PIPELINE_NAME
    from pipeline.schedule import describe, list_schedules
    from pipeline.submit import SubmitError

    try:
        runs = list_schedules(
            _kfp_client(args),
            pipeline_name=PIPELINE_NAME,
            experiment=args.experiment,
            namespace=args.namespace,
            host=args.host,
        )
    except SubmitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for run in runs:
        print(describe(run))
    print(f"{len(runs)} recurring run(s) of {PIPELINE_NAME} in experiment {args.experiment!r}.")
    return 0


def _cmd_unschedule(args) -> int:
    from pipeline.crypto_pipeline import PIPELINE_NAME
    from pipeline.schedule import unschedule
    from pipeline.submit import SubmitError

    if not args.name and not args.all:
        print("error: pass --name NAME or --all (see `python -m pipeline schedules`)",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        deleted = unschedule(
            _kfp_client(args),
            pipeline_name=PIPELINE_NAME,
            experiment=args.experiment,
            name=None if args.all else args.name,
            namespace=args.namespace,
            host=args.host,
        )
    except SubmitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"Deleted {len(deleted)} recurring run(s): {', '.join(map(repr, deleted)) or 'none'}.")
    return 0


def _add_kfp_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host",
        default=os.environ.get("KF_PIPELINES_ENDPOINT", DEFAULT_HOST),
        help="KFP API or UI URL, e.g. a port-forward (default: %(default)s)",
    )
    parser.add_argument(
        "--experiment",
        default=DEFAULT_EXPERIMENT,
        help="KFP experiment, created if new (default: %(default)s)",
    )
    parser.add_argument(
        "--namespace", help="user namespace of a multi-user KFP install (standalone: none)"
    )


def _add_cloud_options(parser: argparse.ArgumentParser, show_defaults: bool) -> None:
    """What submit and schedule share: the stack, the images and the pipeline parameters."""
    outputs = parser.add_mutually_exclusive_group()
    outputs.add_argument(
        "--stack-outputs",
        metavar="FILE",
        help="JSON of `pulumi stack output --json` ('-': stdin); default: run the Pulumi CLI",
    )
    outputs.add_argument(
        "--stack",
        metavar="NAME",
        help="Pulumi stack to read outputs from (default: the selected one)",
    )
    parser.add_argument(
        "--output",
        "-o",
        default=str(DEFAULT_GCP_YAML),
        help="compiled pipeline (default: %(default)s)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="compile and print the images and arguments; submit nothing",
    )
    parser.add_argument(
        "--allow-unpinned",
        action="store_true",
        help="accept images named by tag, not digest (default: refuse them)",
    )
    _add_images_options(parser, "image registry (default: the stack's registry_url)")
    _add_pipeline_options(
        parser,
        {
            "lake": "the raw_bucket output",
            "model_repository": "models_bucket/repository",
            "runner": "'dataflow' (settings from the stack; 'local': Beam in the pod)",
            "tune_backend": "'vertex' (settings from the stack; 'optuna': in the pod)",
            "deploy_target": "'gke' (in the cluster; 'vertex': the stack's endpoint)",
            "vertex_endpoint": "the vertex_endpoint output",
            "serving_service_account": "the serving_service_account output",
            "serving_namespace": "the serving_namespace output",
            "serving_k8s_service_account": "the serving_k8s_service_account output",
        },
        show_defaults,
    )


def build_parser(show_defaults: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline",
        description="Compile the crypto forecasting pipeline, run it locally with kfp.local, "
        "or submit it to Kubeflow Pipelines.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    comp = sub.add_parser(
        "compile",
        help="compile the pipeline to KFP IR YAML",
        description="Compile the pipeline with every step on the image named by --images "
        "(the file `make images` writes) or --registry/--tag.",
    )
    comp.add_argument("--output", "-o", default=str(DEFAULT_YAML), help="default: %(default)s")
    _add_images_options(comp, f"image registry (default: {DEFAULT_REGISTRY}, never pushed)")
    comp.set_defaults(func=_cmd_compile)

    run = sub.add_parser(
        "run-local",
        help="run all five steps on this machine with kfp.local",
        description="Run the compiled pipeline with kfp.local's SubprocessRunner. Outputs go "
        "under --root: the data lake, the KFP pipeline root and the model repository.",
    )
    run.add_argument(
        "--root",
        default=os.environ.get("CRYPTO_KFP_LOCAL_ROOT", str(DEFAULT_ROOT)),
        help="where local outputs go (default: %(default)s)",
    )
    # Not --runner: that is the pipeline's Beam runner parameter (local or dataflow).
    run.add_argument(
        "--local-runner",
        choices=("subprocess", "docker"),
        default="subprocess",
        help="subprocess: every step in this virtual environment (default); docker: every "
        "step in its image, with kfp.local's DockerRunner (needs Docker and the images of "
        "`make images PUSH=0`)",
    )
    run.add_argument(
        "--images",
        metavar="IMAGES.json",
        help=f"images for --local-runner docker (default: {DEFAULT_IMAGES})",
    )
    run.add_argument(
        "--cache",
        action="store_true",
        help="reuse the outputs of earlier local runs of a step with the same inputs "
        "(kfp.local's cache; deploy always runs)",
    )
    _add_pipeline_options(
        run, {"lake": "ROOT/lake", "model_repository": "ROOT/model_repository"}, show_defaults
    )
    run.set_defaults(func=_cmd_run_local)

    cloud = sub.add_parser(
        "submit",
        help="compile for the GKE cluster and submit a run to Kubeflow Pipelines",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Build the pipeline arguments from the Pulumi stack outputs (data lake = "
        "raw bucket, model repository = models bucket/repository), compile with every step "
        "image under the stack's registry_url, and create a run in --experiment.\n\n"
        "Reach the cluster first:\n"
        "    make kubeconfig && export KUBECONFIG=$PWD/.local/kubeconfig\n"
        "    kubectl -n kubeflow port-forward svc/ml-pipeline-ui 8080:80\n\n"
        "The transform runs on Dataflow and the search on Vertex AI (settings from the "
        "stack outputs); --runner local / --tune-backend optuna keep them in their pods. "
        "A model that passes the gate is served in the cluster (deploy target gke); "
        "--deploy-target vertex serves it on the stack's Vertex AI endpoint.",
    )
    _add_kfp_options(cloud)
    cloud.add_argument("--run-name", help="run name (default: pipeline name and UTC time)")
    cloud.add_argument(
        "--no-cache",
        action="store_true",
        help="run every step afresh, ignoring KFP's cache of earlier runs",
    )
    _add_cloud_options(cloud, show_defaults)
    cloud.set_defaults(func=_cmd_submit)

    sched = sub.add_parser(
        "schedule",
        help="upload the pipeline as a new version and run it on a cron schedule",
        description="Compile as `submit` does, upload the pipeline to KFP as a new version "
        "named by the git revision, and create a recurring run of it in --experiment with "
        "the gcp-profile arguments, at most one run at a time. Ingest is never cached, so "
        "each run reads the source as it is then.",
    )
    sched.add_argument(
        "--cron",
        required=True,
        help="when, in UTC: 5 crontab fields ('0 6 * * *': daily at 06:00) or 6 with seconds",
    )
    sched.add_argument("--name", help="recurring run name (default: pipeline name and cron)")
    _add_kfp_options(sched)
    _add_cloud_options(sched, show_defaults)
    sched.set_defaults(func=_cmd_schedule)

    listing = sub.add_parser("schedules", help="list the pipeline's recurring runs")
    _add_kfp_options(listing)
    listing.set_defaults(func=_cmd_schedules)

    unsched = sub.add_parser("unschedule", help="delete recurring runs of the pipeline")
    which = unsched.add_mutually_exclusive_group()
    which.add_argument("--name", help="the recurring run to delete")
    which.add_argument("--all", action="store_true", help="every one of this pipeline's")
    _add_kfp_options(unsched)
    unsched.set_defaults(func=_cmd_unschedule)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Showing the defaults loads every step: only --help needs them.
    args = build_parser(show_defaults=any(a in ("-h", "--help") for a in argv)).parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
