"""Model server: the CURRENT version of one model on KServe's Python ModelServer.

Routes (KServe's REST server, with our model's state where KServe has none)::

    GET  /v1/models/<name>            the model's state: ready, loaded version, CURRENT,
                                      deployed versions (503 while not ready)
    POST /v1/models/<name>:predict    {"instances": [instance, ...]} -> {"predictions": [...]}
    GET  /v2/health/live              {"live": true}
    GET  /v2/health/ready             {"ready": true}; 503 while CURRENT cannot be served
    GET  /metrics                     Prometheus metrics (KServe's request histograms)
    AIP_HEALTH_ROUTE, AIP_PREDICT_ROUTE   the same health and predict for Vertex AI

An instance is either a feature row ``{feature: value, ...}`` or ``{"history": [>= 31
consecutive daily bars]}``. For a quantile model (its levels read once, at load, from the
SavedModel) a feature row's prediction is the list of the log return's quantiles at the
model's levels (increasing), and a history's an object with the next date, the median log
return and its price (``predicted_close``), the price quantiles ``quantiles`` and the
return quantiles ``return_quantiles``, each ``{"<level>": value}`` (keys such as
``"0.05"``). For a point model (exported before quantile forecasts) a feature row's
prediction is the log return and a history's has no quantiles. The model status names the
levels (``quantile_levels``, null for a point model). History becomes features through
``components.common.features`` and its bars must pass ``components.common.bars``'
checks: the Beam transform uses both, so serving cannot drift from training.

Client errors are 400 with ``{"error": "<what is wrong, where>"}``; an oversized body is
413; unknown routes and methods get JSON 404/405. Every response is valid JSON: a
non-finite prediction is an error, never ``Infinity`` or ``null``.

The model polls its source (``source.py``: a local or ``gs://`` repository, or one fixed
SavedModel) and loads a new CURRENT without a restart; ready is false while the CURRENT
version cannot be loaded and smoke-tested.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import os
import re
import socket
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import orjson
from fastapi import FastAPI, Request
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from components.common.bars import BarCheckError, check_bar
from components.common.features import HISTORY_DAYS, Bar, latest_features
from components.deploy._kserve import (
    InvalidInput,
    Model,
    ModelNotFound,
    ModelRepository,
    ModelServer,
    RESTServer,
    V1Endpoints,
)
from components.deploy.repository import RepositoryError
from components.deploy.serving import ModelLoadError, ServingModel, smoke_test
from components.deploy.source import (
    RepositorySource,
    SavedModelSource,
    SourceError,
    open_source,
)

log = logging.getLogger(__name__)
# KServe's own routes (metrics among them) still use FastAPI's ORJSONResponse, which warns
# on first use from FastAPI 0.128; the warning is KServe's to fix and says nothing to a
# user of this server, so it is kept out of the log.
warnings.filterwarnings("ignore", message="ORJSONResponse is deprecated", module="fastapi")

MAX_BODY_BYTES = 8 * 1024 * 1024
#: An oversized body up to this size is read (and dropped) before the 413, so the client
#: gets the answer instead of a connection reset while it is still sending.
DRAIN_BYTES = 64 * 1024 * 1024
MAX_INSTANCES = 10_000
MAX_HISTORY_BARS = 10_000
#: Largest float32: a feature beyond it would reach the model as infinity.
FLOAT32_MAX = 3.4028234663852886e38
BAR_FIELDS = ("open", "high", "low", "close", "volume")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_BODY_FIELDS = ("instances", "parameters")


class RequestError(InvalidInput):
    """A malformed request: KServe answers 400 with ``{"error": message}``."""


def _json(value: object) -> str:
    text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    return text if len(text) <= 60 else text[:57] + "..."


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RequestError(f"{where} must be a number, got {_json(value)}")
    value = float(value)
    if not math.isfinite(value):
        raise RequestError(f"{where} must be finite, got {value}")
    return value


def _feature(value: object, where: str) -> float:
    value = _number(value, where)
    if abs(value) > FLOAT32_MAX:
        raise RequestError(f"{where} = {value!r} is beyond the float32 range of the model")
    return value


def _object(value: object, where: str, expected: str) -> dict:
    if not isinstance(value, dict):
        raise RequestError(f"{where} must be a JSON object {expected}, got {_json(value)}")
    return value


def parse_bar(item: object, where: str) -> Bar:
    """One history bar: ISO date, finite numbers, and the transform's sanity checks."""
    item = _object(item, where, '{"date": "YYYY-MM-DD", "open": .., ..., "volume": ..}')
    missing = [f for f in ("date", *BAR_FIELDS) if f not in item]
    if missing:
        raise RequestError(f"{where} is missing {', '.join(missing)}")
    unknown = sorted(set(item) - {"date", *BAR_FIELDS})
    if unknown:
        raise RequestError(f"{where} has unknown fields: {', '.join(unknown)}")
    text = item["date"]
    try:
        if not isinstance(text, str) or not _ISO_DATE.match(text):
            raise ValueError
        date = dt.date.fromisoformat(text)
    except ValueError:
        raise RequestError(f"{where}.date must be a YYYY-MM-DD date, got {_json(text)}") from None
    values = {f: _number(item[f], f"{where}.{f}") for f in BAR_FIELDS}
    bar = Bar(date=date, **values)
    try:
        return check_bar(bar)
    except BarCheckError as exc:
        raise RequestError(f"{where} ({date}) fails the transform's check {exc}") from None


