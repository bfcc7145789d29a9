"""The model server (KServe's ModelServer) over 127.0.0.1: every route, every class of bad
request, hot reload, readiness on a broken CURRENT, history features equal to the Beam
transform's, the quantile answers of a quantile model and the scalar ones of an older
point model."""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import re
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from components.common.features import FEATURE_NAMES, HISTORY_DAYS, Bar, latest_features
from components.deploy.deploy import rollback
from components.deploy.deploy import run as deploy
from components.deploy.repository import ModelRepository
from components.deploy.server import (
    MAX_BODY_BYTES,
    Batch,
    ForecastModel,
    RequestError,
    Server,
    parse_history,
)
from components.deploy.serving import Outputs
from components.deploy.source import open_source
from components.train.export import load_serving_fn

from .conftest import LEVELS, OFFSETS, read_bars

KEYS = ["0.05", "0.25", "0.5", "0.75", "0.95"]

NAME = "btc"
PREDICT = f"/v1/models/{NAME}:predict"


def _reject_constant(name: str):
    raise AssertionError(f"response is not valid JSON: it holds {name}")


def strict_json(data: bytes) -> object:
    """Parse as JSON, failing on NaN/Infinity (Python's json would accept them)."""
    return json.loads(data, parse_constant=_reject_constant)


