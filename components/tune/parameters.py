"""The tune step's parameter checks (standard library only: the pipeline checks a run's
parameters before any step without loading Optuna or the trainer)."""

from __future__ import annotations

from components.common.quantiles import quantile_levels_problem
from components.common.results import integer_problem, number_problem

BACKENDS: tuple[str, ...] = ("optuna", "vertex")
SELECTIONS: tuple[str, ...] = ("one_se", "min")
#: The search's sampler and the trials' nets are seeded with it (numpy: below 2**32).
MAX_SEED = 2**31 - 1
#: More trials than any search here needs (each trains a net): a larger count is a typo.
MAX_TRIALS = 10_000


def check_parameters(
    *,
    n_trials: object = None,
    timeout_s: object = None,
    max_epochs: object = None,
    seed: object = None,
    backend: object = None,
    patience: object = None,
    selection: object = None,
    parallel_trials: object = None,
    quantile_levels: object = None,
    vertex_project: object = None,
    vertex_region: object = None,
    vertex_service_account: object = None,
    vertex_staging_bucket: object = None,
    vertex_machine_type: object = None,
    vertex_image: object = None,
) -> dict[str, str]:
    """``{parameter: problem}`` for the given (not None) parameters of ``tune.run``. The
    ``vertex_*`` settings are required only with ``backend="vertex"``."""
    problems = {
        "n_trials": n_trials is not None and integer_problem("n_trials", n_trials, 1, MAX_TRIALS),
        "timeout_s": timeout_s is not None and number_problem("timeout_s", timeout_s, above=0),
        "max_epochs": max_epochs is not None and integer_problem("max_epochs", max_epochs, 1),
        "seed": seed is not None and integer_problem("seed", seed, 0, MAX_SEED),
        "patience": patience is not None and integer_problem("patience", patience, 1),
        "quantile_levels": quantile_levels is not None and quantile_levels_problem(quantile_levels),
    }
    if backend is not None and backend not in BACKENDS:
        problems["backend"] = (
            f"unknown tune backend {backend!r}; expected one of {', '.join(BACKENDS)}"
        )
    if selection is not None and selection not in SELECTIONS:
        problems["selection"] = (
            f"selection must be one of {', '.join(SELECTIONS)}, got {selection!r}"
        )
    if parallel_trials is not None:
        problems["parallel_trials"] = integer_problem("parallel_trials", parallel_trials, 1)
        if (
            backend == "vertex"
            and not problems["parallel_trials"]
            and isinstance(n_trials, int)
            and parallel_trials > n_trials
        ):
            problems["parallel_trials"] = (
                f"parallel_trials must be at most n_trials={n_trials}, got {parallel_trials}"
            )
    if backend == "vertex":
        problems.update(
            vertex_problems(
                project=vertex_project,
                region=vertex_region,
                service_account=vertex_service_account,
                staging_bucket=vertex_staging_bucket,
                machine_type=vertex_machine_type,
                image=vertex_image,
            )
        )
    return {name: problem for name, problem in problems.items() if problem}


#: Run-time settings given by the pipeline (the image comes from images.json, not a
#: parameter: checked only when given).
_VERTEX_REQUIRED = ("project", "region", "service_account", "staging_bucket")


def vertex_problems(*, image: object = None, **settings: object) -> dict[str, str]:
    """``{vertex_<setting>: problem}`` for the Vertex AI tuning settings (backend=vertex).
    A required setting that is missing or empty is a problem; so is a staging bucket that is
    not gs:// and an image that is not pinned by digest."""
    problems = {
        f"vertex_{name}": f"vertex_{name} is required with backend=vertex"
        for name in _VERTEX_REQUIRED
        if not settings.get(name)
    }
    bucket = settings.get("staging_bucket")
    if bucket and not str(bucket).startswith("gs://"):
        problems["vertex_staging_bucket"] = (
            f"vertex_staging_bucket must be a gs:// URI, got {bucket!r}"
        )
    if "machine_type" in settings and settings["machine_type"] == "":
        problems["vertex_machine_type"] = "vertex_machine_type must not be empty"
    if image == "":
        problems["vertex_image"] = (
            "vertex_image is required with backend=vertex (the tune image by digest, from "
            "images.json)"
        )
    elif image is not None and "@sha256:" not in str(image):
        problems["vertex_image"] = (
            f"vertex_image must be the tune image pinned by digest (…@sha256:…), got {image!r}"
        )
    return problems