def parse_history(body: object, where: str = "history") -> list[Bar]:
    """Validate ``{"history": [bar, ...]}``: >= HISTORY_DAYS consecutive, sorted days."""
    body = _object(body, "the instance", '{"history": [daily bar, ...]}')
    if "history" not in body:
        raise RequestError('a history instance needs "history": [daily bar, ...]')
    unknown = sorted(set(body) - {"history"})
    if unknown:
        raise RequestError(f"a history instance has unknown fields: {', '.join(unknown)}")
    history = body["history"]
    if not isinstance(history, list):
        raise RequestError(f"{where} must be a list of daily bars, got {_json(history)}")
    if len(history) < HISTORY_DAYS:
        raise RequestError(
            f"{where} is too short: {len(history)} days given, a forecast needs at least "
            f"{HISTORY_DAYS} consecutive days"
        )
    if len(history) > MAX_HISTORY_BARS:
        raise RequestError(f"{where} is too long: {len(history)} bars > {MAX_HISTORY_BARS}")
    bars = [parse_bar(item, f"{where}[{i}]") for i, item in enumerate(history)]
    for i in range(1, len(bars)):
        step = (bars[i].date - bars[i - 1].date).days
        if step == 0:
            raise RequestError(
                f"{where}[{i}] duplicates the date {bars[i].date} of {where}[{i - 1}]"
            )
        if step < 0:
            raise RequestError(
                f"{where} must be sorted by date: {where}[{i}] ({bars[i].date}) follows "
                f"{bars[i - 1].date}"
            )
    for i in range(1, len(bars)):
        if (bars[i].date - bars[i - 1].date).days > 1:
            raise RequestError(
                f"{where} has a gap: {bars[i - 1].date} is followed by {bars[i].date} "
                f"({where}[{i}]); daily bars must be consecutive"
            )
    return bars


def history_features(bars: Sequence[Bar], where: str = "history") -> dict[str, float]:
    """The shared module's features of the last day; 400 if one is not a float32."""
    features = latest_features(bars)
    for name, value in features.items():
        if not math.isfinite(value) or abs(value) > FLOAT32_MAX:
            raise RequestError(
                f"{where} gives the feature {name} = {value!r}, beyond what the model "
                "takes (extreme prices or volumes)"
            )
    return features