def call(base: str, path: str, body: object = None, *, raw: bytes | None = None, method=None):
    """(status, parsed JSON, headers) of a request; every answer must be strict JSON."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(
        base + path,
        data=data,
        method=method or ("GET" if data is None else "POST"),
        headers={"Content-Type": "application/json"} if data is not None else {},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, strict_json(response.read()), response.headers
    except urllib.error.HTTPError as err:
        return err.code, strict_json(err.read()), err.headers


@contextlib.contextmanager
def running(source_uri: str, *, poll_seconds: float = 0.1, **routes) -> Iterator[str]:
    """A server on a free loopback port in a thread; yields its base URL."""
    model = ForecastModel(NAME, open_source(source_uri, NAME), poll_seconds=poll_seconds)
    model.load()
    server = Server(model, "127.0.0.1", 0, **routes)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.rest._server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        yield server.url
    finally:
        server.shutdown()
        thread.join(timeout=30)


def wait_for(predicate, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def history_json(bars) -> list[dict]:
    return [
        {
            "date": b.date.isoformat(),
            "open": b.open,
            "high": b.high,
            "low": b.low,
            "close": b.close,
            "volume": b.volume,
        }
        for b in bars
    ]


@pytest.fixture(scope="module")
def bitcoin_bars(bitcoin_csv):
    return read_bars(bitcoin_csv, last=HISTORY_DAYS + 9)


@pytest.fixture(scope="module")
def module_repo(model_sources, tmp_path_factory) -> Path:
    repo = tmp_path_factory.mktemp("served") / "repository"
    deploy(str(model_sources["v1"]), model_repository=str(repo), model_name=NAME)
    return repo


@pytest.fixture(scope="module")
def base(module_repo) -> Iterator[str]:
    """One server for the read-only tests (nothing here changes its repository)."""
    with running(str(module_repo)) as url:
        yield url


# --- routes -----------------------------------------------------------------------------


def test_model_status_and_health_routes(base):
    status, payload, _ = call(base, f"/v1/models/{NAME}")
    assert status == 200
    assert payload["name"] == NAME and payload["ready"] is True
    assert payload["version"] == payload["current_version"] == "1"
    assert payload["versions"] == ["1"] and payload["error"] is None
    assert payload["quantile_levels"] == list(LEVELS)
    assert call(base, "/v2/health/live")[:2] == (200, {"live": True})
    assert call(base, "/v2/health/ready")[:2] == (200, {"ready": True})
    # KServe's own routes, on the same model registry.
    assert call(base, "/v1/models")[:2] == (200, {"models": [NAME]})
    assert call(base, f"/v2/models/{NAME}/ready")[1]["ready"] is True


def test_metrics_are_prometheus_text_with_the_request_histograms(base, bitcoin_bars):
    rows = [latest_features(bitcoin_bars)]
    assert call(base, PREDICT, {"instances": rows})[0] == 200
    with urllib.request.urlopen(base + "/metrics", timeout=30) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    count = re.search(rf'request_predict_seconds_count{{model_name="{NAME}"}} (\S+)', text)
    assert count and float(count[1]) >= 1, text[:2000]
    assert f'request_preprocess_seconds_count{{model_name="{NAME}"}}' in text


def test_predict_feature_rows_answer_the_quantile_vectors_of_the_savedmodel(
    base, module_repo, bitcoin_bars
):
    rows = [latest_features(bitcoin_bars[: len(bitcoin_bars) - k]) for k in range(3)]
    status, payload, _ = call(base, PREDICT, {"instances": rows})
    assert status == 200, payload
    served = load_serving_fn(module_repo / NAME / "1")
    direct = served.quantiles({n: [r[n] for r in rows] for n in FEATURE_NAMES})
    assert payload["predictions"] == direct.tolist()
    for vector in payload["predictions"]:
        assert len(vector) == len(LEVELS) and vector == sorted(set(vector))  # increasing
        median = vector[LEVELS.index(0.5)]
        assert [q - median for q in vector] == pytest.approx(OFFSETS, abs=1e-6)


def test_predict_history_on_real_bitcoin_rows(base, module_repo, bitcoin_bars):
    bars = bitcoin_bars[-HISTORY_DAYS:]
    status, payload, _ = call(base, PREDICT, {"instances": [{"history": history_json(bars)}]})
    assert status == 200, payload
    (answer,) = payload["predictions"]
    features = latest_features(bars)
    served = load_serving_fn(module_repo / NAME / "1")
    direct = float(served({n: [features[n]] for n in features})[0])
    quantiles = served.quantiles({n: [features[n]] for n in features})[0].tolist()
    close = bars[-1].close
    assert answer == {
        "as_of": "2018-03-25",
        "close": close,
        "date": "2018-03-26",
        "log_return": direct,
        "predicted_close": pytest.approx(close * math.exp(direct)),
        "model_version": "1",
        "quantiles": {
            k: pytest.approx(close * math.exp(q)) for k, q in zip(KEYS, quantiles, strict=True)
        },
        "return_quantiles": dict(zip(KEYS, quantiles, strict=True)),
    }


def test_history_quantiles_are_increasing_and_consistent_with_the_median(base, bitcoin_bars):
    histories = [
        {"history": history_json(bitcoin_bars[k : k + HISTORY_DAYS])} for k in range(0, 9, 2)
    ]
    status, payload, _ = call(base, PREDICT, {"instances": histories})
    assert status == 200, payload
    for answer in payload["predictions"]:
        prices, returns = answer["quantiles"], answer["return_quantiles"]
        assert list(prices) == list(returns) == KEYS
        assert list(prices.values()) == sorted(set(prices.values()))  # increasing
        assert list(returns.values()) == sorted(set(returns.values()))
        # The median: the same log return and the same price as the point forecast.
        assert returns["0.5"] == answer["log_return"]
        assert prices["0.5"] == answer["predicted_close"]
        for key in KEYS:
            assert prices[key] == answer["close"] * math.exp(returns[key])
        assert prices["0.05"] < answer["close"] < prices["0.95"]


def test_a_batch_mixes_feature_rows_and_histories(base, bitcoin_bars):
    bars = bitcoin_bars[-HISTORY_DAYS:]
    row = latest_features(bars)
    body = {"instances": [row, {"history": history_json(bars)}, row], "parameters": {}}
    status, payload, _ = call(base, PREDICT, body)
    assert status == 200, payload
    first, forecast, last = payload["predictions"]
    assert first == last == list(forecast["return_quantiles"].values())
    assert first[LEVELS.index(0.5)] == forecast["log_return"]


def test_a_longer_history_gives_the_same_forecast(base, bitcoin_bars):
    def predict(bars):
        return call(base, PREDICT, {"instances": [{"history": history_json(bars)}]})[1]

    assert predict(bitcoin_bars) == predict(bitcoin_bars[-HISTORY_DAYS:])


def test_a_body_that_is_not_declared_json_is_still_parsed(base, bitcoin_bars):
    body = json.dumps({"instances": [latest_features(bitcoin_bars)]}).encode()
    request = urllib.request.Request(
        base + PREDICT, data=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert len(strict_json(response.read())["predictions"]) == 1


# --- bad requests -----------------------------------------------------------------------


def _with(good: list[dict], index: int, **changes) -> dict:
    out = [dict(b) for b in good]
    out[index].update(changes)
    return {"instances": [{"history": out}]}


def _bad_requests(good: list[dict]) -> list[tuple[str, object, bytes | None, str]]:
    row = {n: 0.01 for n in FEATURE_NAMES}
    gap = good[:10] + good[11:]
    swapped = [dict(b) for b in good]
    swapped[5], swapped[6] = swapped[6], swapped[5]
    duplicate = good[:6] + good[5:]
    extreme = [dict(b, open=1e300, high=1e300, low=1e300, close=1e300) for b in good]
    extreme[-1].update(open=1.7e308, high=1.7e308, close=1.7e308)
    huge_range = [dict(b) for b in good]
    huge_range[-1].update(open=1e300, high=1e300, low=1e-300, close=1e300)
    return [
        ("malformed json", None, b"{not json", "Unrecognized request format"),
        ("empty body", None, b"", "Unrecognized request format"),
        ("nested 100000 deep", None, b"[" * 100_000 + b"]" * 100_000, "depth limit"),
        ("400-digit number", None, b'{"instances": [%s]}' % (b"9" * 400), "infinity"),
        ("5000-digit number", None, b'{"instances": [%s]}' % (b"7" * 5000), "infinity"),
        ("1e400", None, b'{"instances": [{"ret_lag_1": 1e400}]}', "infinity"),
        ("NaN literal", None, b'{"instances": [{"ret_lag_1": NaN}]}', "Unrecognized"),
        ("not an object", [1, 2], None, "request body must be a JSON object"),
        ("no instances", {"rows": [row]}, None, '"instances"'),
        ("unknown body field", {"instances": [row], "extra": 1}, None, "unknown fields: extra"),
        ("empty instances", {"instances": []}, None, "non-empty list"),
        ("instances not a list", {"instances": {"a": 1}}, None, "non-empty list"),
        ("instance not an object", {"instances": [3]}, None, r"instances\[0\] must be a JSON"),
        (
            "missing feature",
            {"instances": [{k: v for k, v in row.items() if k != "ret_lag_3"}]},
            None,
            r"instances\[0\] is missing features: ret_lag_3",
        ),
        ("unknown feature", {"instances": [{**row, "colour": 1.0}]}, None, "features: colour"),
        ("string feature", {"instances": [{**row, "dow_sin": "1"}]}, None, "must be a number"),
        ("bool feature", {"instances": [{**row, "dow_sin": True}]}, None, "must be a number"),
        ("float32 overflow", {"instances": [{**row, "ret_lag_1": 1e39}]}, None, "float32"),
        ("history not a list", {"instances": [{"history": 5}]}, None, "must be a list"),
        (
            "history with extra keys",
            {"instances": [{"history": good, "coin": "btc"}]},
            None,
            "unknown fields: coin",
        ),
        (
            "short history",
            {"instances": [{"history": good[-(HISTORY_DAYS - 1) :]}]},
            None,
            f"too short: {HISTORY_DAYS - 1} days given.*at least {HISTORY_DAYS}",
        ),
        ("gap", {"instances": [{"history": gap}]}, None, "has a gap"),
        ("unsorted", {"instances": [{"history": swapped}]}, None, "must be sorted by date"),
        ("duplicate date", {"instances": [{"history": duplicate}]}, None, "duplicates the date"),
        (
            "bar not an object",
            {"instances": [{"history": [1] * HISTORY_DAYS}]},
            None,
            r"history\[0\] must be a JSON object",
        ),
        (
            "missing volume",
            {
                "instances": [
                    {"history": [{k: v for k, v in b.items() if k != "volume"} for b in good]}
                ]
            },
            None,
            r"history\[0\] is missing volume",
        ),
        ("unknown bar field", _with(good, 1, vwap=1.0), None, "unknown fields: vwap"),
        ("bad date", _with(good, 2, date="26/03/2018"), None, r"history\[2\].date must be"),
        ("non-date", _with(good, 2, date=20180326), None, "YYYY-MM-DD"),
        ("zero close", _with(good, 4, close=0), None, "non_positive_price: close=0.0"),
        ("negative low", _with(good, 4, low=-1.0), None, "non_positive_price"),
        ("high below low", _with(good, 4, high=1.0), None, "high_below_low"),
        (
            "close far above high",
            _with(good, 4, close=good[4]["high"] * 10),
            None,
            "close_outside_range",
        ),
        ("open below low", _with(good, 4, open=good[4]["low"] / 2), None, "open_outside_range"),
        ("negative volume", _with(good, 4, volume=-5.0), None, "negative_volume"),
        (
            "infinite feature from extreme range",
            {"instances": [{"history": huge_range}]},
            None,
            "log_hl_range",
        ),
        (
            "non-finite forecast",
            {"instances": [{"history": extreme}]},
            None,
            "predicted close overflows",
        ),
    ]


def test_bad_requests_get_400_with_json_naming_the_problem(base, bitcoin_bars):
    good = history_json(bitcoin_bars[-(HISTORY_DAYS + 1) :])
    for label, body, raw, message in _bad_requests(good):
        status, payload, _ = call(base, PREDICT, body, raw=raw)
        assert status == 400, (label, payload)
        assert set(payload) == {"error"} and payload["error"], label
        assert "Traceback" not in payload["error"], label
        assert re.search(message, payload["error"]), (label, payload["error"])


def test_bad_request_messages_name_the_instance_and_bar(base, bitcoin_bars):
    good = history_json(bitcoin_bars[-HISTORY_DAYS:])
    row = {n: 0.01 for n in FEATURE_NAMES}
    body = {"instances": [row, {"history": _with(good, 7, close=-3.0)["instances"][0]["history"]}]}
    _, payload, _ = call(base, PREDICT, body)
    assert payload["error"].startswith("instances[1].history[7] (")
    assert "close=-3.0" in payload["error"]


def test_oversized_bodies_get_413(base):
    raw = b" " * (MAX_BODY_BYTES + 1)
    status, payload, _ = call(base, PREDICT, raw=raw)
    assert status == 413 and "too large" in payload["error"]
    # Chunked, no Content-Length: counted as it arrives.
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    chunks = (b" " * (1024 * 1024) for _ in range(MAX_BODY_BYTES // (1024 * 1024) + 2))
    connection.request("POST", PREDICT, body=chunks, encode_chunked=True)
    response = connection.getresponse()
    assert response.status == 413 and "too large" in strict_json(response.read())["error"]
    connection.close()


def test_unknown_routes_models_and_methods_get_json(base):
    status, payload, _ = call(base, "/v1/models/eth:predict", {"instances": [{}]})
    assert status == 404 and "eth" in payload["error"]
    status, payload, _ = call(base, "/v1/models/eth")
    assert status == 404 and "eth" in payload["error"]
    status, payload, _ = call(base, "/nowhere")
    assert status == 404 and "/nowhere" in payload["error"]
    for method in ("PUT", "DELETE", "PATCH"):
        status, payload, headers = call(base, PREDICT, raw=b"{}", method=method)
        assert status == 405, method
        assert payload["error"].startswith(f"Method Not Allowed: {method} "), payload
        assert "POST" in headers["Allow"]
    status, payload, _ = call(base, "/v2/health/ready", raw=b"{}", method="POST")
    assert status == 405 and "error" in payload


def test_the_v2_infer_route_says_to_use_v1(base):
    body = {"inputs": [{"name": "ret_lag_1", "shape": [1], "datatype": "FP32", "data": [0.1]}]}
    status, payload, _ = call(base, f"/v2/models/{NAME}/infer", body)
    assert status == 400 and f"/v1/models/{NAME}:predict" in payload["error"]


# --- reload and readiness ---------------------------------------------------------------


def _status(url: str) -> dict:
    return call(url, f"/v1/models/{NAME}")[1]


def test_a_new_current_is_served_without_a_restart(model_dir, repo, bitcoin_bars):
    deploy(str(model_dir("v1")), model_repository=str(repo), model_name=NAME)
    row = {"instances": [latest_features(bitcoin_bars)]}
    with running(str(repo)) as url:
        v1 = call(url, PREDICT, row)[1]["predictions"]
        deploy(str(model_dir("v2")), model_repository=str(repo), model_name=NAME)
        wait_for(lambda: _status(url)["version"] == "2", what="version 2")
        v2 = call(url, PREDICT, row)[1]["predictions"]
        assert v2 != v1
        assert _status(url)["versions"] == ["1", "2"]
        rollback(str(repo), NAME)
        wait_for(lambda: _status(url)["version"] == "1", what="the rollback")
        assert call(url, PREDICT, row)[1]["predictions"] == v1


def _plant(repo: Path, source: Path, version: str) -> None:
    """Put a version folder with a deployment record in place, bypassing deploy's checks."""
    target = repo / NAME / version
    shutil.copytree(source, target)
    (target / "deployment.json").write_text(json.dumps({"version": version}))


