"""``python -m pipeline``: compile the pipeline, run it locally, or submit it to a cluster."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

DEFAULT_ROOT = Path(".local")
DEFAULT_YAML = Path("out/crypto_pipeline.yaml")

def _pipeline_inputs():
    """(name, python type, default or None) of every pipeline parameter, in order."""
    import inspect

    from pipeline.crypto_pipeline import crypto_pipeline

    out = []
    for name, param in inspect.signature(crypto_pipeline.pipeline_func).parameters.items():
        default = None if param.default is inspect.Parameter.empty else param.default
        out.append((name, param.annotation, default))
    return out


def _add_pipeline_options(parser: argparse.ArgumentParser, local_defaults: dict[str, str]) -> None:
    from pipeline.crypto_pipeline import PARAMETER_HELP

    group = parser.add_argument_group("pipeline parameters")
    for name, ptype, default in _pipeline_inputs():
        shown = local_defaults.get(name, repr(default))
        group.add_argument(
            f"--{name.replace('_', '-')}", dest=name, type=ptype, default=None,
            help=f"{PARAMETER_HELP.get(name, '')} (default: {shown})",
        )


def _cmd_compile(args) -> int:
    from pipeline.crypto_pipeline import compile_pipeline

    print(compile_pipeline(args.output))
    return 0


def _cmd_run_local(args) -> int:
    from pipeline.crypto_pipeline import compile_pipeline
    from pipeline.local import SourceUnavailableError, check_source_reachable, run_compiled_locally
    from pipeline.summary import format_summary

    root = Path(args.root).resolve()
    arguments = {
        name: getattr(args, name)
        for name, _, _ in _pipeline_inputs()
        if getattr(args, name, None) is not None
    }
    arguments.setdefault("lake", str(root / "lake"))
    arguments.setdefault("model_repository", str(root / "model_repository"))
    if "source" in arguments:
        source = arguments["source"]
        if "://" not in source:
            arguments["source"] = str(Path(source).resolve())
        # A user's own file has no pinned checksum unless they give one.
        arguments.setdefault("source_sha256", "")
    from components.ingest.ingest import DEFAULT_SOURCE

    try:
        check_source_reachable(arguments.get("source", DEFAULT_SOURCE))
    except SourceUnavailableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    pipeline_yaml = compile_pipeline(root / "crypto_pipeline.yaml")
    print(f"Compiled {pipeline_yaml}; running it with kfp.local (SubprocessRunner)")
    result = run_compiled_locally(pipeline_yaml, arguments, root / "pipeline_root")
    print(format_summary(result))
    return 0 if result.succeeded else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline",
        description="Compile the crypto forecasting pipeline, run it locally with kfp.local, "
        "or submit it to Kubeflow Pipelines.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    comp = sub.add_parser("compile", help="compile the pipeline to KFP IR YAML")
    comp.add_argument("--output", "-o", default=str(DEFAULT_YAML), help="default: %(default)s")
    comp.set_defaults(func=_cmd_compile)

    run = sub.add_parser(
        "run-local",
        help="run all five steps on this machine with kfp.local",
        description="Run the compiled pipeline with kfp.local's SubprocessRunner. Outputs go "
        "under --root: the data lake, the KFP pipeline root and the model repository.",
    )
    run.add_argument("--root", default=os.environ.get("CRYPTO_KFP_LOCAL_ROOT", str(DEFAULT_ROOT)),
                     help="where local outputs go (default: %(default)s)")
    _add_pipeline_options(run, {"lake": "ROOT/lake", "model_repository": "ROOT/model_repository",
                                "source_sha256": "the pinned hash for the default source, "
                                "none for --source"})
    run.set_defaults(func=_cmd_run_local)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
