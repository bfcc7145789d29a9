"""The local model server on 127.0.0.1: predict, forecast on real Bitcoin rows, errors."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import threading
import urllib.error
import urllib.request

import pytest

from components.common.features import FEATURE_NAMES, HISTORY_DAYS, latest_features
from components.deploy.deploy import rollback
from components.deploy.deploy import run as deploy
from components.deploy.server import make_server
from components.train.export import load_serving_fn

from .conftest import read_bars

NAME = "btc"


@pytest.fixture
def server(model_dir, repo):
    deploy(str(model_dir("v1")), model_repository=str(repo), model_name=NAME)
    srv = make_server(repo, NAME, "127.0.0.1", 0)
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    host, port = srv.server_address[:2]
    srv.base_url = f"http://{host}:{port}"
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=5)


def call(server, path: str, body: object = None, *, raw: bytes | None = None):
    """(status, JSON payload) of a GET (no body) or POST to the server."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(
        server.base_url + path, data=data, method="GET" if data is None else "POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


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


def test_status(server):
    status, payload = call(server, f"/v1/models/{NAME}")
    assert status == 200
    assert payload["name"] == NAME
    assert payload["current_version"] == "1"
    assert payload["versions"] == ["1"]
    assert payload["model_version_status"][0]["state"] == "AVAILABLE"


def test_predict_matches_the_model(server, repo, bitcoin_bars):
    rows = [latest_features(bitcoin_bars[: len(bitcoin_bars) - k]) for k in range(3)]
    status, payload = call(server, f"/v1/models/{NAME}:predict", {"instances": rows})
    assert status == 200, payload
    direct = load_serving_fn(repo / NAME / "1")({n: [r[n] for r in rows] for n in FEATURE_NAMES})
    assert payload["predictions"] == [float(v) for v in direct]


def test_forecast_on_real_bitcoin_rows(server, repo, bitcoin_bars):
    bars = bitcoin_bars[-HISTORY_DAYS:]
    status, payload = call(server, f"/v1/models/{NAME}:forecast", {"history": history_json(bars)})
    assert status == 200, payload

    expected_features = latest_features(bars)
    assert payload["features"] == expected_features
    direct = load_serving_fn(repo / NAME / "1")({n: [v] for n, v in expected_features.items()})
    assert payload["log_return"] == float(direct[0])
    assert payload["model_version"] == "1"
    assert payload["as_of"] == bars[-1].date.isoformat() == "2018-03-25"
    assert payload["date"] == "2018-03-26"
    assert payload["close"] == bars[-1].close
    assert payload["predicted_close"] == pytest.approx(bars[-1].close * math.exp(float(direct[0])))


def test_forecast_uses_only_the_history_it_needs(server, bitcoin_bars):
    """A longer history gives the same forecast as its last HISTORY_DAYS days."""
    _, long = call(server, f"/v1/models/{NAME}:forecast", {"history": history_json(bitcoin_bars)})
    _, short = call(
        server,
        f"/v1/models/{NAME}:forecast",
        {"history": history_json(bitcoin_bars[-HISTORY_DAYS:])},
    )
    assert long["log_return"] == short["log_return"]


def test_serves_current_after_deploy_and_rollback(server, model_dir, repo):
    deploy(str(model_dir("v2")), model_repository=str(repo), model_name=NAME)
    instance = {"instances": [{n: 0.01 for n in FEATURE_NAMES}]}
    _, v2 = call(server, f"/v1/models/{NAME}:predict", instance)
    rollback(str(repo), NAME)
    _, v1 = call(server, f"/v1/models/{NAME}:predict", instance)
    assert v1 != v2
    assert call(server, f"/v1/models/{NAME}")[1]["current_version"] == "1"


def _bars_with(bars, index, **changes):
    out = history_json(bars)
    out[index] = {**out[index], **changes}
    return {"history": out}