@pytest.mark.parametrize("label", ["broken", "nan", "missing"])
def test_ready_is_false_while_current_cannot_load(label, model_dir, model_sources, repo):
    deploy(str(model_dir("v1")), model_repository=str(repo), model_name=NAME)
    if label == "broken":
        _plant(repo, model_sources["broken"] / "4", "4")
        bad = "4"
    elif label == "nan":
        _plant(repo, model_sources["nan"] / "3", "3")
        bad = "3"
    else:
        bad = "7"
    with running(str(repo)) as url:
        assert call(url, "/v2/health/ready")[:2] == (200, {"ready": True})
        ModelRepository(repo, NAME).set_current(bad)
        status, payload, _ = wait_for(
            lambda: (r := call(url, "/v2/health/ready"))[0] == 503 and r, what="not ready"
        )
        assert payload["ready"] is False and f"CURRENT version {bad}" in payload["error"]
        status, payload, _ = call(url, f"/v1/models/{NAME}")
        assert status == 503 and payload["ready"] is False and payload["version"] is None
        assert payload["current_version"] == bad and f"version {bad}" in payload["error"]
        status, payload, _ = call(url, PREDICT, {"instances": [{n: 0.0 for n in FEATURE_NAMES}]})
        assert status == 503 and "not ready" in payload["error"]
        assert call(url, "/v2/health/live")[0] == 200  # alive: a rollback will fix it
        ModelRepository(repo, NAME).set_current("1")
        wait_for(lambda: call(url, "/v2/health/ready")[0] == 200, what="ready again")
        assert _status(url)["version"] == "1"


