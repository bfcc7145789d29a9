"""Local model server: the CURRENT version of one model over a TF-Serving-shaped REST API.

    GET  /v1/models/<name>            status: deployed versions and the CURRENT one
    POST /v1/models/<name>:predict    {"instances": [{feature: value, ...}, ...]}
                                      -> {"predictions": [log_return, ...]}
    POST /v1/models/<name>:forecast   {"history": [{"date": "YYYY-MM-DD", "open": ..,
                                      "high": .., "low": .., "close": .., "volume": ..}, ...]}
                                      -> next date, predicted log return and close

``:forecast`` computes the features with ``components.common.features`` (the module the
Beam transform uses), so serving and training cannot drift apart. CURRENT is re-read on
every request: a deploy or rollback takes effect without a restart. Client errors get a
JSON ``{"error": ...}`` with status 400 (404 for an unknown model or path, 503 when
nothing is deployed); a traceback never reaches the client.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import re
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from components.common.features import HISTORY_DAYS, Bar, latest_features
from components.deploy.repository import ModelRepository
from components.deploy.serving import ModelLoadError, ServingModel

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_INSTANCES = 10_000
_PATH = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?::(?P<verb>[a-z]+))?/?$")
_BAR_FIELDS = ("open", "high", "low", "close", "volume")


class RequestError(Exception):
    """A client error: reported as JSON with its HTTP status."""

    def __init__(self, message: str, status: HTTPStatus = HTTPStatus.BAD_REQUEST):
        super().__init__(message)
        self.status = status


class ModelStore:
    """Loads the CURRENT version of one model and reloads it when CURRENT changes."""

    def __init__(self, model_repository: str | Path, model_name: str):
        self.repo = ModelRepository(model_repository, model_name)
        self._lock = threading.Lock()
        self._model: ServingModel | None = None

    @property
    def name(self) -> str:
        return self.repo.model_name

    def get(self) -> ServingModel:
        version = self.repo.current()
        if version is None:
            raise RequestError(
                f"model {self.name!r} has no deployed version in {self.repo.root}",
                HTTPStatus.SERVICE_UNAVAILABLE,
            )
        with self._lock:
            if self._model is None or self._model.version != version:
                self._model = ServingModel(self.repo.version_path(version), version)
                log.info("serving %s version %s", self.name, version)
            return self._model

    def status(self) -> dict:
        current = self.repo.current()
        return {
            "name": self.name,
            "current_version": current,
            "versions": self.repo.deployed_versions(),
            # The part a TF-Serving client reads.
            "model_version_status": [
                {
                    "version": current,
                    "state": "AVAILABLE",
                    "status": {"error_code": "OK", "error_message": ""},
                }
            ]
            if current
            else [],
        }


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RequestError(f"{where} must be a number, got {json.dumps(value)}")
    value = float(value)
    if not math.isfinite(value):
        raise RequestError(f"{where} must be finite, got {value}")
    return value


def parse_instances(body: object, input_names: tuple[str, ...]) -> list[dict[str, float]]:
    """Validate a ``{"instances": [{feature: value}, ...]}`` body."""
    if not isinstance(body, dict) or "instances" not in body:
        raise RequestError(
            'request body must be a JSON object with "instances": [{feature: value, ...}, ...]'
        )
    instances = body["instances"]
    if not isinstance(instances, list) or not instances:
        raise RequestError('"instances" must be a non-empty list of objects')
    if len(instances) > MAX_INSTANCES:
        raise RequestError(f"too many instances: {len(instances)} > {MAX_INSTANCES}")
    rows = []
    for i, inst in enumerate(instances):
        if not isinstance(inst, dict):
            raise RequestError(f"instances[{i}] must be an object of feature values")
        missing = [n for n in input_names if n not in inst]
        if missing:
            raise RequestError(f"instances[{i}] is missing features: {', '.join(missing)}")
        unknown = sorted(set(inst) - set(input_names))
        if unknown:
            raise RequestError(f"instances[{i}] has unknown features: {', '.join(unknown)}")
        rows.append({n: _number(inst[n], f"instances[{i}].{n}") for n in input_names})
    return rows


def parse_history(body: object) -> list[Bar]:
    """Validate a ``{"history": [bar, ...]}`` body: consecutive days, positive prices."""
    if not isinstance(body, dict) or "history" not in body:
        raise RequestError(
            'request body must be a JSON object with "history": [{"date": '
            '"YYYY-MM-DD", "open": .., "high": .., "low": .., "close": .., '
            '"volume": ..}, ...]'
        )
    history = body["history"]
    if not isinstance(history, list):
        raise RequestError('"history" must be a list of daily bars')
    if len(history) < HISTORY_DAYS:
        raise RequestError(
            f"too little history: {len(history)} days given, a forecast needs "
            f"at least {HISTORY_DAYS} consecutive days"
        )
    bars = []
    for i, item in enumerate(history):
        if not isinstance(item, dict):
            raise RequestError(f"history[{i}] must be an object")
        missing = [f for f in ("date", *_BAR_FIELDS) if f not in item]
        if missing:
            raise RequestError(f"history[{i}] is missing {', '.join(missing)}")
        try:
            date = dt.date.fromisoformat(item["date"])
        except (TypeError, ValueError):
            raise RequestError(
                f"history[{i}].date must be YYYY-MM-DD, got {json.dumps(item['date'])}"
            ) from None
        values = {f: _number(item[f], f"history[{i}].{f}") for f in _BAR_FIELDS}
        bad = [f for f in ("open", "high", "low", "close") if values[f] <= 0]
        if bad:
            raise RequestError(
                f"history[{i}] ({date}) has non-positive prices: "
                + ", ".join(f"{f}={values[f]}" for f in bad)
            )
        if values["volume"] < 0:
            raise RequestError(f"history[{i}] ({date}) has negative volume {values['volume']}")
        if values["high"] < values["low"]:
            raise RequestError(
                f"history[{i}] ({date}) has high {values['high']} below low {values['low']}"
            )
        bars.append(Bar(date=date, **values))
    steps = [(b.date - a.date).days for a, b in zip(bars, bars[1:], strict=False)]
    for i, step in enumerate(steps, start=1):
        if step <= 0:
            raise RequestError(
                f"history must be sorted by date without duplicates: "
                f"history[{i}] ({bars[i].date}) follows {bars[i - 1].date}"
            )
    for i, step in enumerate(steps, start=1):
        if step > 1:
            raise RequestError(
                f"history has a gap: {bars[i - 1].date} is followed by "
                f"{bars[i].date} (history[{i}]); daily bars must be consecutive"
            )
    return bars


class _Handler(BaseHTTPRequestHandler):
    server: ModelServer
    timeout = 60  # seconds a client may stall mid-request before its thread gives up

    def log_message(self, format: str, *args) -> None:
        log.info("%s %s", self.address_string(), format % args)

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self) -> tuple[str, str | None]:
        match = _PATH.match(self.path.split("?", 1)[0])
        if not match:
            raise RequestError(
                f"no such endpoint: {self.path}; use /v1/models/<name>, "
                "/v1/models/<name>:predict or /v1/models/<name>:forecast",
                HTTPStatus.NOT_FOUND,
            )
        name = match["name"]
        if name != self.server.store.name:
            raise RequestError(
                f"unknown model {name!r}; this server serves {self.server.store.name!r}",
                HTTPStatus.NOT_FOUND,
            )
        return name, match["verb"]

    def _read_json(self) -> object:
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            raise RequestError("request needs a JSON body with a Content-Length header")
        size = int(length)
        if size > MAX_BODY_BYTES:
            raise RequestError(
                f"request body too large: {size} bytes > {MAX_BODY_BYTES}",
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            )
        raw = self.rfile.read(size)
        try:
            return json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RequestError(f"malformed JSON body: {exc}") from None

    def _handle(self, method: str) -> None:
        try:
            _, verb = self._route()
            if method == "GET" and verb is None:
                self._send(HTTPStatus.OK, self.server.store.status())
            elif method == "POST" and verb == "predict":
                body = self._read_json()
                model = self.server.store.get()
                rows = parse_instances(body, model.input_names)
                self._send(HTTPStatus.OK, {"predictions": model.predict(rows)})
            elif method == "POST" and verb == "forecast":
                self._send(HTTPStatus.OK, self._forecast(self._read_json()))
            else:
                raise RequestError(
                    f"{method} {self.path} is not supported", HTTPStatus.METHOD_NOT_ALLOWED
                )
        except RequestError as exc:
            self._send(exc.status, {"error": str(exc)})
        except ModelLoadError as exc:
            log.error("cannot serve %s: %s", self.server.store.name, exc)
            self._send(HTTPStatus.SERVICE_UNAVAILABLE, {"error": str(exc)})
        except Exception:
            log.exception("internal error serving %s %s", method, self.path)
            self._send(
                HTTPStatus.INTERNAL_SERVER_ERROR,
                {"error": "internal server error; see the server log"},
            )

    def _forecast(self, body: object) -> dict:
        bars = parse_history(body)
        model = self.server.store.get()
        features = latest_features(bars)
        missing = [n for n in model.input_names if n not in features]
        if missing:
            raise RuntimeError(f"model inputs not produced by the feature module: {missing}")
        (log_ret,) = model.predict([features])
        last = bars[-1]
        return {
            "model_name": self.server.store.name,
            "model_version": model.version,
            "as_of": last.date.isoformat(),
            "close": last.close,
            "date": (last.date + dt.timedelta(days=1)).isoformat(),
            "log_return": log_ret,
            "predicted_close": last.close * math.exp(log_ret),
            "features": features,
        }

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")


class ModelServer(ThreadingHTTPServer):
    """``ThreadingHTTPServer`` bound to one model's store."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], store: ModelStore):
        self.store = store
        super().__init__(address, _Handler)


def make_server(
    model_repository: str | Path, model_name: str, host: str = "127.0.0.1", port: int = 8501
) -> ModelServer:
    """A server for ``model_name``; port 0 picks a free port (see ``server_address``)."""
    return ModelServer((host, port), ModelStore(model_repository, model_name))