def _bad_requests(bars):
    good = history_json(bars)
    row = {n: 0.0 for n in FEATURE_NAMES}
    gap = good[:10] + good[11:]
    swapped = good[:]
    swapped[5], swapped[6] = swapped[6], swapped[5]
    return [
        ("malformed json", ":predict", None, b"{not json", "malformed JSON body"),
        ("no body", ":forecast", None, b"", "malformed JSON body"),
        ("no instances", ":predict", {"rows": [row]}, None, '"instances"'),
        ("empty instances", ":predict", {"instances": []}, None, "non-empty list"),
        (
            "missing feature",
            ":predict",
            {"instances": [{k: v for k, v in row.items() if k != "ret_lag_3"}]},
            None,
            "instances\\[0\\] is missing features: ret_lag_3",
        ),
        (
            "unknown feature",
            ":predict",
            {"instances": [{**row, "colour": 1.0}]},
            None,
            "unknown features: colour",
        ),
        (
            "string value",
            ":predict",
            {"instances": [{**row, "dow_sin": "1"}]},
            None,
            "instances\\[0\\].dow_sin must be a number",
        ),
        ("no history", ":forecast", {"bars": good}, None, '"history"'),
        (
            "too little history",
            ":forecast",
            {"history": good[-(HISTORY_DAYS - 1) :]},
            None,
            f"too little history: {HISTORY_DAYS - 1} days given.*at least {HISTORY_DAYS}",
        ),
        (
            "zero close",
            ":forecast",
            _bars_with(bars, 4, close=0),
            None,
            "non-positive prices: close=0.0",
        ),
        (
            "negative low",
            ":forecast",
            _bars_with(bars, 4, low=-1.0),
            None,
            "non-positive prices: low=-1.0",
        ),
        (
            "missing volume",
            ":forecast",
            {"history": [{k: v for k, v in b.items() if k != "volume"} for b in good]},
            None,
            "history\\[0\\] is missing volume",
        ),
        (
            "bad date",
            ":forecast",
            _bars_with(bars, 2, date="26/03/2018"),
            None,
            "history\\[2\\].date must be YYYY-MM-DD",
        ),
        ("gap", ":forecast", {"history": gap}, None, "history has a gap"),
        ("unsorted", ":forecast", {"history": swapped}, None, "must be sorted by date"),
        ("duplicate", ":forecast", {"history": good[:1] + good}, None, "without duplicates"),
        (
            "nan",
            ":forecast",
            None,
            json.dumps(_bars_with(bars, 3, open=float("nan"))).encode(),
            "must be finite",
        ),
    ]


def test_bad_requests_get_400_with_a_message(server, bitcoin_bars):
    bars = bitcoin_bars[-(HISTORY_DAYS + 1) :]
    for label, verb, body, raw, message in _bad_requests(bars):
        status, payload = call(server, f"/v1/models/{NAME}{verb}", body, raw=raw)
        assert status == 400, (label, payload)
        assert set(payload) == {"error"}, label
        assert payload["error"] and "Traceback" not in payload["error"], label
        assert re.search(message, payload["error"]), (label, payload["error"])


def test_unknown_model_and_path_get_404(server):
    status, payload = call(server, "/v1/models/eth:predict", {"instances": []})
    assert status == 404 and "unknown model 'eth'; this server serves 'btc'" in payload["error"]
    status, payload = call(server, "/v2/anything")
    assert status == 404 and "no such endpoint" in payload["error"]
    status, payload = call(server, f"/v1/models/{NAME}:explain", {"instances": []})
    assert status == 405 and "not supported" in payload["error"]


def test_nothing_deployed_is_503(tmp_path):
    srv = make_server(tmp_path / "empty-repo", NAME, "127.0.0.1", 0)
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    srv.base_url = "http://{}:{}".format(*srv.server_address[:2])
    try:
        status, payload = call(
            srv, f"/v1/models/{NAME}:predict", {"instances": [{n: 0.0 for n in FEATURE_NAMES}]}
        )
        assert status == 503 and "has no deployed version" in payload["error"]
    finally:
        srv.shutdown()
        srv.server_close()


def test_history_dates_are_daily(bitcoin_bars):
    """Guard for the fixture itself: the shared file's tail is consecutive days."""
    steps = {(b.date - a.date) for a, b in zip(bitcoin_bars, bitcoin_bars[1:], strict=False)}
    assert steps == {dt.timedelta(days=1)}