def parse_instances(
    body: object, input_names: Sequence[str]
) -> tuple[list[dict[str, float]], list[Bar | None]]:
    """Validate a V1 body: feature rows, and the features of history instances.

    Returns the rows in order and, per row, the last bar of its history (None for a
    feature-row instance).
    """
    body = _object(body, "the request body", '{"instances": [...]}')
    if "instances" not in body:
        raise RequestError(
            'the request body needs "instances": a list of feature rows {feature: value} '
            'or {"history": [daily bar, ...]} objects'
        )
    unknown = sorted(set(body) - set(_BODY_FIELDS))
    if unknown:
        raise RequestError(f"the request body has unknown fields: {', '.join(unknown)}")
    instances = body["instances"]
    if not isinstance(instances, list) or not instances:
        raise RequestError(f'"instances" must be a non-empty list, got {_json(instances)}')
    if len(instances) > MAX_INSTANCES:
        raise RequestError(f"too many instances: {len(instances)} > {MAX_INSTANCES}")
    names = set(input_names)
    rows: list[dict[str, float]] = []
    lasts: list[Bar | None] = []
    for i, inst in enumerate(instances):
        where = f"instances[{i}]"
        inst = _object(inst, where, '{feature: value, ...} or {"history": [...]}')
        if "history" in inst:
            bars = parse_history(inst, f"{where}.history")
            rows.append(history_features(bars, f"{where}.history"))
            lasts.append(bars[-1])
            continue
        missing = [n for n in input_names if n not in inst]
        if missing:
            raise RequestError(f"{where} is missing features: {', '.join(missing)}")
        extra = sorted(set(inst) - names)
        if extra:
            raise RequestError(f"{where} has unknown features: {', '.join(extra)}")
        rows.append({n: _feature(inst[n], f"{where}.{n}") for n in input_names})
        lasts.append(None)
    return rows, lasts


def _price(close: float, log_return: float) -> float:
    try:
        return close * math.exp(log_return)
    except OverflowError:
        return math.inf


def forecast(
    last: Bar,
    log_return: float,
    version: str | None,
    quantiles: Sequence[float] | None = None,
    level_keys: Sequence[str] = (),
) -> dict:
    """The prediction of a history instance: tomorrow's date, the (median) log return and
    its close and, with ``quantiles`` (of the log return, at the levels named by
    ``level_keys``), the quantiles of the close and of the return."""
    answer = {
        "as_of": last.date.isoformat(),
        "close": last.close,
        "date": (last.date + dt.timedelta(days=1)).isoformat(),
        "log_return": log_return,
        "predicted_close": _price(last.close, log_return),
        "model_version": version,
    }
    if quantiles is not None:
        close = last.close
        try:
            prices = [close * math.exp(q) for q in quantiles]
        except OverflowError:
            prices = [_price(close, q) for q in quantiles]
        # (as many levels as quantiles: ServingModel.outputs checked the shape)
        answer["quantiles"] = dict(zip(level_keys, prices))  # noqa: B905
        answer["return_quantiles"] = dict(zip(level_keys, quantiles))  # noqa: B905
    return answer


def _first_bad(value: float, row: Sequence[float] | None, keys: Sequence[str], ok) -> str:
    """Where the first value failing ``ok`` is: "" for the median, else " at the quantile
    <key>" (with the value)."""
    if not ok(value):
        return f" ({value!r})"
    for key, q in zip(keys, row or (), strict=True):
        if not ok(q):
            return f" at the quantile {key} ({q!r})"
    return ""


def _not_finite(i: int, value: float, row: Sequence[float] | None, keys: Sequence[str]) -> str:
    where = _first_bad(value, row, keys, math.isfinite)
    return (
        f"instances[{i}]: the model's prediction is not finite{where} for these features; "
        "they are outside anything it was trained on"
    )


def _overflow(
    i: int, last: Bar, value: float, row: Sequence[float] | None, keys: Sequence[str]
) -> str:
    where = _first_bad(value, row, keys, lambda q: math.isfinite(_price(last.close, q)))
    return (
        f"instances[{i}]: the predicted close overflows{where}: {last.close!r} * exp(log "
        "return) is not a finite price; the history's prices are too extreme"
    )


@dataclass
class Batch:
    """A validated request: the model it was validated against and its rows."""

    model: ServingModel
    rows: list[dict[str, float]]
    lasts: list[Bar | None] = field(default_factory=list)


