"""The deploy gate: the challenger against persistence and the current champion, on the
same test window, with a Diebold–Mariano test on absolute errors. Pure numpy and math.

Diebold–Mariano (1995) with the Harvey–Leybourne–Newbold (1997) small-sample correction,
written from their definitions: for loss differentials ``d_t = L(a_t) - L(b_t)``
(``L`` = absolute error) over ``T`` forecasts ``h`` steps ahead,

    DM   = mean(d) / sqrt((gamma_0 + 2 * sum_{k=1}^{h-1} gamma_k) / T)
    DM*  = DM * sqrt((T + 1 - 2h + h(h - 1) / T) / T)

where ``gamma_k = (1/T) * sum_{t=k+1}^{T} (d_t - mean(d)) (d_{t-k} - mean(d))``, and
``DM*`` is compared with Student's t with ``T - 1`` degrees of freedom. The p-value here
is one-sided: the evidence that ``a`` has the smaller expected absolute error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Forecast horizon of the next-day close: one step ahead.
HORIZON = 1


def student_t_cdf(t: float, df: int) -> float:
    """P(T <= t) for Student's t with an integer ``df`` >= 1, from the finite series of
    the two-sided probability ``A(t|df)`` (Abramowitz & Stegun 26.7.3 and 26.7.4)."""
    if df < 1 or int(df) != df:
        raise ValueError(f"degrees of freedom must be a positive integer, got {df!r}")
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    theta = math.atan(abs(t) / math.sqrt(df))
    c2, s = math.cos(theta) ** 2, math.sin(theta)
    if df % 2 == 1:
        total, term = 0.0, math.cos(theta)
        for k in range(1, (df - 1) // 2 + 1):  # cos θ (1 + 2/3 cos²θ + 2·4/(3·5) cos⁴θ ...)
            total += term
            term *= c2 * (2 * k) / (2 * k + 1)
        two_sided = (2 / math.pi) * (theta + (s * total if df > 1 else 0.0))
    else:
        total, term = 0.0, 1.0
        for k in range(1, df // 2 + 1):  # 1 + 1/2 cos²θ + 1·3/(2·4) cos⁴θ ...
            total += term
            term *= c2 * (2 * k - 1) / (2 * k)
        two_sided = s * total
    two_sided = min(max(two_sided, 0.0), 1.0)
    return 0.5 + 0.5 * two_sided if t >= 0 else 0.5 - 0.5 * two_sided


@dataclass(frozen=True)
class DieboldMariano:
    statistic: float  #: DM* (HLN-corrected); negative: ``a`` has the smaller errors
    p_value: float  #: one-sided, H1: ``a``'s expected absolute error is smaller
    n: int


def diebold_mariano(error_a, error_b, horizon: int = HORIZON) -> DieboldMariano:
    """DM* on the absolute errors of forecasts ``a`` (challenger) and ``b``."""
    a = np.abs(np.asarray(error_a, dtype=np.float64))
    b = np.abs(np.asarray(error_b, dtype=np.float64))
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError("the two error series must be 1-D and of one length")
    n = int(a.size)
    if n < 2:
        raise ValueError(f"the Diebold-Mariano test needs at least 2 forecasts, got {n}")
    d = a - b
    mean = float(np.mean(d))
    centred = d - mean
    variance = float(np.dot(centred, centred)) / n
    for k in range(1, horizon):
        variance += 2 * float(np.dot(centred[k:], centred[:-k])) / n
    if variance <= 0:  # every d_t equal: no spread to weigh the mean against
        statistic = 0.0 if mean == 0 else math.copysign(math.inf, mean)
    else:
        dm = mean / math.sqrt(variance / n)
        statistic = dm * math.sqrt((n + 1 - 2 * horizon + horizon * (horizon - 1) / n) / n)
    return DieboldMariano(statistic, student_t_cdf(statistic, n - 1), n)


def _against_champion(
    loss: str,
    ratio: float | None,
    test: DieboldMariano | None,
    version: str,
    min_improvement: float,
    significance: float,
) -> tuple[str | None, str, str]:
    """The champion comparison both gates make: ``(failed outcome or None, "<loss> +x%
    against champion V (min_improvement y%)", "Diebold-Mariano DM* s, p q")``."""
    if ratio is None or test is None:
        raise ValueError(f"a champion needs its {loss} ratio and the Diebold-Mariano test")
    improvement = 1 - ratio
    versus = (
        f"{loss} {improvement:+.2%} against champion {version} "
        f"(min_improvement {min_improvement:.2%})"
    )
    shown = f"Diebold-Mariano DM* {test.statistic:.2f}, p {test.p_value:.3f}"
    if not (ratio < 1 and improvement >= min_improvement):
        return "not-better-than-champion", versus, shown
    if not test.p_value < significance:
        return "not-significant", versus, shown
    return None, versus, shown


@dataclass(frozen=True)
class GateDecision:
    deploy: bool
    outcome: str  #: one of OUTCOMES
    reason: str  #: one sentence for the summary and the report


OUTCOMES = (
    "no-champion-passed",
    "no-champion-failed",
    "worse-than-persistence",
    "beats-both",
    "not-better-than-champion",
    "not-significant",
    "identical-to-champion",
    "not-better-than-baseline",
    "miscalibrated",
)


def _identical(champion_version: str) -> GateDecision:
    """Both gates' answer for a challenger identical to the champion."""
    return GateDecision(
        False,
        "identical-to-champion",
        f"not deployed: the challenger is identical to champion version {champion_version} "
        "(same data SHA-256, same hyper-parameters and seed); nothing to replace",
    )


def decide(
    *,
    mae_ratio: float,
    max_mae_ratio: float,
    champion_version: str | None = None,
    identical: bool = False,
    champion_mae_ratio: float | None = None,
    dm_champion: DieboldMariano | None = None,
    min_improvement: float = 0.0,
    significance: float = 0.05,
) -> GateDecision:
    """Deploy only a challenger that beats persistence (``mae_ratio <= max_mae_ratio``)
    and, when there is a champion, has ``MAE <= (1 - min_improvement) * champion MAE``
    (strictly below it) with a one-sided DM p-value below ``significance``. A challenger
    identical to the champion (``identical``) is never deployed again."""
    vs_persistence = f"mae_ratio {mae_ratio:.4f} (max {max_mae_ratio:g})"
    if champion_version is not None and identical:
        return _identical(champion_version)
    if mae_ratio > max_mae_ratio:
        outcome = "no-champion-failed" if champion_version is None else "worse-than-persistence"
        return GateDecision(
            False, outcome, f"not deployed: worse than persistence, {vs_persistence}"
        )
    if champion_version is None:
        return GateDecision(
            True,
            "no-champion-passed",
            f"deploy: no champion yet, persistence decides: {vs_persistence}",
        )
    failed, versus, test = _against_champion(
        "MAE", champion_mae_ratio, dm_champion, champion_version, min_improvement, significance
    )
    if failed == "not-better-than-champion":
        return GateDecision(False, failed, f"not deployed: beats persistence but {versus}")
    if failed:
        return GateDecision(
            False,
            failed,
            f"not deployed: {versus}, but not significant: {test} >= significance {significance:g}",
        )
    return GateDecision(
        True, "beats-both", f"deploy: beats persistence ({vs_persistence}) and {versus}; {test}"
    )


def decide_quantile(
    *,
    pinball_ratio: float,
    dm_baseline: DieboldMariano,
    coverage: float,
    nominal: float = 0.90,
    coverage_tolerance: float = 0.05,
    champion_version: str | None = None,
    identical: bool = False,
    champion_pinball_ratio: float | None = None,
    dm_champion: DieboldMariano | None = None,
    min_improvement: float = 0.0,
    significance: float = 0.05,
    baseline_label: str = "historical quantiles",
) -> GateDecision:
    """The pinball gate: deploy only a challenger whose mean pinball loss is below the
    baseline's (``pinball_ratio < 1``) with a one-sided Diebold-Mariano p-value on the
    per-day pinball losses below ``significance``, whose central interval covers
    ``nominal`` of the test days within ``coverage_tolerance``, and that beats the champion
    (if any) as the MAE gate does, on pinball loss. Every failed condition is named with
    its figure and threshold."""
    if champion_version is not None and identical:
        return _identical(champion_version)
    test = f"DM p {dm_baseline.p_value:.3f}"
    versus = f"pinball_ratio {pinball_ratio:.4f} against {baseline_label}, {test}"
    failures = []
    outcome = "not-better-than-baseline"
    if not pinball_ratio < 1:
        failures.append(
            f"pinball loss not below {baseline_label}: pinball_ratio {pinball_ratio:.4f} "
            f"({pinball_ratio - 1:+.2%}, must be < 1)"
        )
    elif not dm_baseline.p_value < significance:
        failures.append(
            f"better than {baseline_label} (pinball_ratio {pinball_ratio:.4f}) but not "
            f"significantly: DM p {dm_baseline.p_value:.3f} >= significance {significance:g}"
        )
    miss = coverage - nominal
    calibration = f"{nominal:.0%} coverage {coverage:.3f}"
    if not abs(miss) <= coverage_tolerance + 1e-12:
        outcome = outcome if failures else "miscalibrated"
        failures.append(
            f"{calibration} is {abs(miss):.3f} {'below' if miss < 0 else 'above'} "
            f"{nominal:.2f} (coverage_tolerance {coverage_tolerance:g})"
        )
    if failures:
        return GateDecision(False, outcome, "not deployed: " + "; ".join(failures))
    passed = f"{versus}; {calibration}"
    if champion_version is None:
        return GateDecision(True, "no-champion-passed", f"deploy: no champion yet; {passed}")
    failed, against, champion_test = _against_champion(
        "pinball loss",
        champion_pinball_ratio,
        dm_champion,
        champion_version,
        min_improvement,
        significance,
    )
    if failed == "not-better-than-champion":
        return GateDecision(False, failed, f"not deployed: {passed}, but {against}")
    if failed:
        return GateDecision(
            False,
            failed,
            f"not deployed: {against}, but not significant: {champion_test} >= significance "
            f"{significance:g}",
        )
    return GateDecision(True, "beats-both", f"deploy: {passed}; {against}; {champion_test}")
