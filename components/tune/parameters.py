"""The tune step's parameter checks (standard library only: the pipeline checks a run's
parameters before any step without loading Optuna or the trainer)."""

from __future__ import annotations

from components.common.results import integer_problem, number_problem

BACKENDS: tuple[str, ...] = ("optuna", "vertex")
SELECTIONS: tuple[str, ...] = ("one_se", "min")
#: The search's sampler and the trials' nets are seeded with it (numpy: below 2**32).
MAX_SEED = 2**31 - 1


def check_parameters(
    *,
    n_trials: object = None,
    timeout_s: object = None,
    max_epochs: object = None,
    seed: object = None,
    backend: object = None,
    patience: object = None,
    selection: object = None,
) -> dict[str, str]:
    """``{parameter: problem}`` for the given (not None) parameters of ``tune.run``."""
    problems = {
        "n_trials": n_trials is not None and integer_problem("n_trials", n_trials, 1),
        "timeout_s": timeout_s is not None and number_problem("timeout_s", timeout_s, above=0),
        "max_epochs": max_epochs is not None and integer_problem("max_epochs", max_epochs, 1),
        "seed": seed is not None and integer_problem("seed", seed, 0, MAX_SEED),
        "patience": patience is not None and integer_problem("patience", patience, 1),
    }
    if backend is not None and backend not in BACKENDS:
        problems["backend"] = (
            f"unknown tune backend {backend!r}; expected one of {', '.join(BACKENDS)}"
        )
    if selection is not None and selection not in SELECTIONS:
        problems["selection"] = (
            f"selection must be one of {', '.join(SELECTIONS)}, got {selection!r}"
        )
    return {name: problem for name, problem in problems.items() if problem}