def test_a_server_started_on_a_broken_current_is_up_but_not_ready(model_sources, repo):
    (repo / NAME).mkdir(parents=True)
    _plant(repo, model_sources["broken"] / "4", "4")
    ModelRepository(repo, NAME).set_current("4")
    with running(str(repo)) as url:
        status, payload, _ = call(url, "/v2/health/ready")
        assert status == 503 and "cannot be served" in payload["error"]
        _plant(repo, model_sources["v1"] / "1", "1")
        ModelRepository(repo, NAME).set_current("1")
        wait_for(lambda: call(url, "/v2/health/ready")[0] == 200, what="ready")


# --- Vertex AI's custom-container routes ------------------------------------------------


def test_vertex_health_and_predict_routes(module_repo, bitcoin_bars):
    health = "/v1/endpoints/123/deployedModels/456"
    predict = "/v1/endpoints/123/deployedModels/456:predict"
    with running(str(module_repo), health_route=health, predict_route=predict) as url:
        assert call(url, health)[:2] == (200, {"ready": True})
        body = {"instances": [latest_features(bitcoin_bars)]}
        status, payload, _ = call(url, predict, body)
        assert status == 200 and payload == call(url, PREDICT, body)[1]
        status, payload, _ = call(url, predict, {"instances": []})
        assert status == 400 and "non-empty" in payload["error"]


