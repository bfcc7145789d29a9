"""What every step CLI shares: argument types, logging, ``--json`` and the exit statuses.

Exit status of every step CLI: 0 the step succeeded, 1 the step ran and failed (input
rejected, a service or file could not be used, the model failed a required gate), 2 the
arguments are unusable (argparse errors and ``ParameterError``).
"""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from components.common.results import ParameterError, StepResult

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def defaults_of(func: Callable) -> dict[str, Any]:
    """The keyword defaults of a step function: the one place each default is written."""
    return {
        name: p.default
        for name, p in inspect.signature(func).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a number > 0."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def quantile_levels(text: str) -> str:
    """argparse type: the forecast's quantile levels, a comma list
    (``common.quantiles.parse_quantile_levels`` checks it); kept as the string the step
    functions take."""
    from components.common.quantiles import quantile_levels_problem

    problem = quantile_levels_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


def step_parser(prog: str, description: str, examples: str) -> argparse.ArgumentParser:
    """A parser with the shared epilog (examples, exit statuses) and ``--json``/``-q``."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog=f"examples:\n{examples}\n\nexit status: 0 success, 1 the step failed, "
        "2 unusable arguments",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings only")
    return parser


def add_step_option(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    flag: str,
    defaults: dict[str, Any],
    help: str,
    *,
    parameter: str | None = None,
    **kwargs: Any,
) -> None:
    """``flag`` with the step function's default for ``parameter`` (default: the flag's
    name), shown in ``--help``: the default is written once, in the function."""
    parameter = parameter or flag.lstrip("-").replace("-", "_")
    default = defaults[parameter]
    shown = "" if default is None else f" (default: {default})"
    parser.add_argument(flag, default=default, help=help + shown, **kwargs)


def add_features_arguments(parser: argparse.ArgumentParser) -> None:
    """The transform outputs a model step reads: FEATURES_DIR and --stats."""
    parser.add_argument(
        "features_dir", type=Path, help="the transform's output: train/eval/test-*.csv shards"
    )
    parser.add_argument(
        "--stats",
        type=Path,
        default=None,
        help="stats.json of the transform (default: FEATURES_DIR/stats.json)",
    )


def configure_logging(quiet: bool = False) -> None:
    """INFO progress lines on stderr (WARNING only when ``quiet``); the same format for
    every CLI and KFP wrapper."""
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    logging.getLogger("apache_beam").setLevel(logging.WARNING)
    # Except the Dataflow runner's poller: its job states and job messages are the step's
    # progress with runner=dataflow.
    logging.getLogger("apache_beam.runners.dataflow").setLevel(
        logging.WARNING if quiet else logging.INFO
    )


def error_prefix(parser: argparse.ArgumentParser) -> str:
    """``ingest`` for ``python -m components.ingest``: what error messages start with."""
    return parser.prog.rsplit(".", 1)[-1]


def run_step(
    parser: argparse.ArgumentParser,
    argv: list[str] | None,
    call: Callable[[argparse.Namespace], StepResult],
    render: Callable[[StepResult, argparse.Namespace], str],
    failures: tuple[type[BaseException], ...],
    exit_status: Callable[[StepResult, argparse.Namespace], int] = lambda result, args: EXIT_OK,
) -> int:
    """Parse ``argv``, call the step, print its result; return the exit status.

    ``failures`` are the exceptions meaning "the step ran and failed" (exit 1); a
    ``ParameterError`` exits 2; anything else is a bug and keeps its traceback.
    """
    args = parser.parse_args(argv)
    configure_logging(args.quiet)
    step = error_prefix(parser)
    try:
        result = call(args)
    except ParameterError as exc:
        print(f"{step}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except failures as exc:
        print(f"{step}: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(json.dumps(result.to_json(), indent=2) if args.json else render(result, args))
    return exit_status(result, args)