class ForecastModel(Model):
    """KServe model: the CURRENT SavedModel of a source, reloaded when CURRENT changes."""

    def __init__(
        self,
        name: str,
        source: RepositorySource | SavedModelSource,
        *,
        poll_seconds: float = 2.0,
        retry_seconds: float = 30.0,
    ):
        super().__init__(name)
        self.source = source
        self.poll_seconds = poll_seconds
        self.retry_seconds = retry_seconds
        self.serving: ServingModel | None = None
        self.current_version: str | None = None
        self.versions: list[str] = []
        self.error: str | None = "not loaded yet"
        self._failed: tuple[str, float] | None = None
        self._refresh_lock = threading.Lock()
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    # -- loading -------------------------------------------------------------------

    def load(self) -> bool:
        self.refresh()
        return self.ready

    def refresh(self) -> None:
        """Read CURRENT; load and smoke-test it if it is not the loaded version."""
        with self._refresh_lock:
            try:
                current = self.source.current()
                self.current_version = current
                if current is None:
                    self._not_ready(f"no CURRENT version in {self.source.description}")
                    return
                if self.serving is not None and self.serving.version == current:
                    self._set_ready()
                    return
                if (
                    self._failed is not None
                    and self._failed[0] == current
                    and time.monotonic() - self._failed[1] < self.retry_seconds
                ):
                    return  # the same broken version: retried every retry_seconds
                model = ServingModel(self.source.fetch(current), current)
                smoke_test(model)
                self.versions = self.source.versions()
            except (ModelLoadError, SourceError, RepositoryError, OSError) as exc:
                version = self.current_version or "?"
                self._failed = (version, time.monotonic())
                self._not_ready(f"CURRENT version {version} cannot be served: {exc}")
                return
            previous = self.serving.version if self.serving else None
            self.serving = model
            self._failed = None
            self._set_ready()
            log.info("serving %s version %s (was %s)", self.name, current, previous or "none")

    def _set_ready(self) -> None:
        self.error = None
        self.ready = True

    def _not_ready(self, reason: str) -> None:
        if reason != self.error:
            log.error("%s is not ready: %s", self.name, reason)
        self.error = reason
        self.ready = False

    def start(self) -> None:
        """Poll the source every ``poll_seconds`` (not for a fixed SavedModel)."""
        if self.source.fixed or self.poll_seconds <= 0 or self._poller is not None:
            return
        self._stop.clear()
        self._poller = threading.Thread(target=self._poll, name="model-poller", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.refresh()
            except Exception:  # the poller must survive anything a source throws
                log.exception("refreshing %s failed", self.name)

    def stop(self) -> None:
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=10)
            self._poller = None

    def status(self) -> dict:
        return {
            "name": self.name,
            "ready": self.ready,
            "version": self.serving.version if self.serving and self.ready else None,
            "current_version": self.current_version,
            "versions": self.versions,
            "source": self.source.description,
            "error": self.error,
            "quantile_levels": (
                list(self.serving.levels)
                if self.serving and self.ready and self.serving.levels is not None
                else None
            ),
        }

    # -- inference (KServe calls preprocess -> predict -> postprocess) ---------------

    def preprocess(self, payload: object, headers: Mapping[str, str] | None = None) -> Batch:
        model = self.serving
        if model is None or not self.ready:
            raise RequestError(f"model {self.name} is not ready: {self.error}")
        if isinstance(payload, bytes | bytearray):
            # KServe passes the body through undecoded when its Content-Type is not JSON.
            try:
                payload = orjson.loads(payload)
            except orjson.JSONDecodeError as exc:
                raise RequestError(f"the request body is not valid JSON: {exc}") from None
        elif not isinstance(payload, dict | list):
            raise RequestError(
                'only V1 JSON is served here: POST {"instances": [...]} to '
                f"/v1/models/{self.name}:predict"
            )
        rows, lasts = parse_instances(payload, model.input_names)
        return Batch(model, rows, lasts)

    def predict(self, payload: Batch, headers: Mapping[str, str] | None = None) -> list:
        model = payload.model
        outputs = model.outputs(payload.rows)  # one call of the signature: both outputs
        medians = outputs.log_returns.tolist()
        quantiles = None if outputs.quantiles is None else outputs.quantiles.tolist()
        keys = model.level_keys or ()
        predictions: list = []
        for i, (value, last) in enumerate(zip(medians, payload.lasts, strict=True)):
            row = None if quantiles is None else quantiles[i]
            if not math.isfinite(value) or (row is not None and not all(map(math.isfinite, row))):
                raise RequestError(_not_finite(i, value, row, keys))
            if last is None:
                predictions.append(value if row is None else row)
                continue
            answer = forecast(last, value, model.version, row, keys)
            if not math.isfinite(answer["predicted_close"]) or (
                row is not None and not all(map(math.isfinite, answer["quantiles"].values()))
            ):
                raise RequestError(_overflow(i, last, value, row, keys))
            predictions.append(answer)
        return predictions

    def postprocess(self, result: list, headers: Mapping[str, str] | None = None) -> dict:
        return {"predictions": result}


