"""Price metrics on a hand-made series, values computed by hand."""

import math

import numpy as np
import pytest

from components.train.evaluate import evaluate, flat_metrics, price_metrics, ratio

TODAY = np.array([100.0, 110.0, 100.0, 100.0])
ACTUAL_NEXT = np.array([110.0, 99.0, 100.0, 105.0])  # up, down, flat, up
PREDICTED_NEXT = np.array([105.0, 100.0, 101.0, 104.0])  # up, down, up, up


def test_model_metrics_by_hand():
    m = price_metrics(TODAY, ACTUAL_NEXT, PREDICTED_NEXT)
    # errors: -5, +1, +1, -1
    assert m["mae"] == pytest.approx(2.0)
    assert m["rmse"] == pytest.approx(math.sqrt(28 / 4))
    assert m["mape"] == pytest.approx(100 * (5 / 110 + 1 / 99 + 1 / 100 + 1 / 105) / 4)
    assert m["directional_accuracy"] == pytest.approx(0.75)  # wrong only on the flat day


def test_persistence_baseline_by_hand():
    b = price_metrics(TODAY, ACTUAL_NEXT, TODAY)
    # errors: -10, +11, 0, -5
    assert b["mae"] == pytest.approx(6.5)
    assert b["rmse"] == pytest.approx(math.sqrt(246 / 4))
    assert b["mape"] == pytest.approx(100 * (10 / 110 + 11 / 99 + 0 + 5 / 105) / 4)
    assert b["directional_accuracy"] == pytest.approx(0.25)  # "no change" matches the flat day only


def test_evaluate_from_log_returns():
    result = evaluate(TODAY, np.log(ACTUAL_NEXT / TODAY), np.log(PREDICTED_NEXT / TODAY))
    assert result["model"]["mae"] == pytest.approx(2.0)
    assert result["baseline"]["mae"] == pytest.approx(6.5)
    assert result["mae_ratio"] == pytest.approx(2.0 / 6.5)
    flat = flat_metrics(result)
    assert flat["model_rmse"] == pytest.approx(math.sqrt(7))
    assert flat["baseline_directional_accuracy"] == pytest.approx(0.25)
    assert set(flat) == {
        f"{w}_{n}"
        for w in ("model", "baseline")
        for n in ("mae", "rmse", "mape", "directional_accuracy")
    } | {"mae_ratio"}


def test_zero_log_return_is_persistence():
    result = evaluate(TODAY, np.log(ACTUAL_NEXT / TODAY), np.zeros(4))
    assert result["mae_ratio"] == pytest.approx(1.0)
    assert result["model"] == pytest.approx(result["baseline"])


def test_ratio_with_a_perfect_baseline():
    assert ratio(0.0, 0.0) == 1.0
    assert ratio(1.0, 0.0) == math.inf


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError, match="1-D arrays of one length"):
        price_metrics(TODAY, ACTUAL_NEXT[:3], PREDICTED_NEXT)
    with pytest.raises(ValueError, match="no rows"):
        price_metrics(np.array([]), np.array([]), np.array([]))


def test_per_coin_mae_separates_coins_of_different_price_levels():
    from components.train.report import per_coin_mae, per_coin_table

    coins = np.array(["big", "big", "big", "small", "small"])
    today = np.array([1000.0, 1010.0, 1020.0, 1.0, 1.1])
    actual = np.array([1010.0, 1020.0, 1000.0, 1.1, 1.0])
    predicted = np.array([1005.0, 1030.0, 1000.0, 1.05, 1.1])
    rows = per_coin_mae(coins, today, actual, predicted)
    # big: model |−5|,|10|,|0| → 5.0; persistence |−10|,|−10|,|20| → 40/3.
    # small: model |−0.05|,|0.1| → 0.075; persistence |−0.1|,|0.1| → 0.1.
    assert [(c, n) for c, n, _, _ in rows] == [("big", 3), ("small", 2)]
    assert rows[0][2] == pytest.approx(5.0) and rows[0][3] == pytest.approx(40 / 3)
    assert rows[1][2] == pytest.approx(0.075) and rows[1][3] == pytest.approx(0.1)
    table = per_coin_table(coins, today, actual, predicted)
    assert "2 of 2 coins beat persistence" in table and "0.7500" in table


def test_report_has_a_per_coin_table_only_for_several_coins(tmp_path):
    from components.train.evaluate import evaluate as evaluate_prices
    from components.train.report import write_report

    def report(coins):
        today = np.array([100.0, 101.0, 102.0, 1.0])
        actual = np.array([101.0, 102.0, 100.0, 1.1])
        predicted = np.array([100.5, 101.5, 101.0, 1.05])
        path = write_report(
            tmp_path / f"{len(set(coins))}.html",
            model_name="m",
            version="1",
            evaluation=evaluate_prices(today, actual, predicted),
            passed_gate=True,
            max_mae_ratio=1.0,
            histories=[{"loss": [1.0, 0.5], "val_loss": [1.1, 0.9]}],
            hparams={"l2": 0.01},
            splits={"test": "4 rows"},
            coins=np.array(coins),
            dates=np.array(
                ["2018-01-01", "2018-01-02", "2018-01-03", "2018-01-01"], dtype="datetime64[D]"
            ),
            today=today,
            actual_next=actual,
            predicted_next=predicted,
        )
        return path.read_text()

    several = report(["btc", "btc", "btc", "doge"])
    assert "<h2>Per coin</h2>" in several and "<td>doge</td>" in several
    assert "<h2>Per coin</h2>" not in report(["btc"] * 4)
