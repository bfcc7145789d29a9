"""The train step's parameter checks and model versions (standard library only, so the
pipeline can check a run's parameters before any step without loading the trainer)."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets

from components.common.quantiles import GATE_METRICS, quantile_levels_problem
from components.common.results import integer_problem, model_name_problem, number_problem

_VERSION = re.compile(r"^[0-9]+$")
#: Seeds go to keras.utils.set_random_seed (numpy's limit: below 2**32), one per ensemble
#: member from ``seed`` on.
MAX_SEED = 2**31 - 1
#: Digits after the UTC time in a version: they tell apart runs that finish in the same
#: second. 14 + 4 = 18 digits stays below TF-Serving's int64 version limit (9.2e18).
VERSION_SUFFIX_DIGITS = 4


def check_parameters(
    *,
    epochs: object = None,
    seed: object = None,
    ensemble_size: object = None,
    max_mae_ratio: object = None,
    model_name: object = None,
    version: object = None,
    patience: object = None,
    min_improvement: object = None,
    significance: object = None,
    serving_namespace: object = None,
    vertex_project: object = None,
    vertex_region: object = None,
    vertex_endpoint: object = None,
    quantile_levels: object = None,
    gate_metric: object = None,
    coverage_tolerance: object = None,
) -> dict[str, str]:
    """``{parameter: problem}`` for the given (not None) parameters of ``train.run``.

    The deploy target's settings train reads to find the champion (``serving_namespace``,
    ``vertex_*``) are the deploy step's parameters of the same names: its
    ``check_parameters`` checks them (in the pipeline's preflight, and in ``train.run``
    before training), so they are accepted here, not checked twice."""
    problems = {
        "epochs": epochs is not None and integer_problem("epochs", epochs, 1),
        "seed": seed is not None and integer_problem("seed", seed, 0, MAX_SEED),
        "ensemble_size": ensemble_size is not None
        and integer_problem("ensemble_size", ensemble_size, 1),
        "max_mae_ratio": max_mae_ratio is not None
        and number_problem("max_mae_ratio", max_mae_ratio, above=0),
        "patience": patience is not None and integer_problem("patience", patience, 1),
        "min_improvement": min_improvement is not None
        and number_problem("min_improvement", min_improvement, at_least=0, at_most=0.99),
        "significance": significance is not None
        and number_problem("significance", significance, above=0, at_most=0.5),
        "coverage_tolerance": coverage_tolerance is not None
        and number_problem("coverage_tolerance", coverage_tolerance, above=0, at_most=0.5),
        "quantile_levels": quantile_levels is not None
        and quantile_levels_problem(quantile_levels, gate_metric=gate_metric),
    }
    if gate_metric is not None and gate_metric not in GATE_METRICS:
        problems["gate_metric"] = (
            f"gate_metric must be one of {', '.join(GATE_METRICS)}, got {gate_metric!r}"
        )
    if model_name is not None:
        problems["model_name"] = model_name_problem(model_name)
    if version is not None and not _VERSION.match(str(version)):
        problems["version"] = f"version must be digits only (TF Serving layout), got {version!r}"
    return {name: problem for name, problem in problems.items() if problem}


def new_version(run_name: str | None = None, *, now: dt.datetime | None = None) -> str:
    """A TF-Serving version number: the UTC time as ``YYYYMMDDHHMMSS`` followed by
    ``VERSION_SUFFIX_DIGITS`` digits derived from ``run_name`` (a hash of it: the same run
    always gets the same suffix) or, without one, random digits.

    Versions still sort by time (every version of this form has the same length); two
    runs that finish in the same second differ unless their suffixes collide (1 in 10^4
    for two distinct run names), and an existing version is never overwritten anyway.
    """
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%d%H%M%S")
    modulus = 10**VERSION_SUFFIX_DIGITS
    if run_name:
        digest = hashlib.sha256(run_name.encode("utf-8")).digest()
        suffix = int.from_bytes(digest[:8], "big") % modulus
    else:
        suffix = secrets.randbelow(modulus)
    return f"{stamp}{suffix:0{VERSION_SUFFIX_DIGITS}d}"