class BodyLimit:
    """ASGI middleware: 413 (JSON) for a request body over ``max_bytes``, chunked or not."""

    def __init__(self, app, max_bytes: int = MAX_BODY_BYTES):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                return await _send_json(send, 400, {"error": "invalid Content-Length header"})
            if int(declared) > self.max_bytes:
                return await self._too_large(receive, send, int(declared))
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return await self.app(scope, _replay([message]), send)
            chunks.append(message)
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                return await self._too_large(receive, send, size, more=True)
            more = message.get("more_body", False)
        return await self.app(scope, _replay(chunks, receive), send)

    async def _too_large(self, receive, send, size: int, more: bool = True) -> None:
        drained = 0
        while more and drained <= DRAIN_BYTES:
            message = await receive()
            if message["type"] != "http.request":
                break
            drained += len(message.get("body", b""))
            more = message.get("more_body", False)
        await _send_json(
            send,
            413,
            {"error": f"request body too large: {size} bytes > {self.max_bytes} bytes"},
        )


def _replay(messages: list[dict], then=None):
    pending = list(messages)

    async def receive():
        if pending:
            return pending.pop(0)
        if then is not None:
            return await then()
        return {"type": "http.disconnect"}

    return receive


class JsonResponse(Response):
    """A JSON body serialised by orjson (FastAPI's own ORJSONResponse is deprecated and
    warns on first use; the server keeps orjson for its speed and strictness)."""

    media_type = "application/json"

    def render(self, content: object) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


async def _send_json(send, status: int, payload: dict) -> None:
    body = orjson.dumps(payload)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _http_error(request: Request, exc: StarletteHTTPException) -> JsonResponse:
    """404/405 and friends as JSON naming the request (KServe's default is ``detail``)."""
    message = f"{exc.detail}: {request.method} {request.url.path}"
    if exc.status_code == 404:
        message += "; routes: /v1/models/<name>, /v1/models/<name>:predict, /v2/health/ready"
    return JsonResponse({"error": message}, status_code=exc.status_code, headers=exc.headers)


class _ModelNameConvertor(Convertor):
    regex = "[^/:]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("model_name", _ModelNameConvertor())