def test_a_savedmodel_folder_is_served_as_a_fixed_version(module_repo, bitcoin_bars):
    """What Vertex AI's AIP_STORAGE_URI names: one SavedModel, its version from its record."""
    with running(str(module_repo / NAME / "1")) as url:
        status = _status(url)
        assert status["ready"] and status["version"] == "1"
        assert call(url, PREDICT, {"instances": [latest_features(bitcoin_bars)]})[0] == 200


# --- no training/serving skew -----------------------------------------------------------


@pytest.mark.slow
def test_history_predictions_equal_predictions_on_the_transforms_rows(
    base, bitcoin_csv, tmp_path_factory
):
    """The Beam transform's feature rows and the server's features from raw history give
    the same prediction for the same days (tests/test_feature_skew.py compares the
    features themselves)."""
    import csv

    import pandas as pd

    from tests.components.transform.outputs import run_transform

    out = tmp_path_factory.mktemp("skew-http")
    run_transform(str(bitcoin_csv), str(out), coins="bitcoin")
    shards = pd.concat(
        pd.read_csv(p, float_precision="round_trip") for p in sorted(out.glob("test-*.csv"))
    ).set_index("date")
    with open(bitcoin_csv, newline="") as f:
        raw = sorted(
            (
                {"date": r["date"], **{k: float(r[k]) for k in ("open", "high", "low")}}
                | {"close": float(r["close"]), "volume": float(r["volume"])}
                for r in csv.DictReader(f)
            ),
            key=lambda r: r["date"],
        )
    dates = [r["date"] for r in raw]
    days = list(shards.index[-5:])
    histories = [
        {"history": raw[dates.index(day) + 1 - HISTORY_DAYS : dates.index(day) + 1]} for day in days
    ]
    rows = [{n: float(shards.loc[day, n]) for n in FEATURE_NAMES} for day in days]
    for day, history in zip(days, histories, strict=True):
        assert latest_features(parse_history(history)) == rows[days.index(day)]
    _, from_history, _ = call(base, PREDICT, {"instances": histories})
    _, from_rows, _ = call(base, PREDICT, {"instances": rows})
    assert [list(p["return_quantiles"].values()) for p in from_history["predictions"]] == from_rows[
        "predictions"
    ]
    assert [p["as_of"] for p in from_history["predictions"]] == days