class _RestServer(RESTServer):
    """KServe's REST server on a fresh FastAPI app (not KServe's module-global one, so a
    process can hold more than one), with our model's state on the health routes."""

    def __init__(
        self,
        model_server: ModelServer,
        model: ForecastModel,
        *,
        health_route: str | None = None,
        predict_route: str | None = None,
        access_log: bool = False,
        max_body_bytes: int = MAX_BODY_BYTES,
    ):
        super().__init__(
            "unused: create_application sets the app",
            model_server.dataplane,
            model_server.model_repository_extension,
            model_server.http_port,
            grace_period=5,
        )
        self.config.access_log = access_log
        self.model = model
        self.health_route = health_route
        self.predict_route = predict_route
        self.access_log = access_log
        self.max_body_bytes = max_body_bytes

    def create_application(self) -> FastAPI:
        app = FastAPI(
            title="crypto-kfp model server",
            docs_url=None,
            redoc_url=None,
            openapi_url=None,
            default_response_class=JsonResponse,
        )
        self._add_middlewares(app)
        self._register_endpoints(app)
        self._add_exception_handlers(app)
        app.add_exception_handler(StarletteHTTPException, _http_error)
        self.config.app = app
        return app

    def _add_middlewares(self, app: FastAPI) -> None:
        if self.access_log:
            super()._add_middlewares(app)  # KServe's per-request timing log
        app.add_middleware(BodyLimit, max_bytes=self.max_body_bytes)

    def _register_endpoints(self, app: FastAPI) -> None:
        model = self.model
        registry = self.dataplane.model_registry

        async def model_status(model_name: str) -> JsonResponse:
            found = registry.get_model(model_name)
            if found is None:
                raise ModelNotFound(model_name)
            status = found.status()
            return JsonResponse(status, status_code=200 if status["ready"] else 503)

        async def ready() -> JsonResponse:
            if model.ready:
                return JsonResponse({"ready": True})
            return JsonResponse({"ready": False, "error": model.error}, status_code=503)

        async def post_only(model_name: str) -> None:
            raise StarletteHTTPException(405, "Method Not Allowed", headers={"Allow": "POST"})

        # Ours first (Starlette serves the first route that matches): KServe's status and
        # readiness routes know nothing of CURRENT. A model name has no ':'. Without
        # post_only, a PUT to :predict would get the 405 of KServe's GET /v1/models/<name>
        # (its path parameter matches "<name>:predict"), saying Allow: GET.
        app.add_api_route("/v1/models/{model_name:model_name}", model_status, methods=["GET"])
        app.add_api_route(
            "/v1/models/{model_name:model_name}:predict",
            post_only,
            methods=["GET", "PUT", "DELETE", "PATCH"],
        )
        app.add_api_route("/v2/health/ready", ready, methods=["GET"])
        if self.health_route:
            app.add_api_route(self.health_route, ready, methods=["GET"])
        if self.predict_route:
            v1 = V1Endpoints(self.dataplane, self.model_repository_extension)

            async def vertex_predict(request: Request):
                return await v1.predict(model.name, request)

            app.add_api_route(
                self.predict_route, vertex_predict, methods=["POST"], response_model=None
            )
        super()._register_endpoints(app)


class Server:
    """One model on KServe's REST server, bound to ``host:port`` (0: any free port)."""

    def __init__(
        self,
        model: ForecastModel,
        host: str = "127.0.0.1",
        port: int = 8501,
        *,
        health_route: str | None = None,
        predict_route: str | None = None,
        access_log: bool = False,
    ):
        self.model = model
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.socket.bind((host, port))
            # Listening from here: a client that read the URL may connect at once (it
            # waits in the backlog until uvicorn accepts).
            self.socket.listen(2048)
        except OSError:
            self.socket.close()
            raise
        self.host, self.port = self.socket.getsockname()[:2]
        model_server = ModelServer(
            http_port=self.port,
            enable_grpc=False,
            registered_models=ModelRepository(),
            enable_latency_logging=access_log,
        )
        model_server.register_model(model)
        model.enable_latency_logging = access_log
        self.rest = _RestServer(
            model_server,
            model,
            health_route=health_route,
            predict_route=predict_route,
            access_log=access_log,
        )
        self.app = self.rest.create_application()
        self._serving = threading.Event()
        self._stopped = threading.Event()

    @property
    def server_address(self) -> tuple[str, int]:
        """``(host, port)`` bound, as ``socketserver`` servers have it."""
        return self.host, self.port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def serve_forever(self) -> None:
        """Serve until SIGINT/SIGTERM (or ``shutdown()``), polling the source meanwhile."""
        self._serving.set()
        self.model.start()
        try:
            # RESTServer.run would rebuild the app; the uvicorn server it holds is the same.
            self.rest._server.run(sockets=[self.socket])
        finally:
            self.model.stop()
            self.socket.close()
            self._stopped.set()

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop ``serve_forever`` (from another thread) and wait until it has returned."""
        self.rest._server.should_exit = True
        if self._serving.is_set():
            self._stopped.wait(timeout)

    def server_close(self) -> None:
        self.socket.close()


def make_server(
    model_repository: str | os.PathLike,
    model_name: str,
    host: str = "127.0.0.1",
    port: int = 8501,
    *,
    poll_seconds: float = 2.0,
) -> Server:
    """A server for the CURRENT version of ``model_name`` (port 0: any free port), loaded
    now; call ``serve_forever()``, then ``shutdown()`` from another thread."""
    source = open_source(str(model_repository), model_name)
    model = ForecastModel(model_name, source, poll_seconds=poll_seconds)
    model.load()
    return Server(model, host, port)