# --- the forecast client (make predict) -------------------------------------------------


def test_forecast_cli_prints_the_median_and_the_90_percent_interval(base, bitcoin_csv, capsys):
    from components.deploy.__main__ import main

    argv = ["forecast", "--url", base, "--model-name", NAME, "--csv", str(bitcoin_csv)]
    assert main([*argv, "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["as_of"] == "2018-03-25" and answer["date"] == "2018-03-26"
    assert answer["model_version"] == "1" and answer["predicted_close"] > 0
    assert list(answer["quantiles"]) == list(answer["return_quantiles"]) == KEYS

    assert main(argv) == 0
    captured = capsys.readouterr()
    change = 100 * (answer["predicted_close"] / answer["close"] - 1)
    low, high = answer["quantiles"]["0.05"], answer["quantiles"]["0.95"]
    assert captured.out == (
        f"forecast for 2018-03-26: close {answer['predicted_close']:,.2f} ({change:+.2f}% "
        f"from {answer['close']:,.2f}); 90% interval {low:,.2f} .. {high:,.2f}; "
        "model version 1\n"
    )
    assert low < answer["predicted_close"] < high


def test_forecast_cli_without_a_server_fails_with_a_hint(bitcoin_csv, capsys):
    from components.deploy.__main__ import main

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = ["forecast", "--url", f"http://127.0.0.1:{port}", "--csv", str(bitcoin_csv)]
    assert main(argv) == 1
    assert "start one with `make serve`" in capsys.readouterr().err


# --- an older point model (exported before quantile forecasts) ---------------------------


def test_a_point_model_still_answers_scalars(model_dir, repo, bitcoin_bars, bitcoin_csv, capsys):
    from components.deploy.__main__ import main

    deploy(str(model_dir("point")), model_repository=str(repo), model_name=NAME)
    bars = bitcoin_bars[-HISTORY_DAYS:]
    row = latest_features(bars)
    body = {"instances": [row, {"history": history_json(bars)}]}
    with running(str(repo)) as url:
        status = _status(url)
        assert status["version"] == "5" and status["quantile_levels"] is None
        code, payload, _ = call(url, PREDICT, body)
        assert code == 200, payload
        scalar, answer = payload["predictions"]
        direct = float(load_serving_fn(repo / NAME / "5")({n: [row[n]] for n in row})[0])
        assert scalar == direct
        assert answer == {
            "as_of": "2018-03-25",
            "close": bars[-1].close,
            "date": "2018-03-26",
            "log_return": direct,
            "predicted_close": pytest.approx(bars[-1].close * math.exp(direct)),
            "model_version": "5",
        }
        argv = ["forecast", "--url", url, "--model-name", NAME, "--csv", str(bitcoin_csv)]
        assert main(argv) == 0
    line = capsys.readouterr().out
    assert line.startswith("forecast for 2018-03-26: close ") and "interval" not in line
    assert line.endswith("; model version 5\n")


# --- non-finite quantiles and prices (a stand-in model gives the outputs) ----------------


class _Outputs:
    """Stands in for a loaded quantile model: ``outputs`` gives fixed values."""

    def __init__(self, medians: list[float], quantiles: list[list[float]]):
        import numpy as np

        self.version = "9"
        self.levels = (0.05, 0.5, 0.95)
        self.level_keys = ("0.05", "0.5", "0.95")
        self._outputs = Outputs(np.asarray(medians, np.float32), np.asarray(quantiles, np.float32))

    def outputs(self, rows):
        return self._outputs


def _bars(close: float) -> list[Bar]:
    import datetime as dt

    start = dt.date(2020, 1, 1)
    return [Bar(start + dt.timedelta(days=i), close, close, close, close, 1.0) for i in range(3)]


def test_a_non_finite_quantile_is_an_error_naming_it():
    model = ForecastModel(NAME, None)
    stand_in = _Outputs([0.01], [[-0.1, 0.01, float("inf")]])
    with pytest.raises(RequestError, match=r"instances\[0\]: .* not finite at the quantile 0.95"):
        model.predict(Batch(stand_in, [{}], [None]))


def test_a_price_quantile_that_overflows_is_an_error_naming_it():
    """The median's price is finite, the 0.95 quantile's is not: no Infinity answered."""
    model = ForecastModel(NAME, None)
    stand_in = _Outputs([0.0], [[-1.0, 0.0, 80.0]])
    last = _bars(1e300)[-1]
    with pytest.raises(RequestError, match="predicted close overflows at the quantile 0.95"):
        model.predict(Batch(stand_in, [{}], [last]))
    (answer,) = model.predict(Batch(_Outputs([0.0], [[-1.0, 0.0, 1.0]]), [{}], [last]))
    assert answer["quantiles"] == {"0.05": 1e300 * math.exp(-1.0), "0.5": 1e300,
                                   "0.95": 1e300 * math.exp(1.0)}  # fmt: skip


def test_make_server_runs_like_a_socketserver(module_repo, bitcoin_bars):
    """The shape tests/pipeline/test_local_e2e.py drives: serve_forever in a thread,
    server_address, shutdown() from another thread, server_close()."""
    from components.deploy.server import make_server

    server = make_server(module_repo, NAME, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        body = {"instances": [latest_features(bitcoin_bars)]}
        status, payload, _ = call(f"http://{host}:{port}", PREDICT, body)
        assert status == 200 and len(payload["predictions"]) == 1
    finally:
        server.shutdown()
        server.server_close()
    thread.join(timeout=5)
    assert not thread.is_alive()
