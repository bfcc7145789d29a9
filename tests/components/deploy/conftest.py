"""Tiny exported models for the deploy tests (built once per session, copied per test)."""

from __future__ import annotations

import csv
import datetime as dt
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from components.common.features import FEATURE_NAMES, Bar

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

#: The tiny models' quantile levels and the offsets of their quantiles from the median.
LEVELS = (0.05, 0.25, 0.5, 0.75, 0.95)
OFFSETS = (-0.05, -0.02, 0.0, 0.02, 0.05)


def _tiny_median(kernel: float, bias: float):
    """(inputs named by FEATURE_NAMES, one Dense unit on them: the median ``[None, 1]``)."""
    import keras

    inputs = {name: keras.Input(shape=(), name=name, dtype="float32") for name in FEATURE_NAMES}
    stacked = keras.ops.stack([inputs[name] for name in FEATURE_NAMES], axis=-1)
    dense = keras.layers.Dense(
        1,
        kernel_initializer=keras.initializers.Constant(kernel),
        bias_initializer=keras.initializers.Constant(bias),
    )
    return inputs, dense(stacked)


def _tiny_model(kernel: float, bias: float, offsets: tuple[float, ...] = OFFSETS):
    """The train step's model shape: the quantiles at LEVELS ``[None, 5]``, the median
    plus ``offsets`` (OFFSETS: increasing by construction)."""
    import keras

    inputs, median = _tiny_median(kernel, bias)
    return keras.Model(inputs, median + keras.ops.convert_to_tensor(offsets, dtype="float32"))


def export_point_model(base: Path, version: int, kernel: float, bias: float) -> Path:
    """A model as train exported it before quantile forecasts: ``serving_default`` with
    the one output ``log_return`` ``[None]`` and no ``quantile_levels()``."""
    import keras
    import tensorflow as tf

    from components.common.contracts import OUTPUT_NAME, SIGNATURE

    inputs, median = _tiny_median(kernel, bias)
    model = keras.Model(inputs, keras.layers.Reshape(())(median))
    spec = {name: tf.TensorSpec([None], tf.float32, name=name) for name in FEATURE_NAMES}

    @tf.function(input_signature=[spec])
    def serve(features):
        out = model(features, training=False)
        return {OUTPUT_NAME: tf.reshape(tf.cast(out, tf.float32), [-1])}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(SIGNATURE, serve)
    path = base / str(version)
    base.mkdir(parents=True, exist_ok=True)
    archive.write_out(str(path), verbose=False)
    return path


@pytest.fixture(scope="session")
def model_sources(tmp_path_factory) -> dict[str, Path]:
    """Train-style model dirs ``<dir>/<version>/``: good quantile models v1 and v2, a NaN
    model, a broken one, and an older point model (``point``, version 5)."""
    import keras

    from components.train.export import export_serving_model

    keras.utils.set_random_seed(7)
    base = tmp_path_factory.mktemp("model_sources")
    sources = {}
    for label, version, kernel, bias in (
        ("v1", 1, 0.01, 0.001),
        ("v2", 2, -0.02, 0.002),
        ("nan", 3, float("nan"), 0.0),
    ):
        sources[label] = base / label
        export_serving_model(_tiny_model(kernel, bias), sources[label], version, LEVELS)
    sources["point"] = base / "point"
    export_point_model(sources["point"], 5, 0.01, 0.001)
    broken = base / "broken" / "4"
    broken.mkdir(parents=True)
    (broken / "saved_model.pb").write_bytes(b"this is not a protobuf")
    sources["broken"] = base / "broken"
    return sources


@pytest.fixture
def model_dir(model_sources, tmp_path):
    """Copy a session model source into this test's tmp dir: ``model_dir("v1")``."""

    def copy(label: str) -> Path:
        target = tmp_path / "models" / label
        if not target.exists():
            shutil.copytree(model_sources[label], target)
        return target

    return copy


@pytest.fixture
def repo(tmp_path) -> Path:
    return tmp_path / "repository"


def read_bars(path: Path, last: int | None = None) -> list[Bar]:
    """Bars of a Kaggle-schema CSV with ISO dates (the shared Bitcoin file)."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if last is not None:
        rows = rows[-last:]
    return [
        Bar(
            date=dt.date.fromisoformat(r["date"]),
            open=float(r["open"]),
            high=float(r["high"]),
            low=float(r["low"]),
            close=float(r["close"]),
            volume=float(r["volume"]),
        )
        for r in rows
    ]


@pytest.fixture(scope="module")
def gcs_emulator() -> Iterator[str]:
    """gcp-storage-emulator over loopback HTTP; the real client finds it by
    STORAGE_EMULATOR_HOST."""
    from gcp_storage_emulator.server import create_server

    server = create_server("127.0.0.1", 0, in_memory=True)
    server.start()
    url = f"http://127.0.0.1:{server._api._httpd.server_address[1]}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STORAGE_EMULATOR_HOST", url)
        yield url
    server.stop()


@pytest.fixture
def bucket(gcs_emulator):
    """A fresh bucket in the emulator."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(project="serve-test", credentials=AnonymousCredentials())
    return client.create_bucket(f"models-{uuid.uuid4().hex[:12]}")


class PreconditionAdapter:
    """A transport in front of gcp-storage-emulator that enforces the object preconditions
    GCS documents and the emulator ignores: an upload with ``ifGenerationMatch`` is
    answered 412 unless the object's generation is that number (0: it does not exist);
    the check and the write are atomic, as in GCS. An upload of an object whose name holds
    ``refuse`` is answered 403. Every request is logged."""

    def __init__(self, emulator: str):
        import threading

        import requests

        self.emulator = emulator
        self.log: list[tuple[str, str, dict]] = []
        self.refuse: str | None = None
        self._lock = threading.Lock()
        self._inner = requests.adapters.HTTPAdapter()

    def _generation(self, bucket: str, name: str) -> int:
        import urllib.parse

        import requests

        quoted = urllib.parse.quote(name, safe="")
        answer = requests.get(f"{self.emulator}/storage/v1/b/{bucket}/o/{quoted}", timeout=10)
        return int(answer.json()["generation"]) if answer.status_code == 200 else 0

    @staticmethod
    def _answer(request, status: int, message: str):
        import json

        import requests

        response = requests.Response()
        response.status_code = status
        response.headers["Content-Type"] = "application/json"
        response._content = json.dumps({"error": {"code": status, "message": message}}).encode()
        response.request, response.url = request, request.url
        return response

    def send(self, request, **kwargs):
        import json
        import re
        import urllib.parse

        url = urllib.parse.urlsplit(request.url)
        query = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
        body = request.body or b""
        body = body.encode() if isinstance(body, str) else body
        name = query.get("name")
        if name is None and query.get("uploadType") == "multipart":
            found = re.search(rb'"name": ?"([^"]+)"', body)
            name = json.loads(b'"' + found[1] + b'"') if found else None
        self.log.append((request.method, url.path, {**query, "object": name}))
        if self.refuse and name and self.refuse in name and request.method == "POST":
            return self._answer(request, 403, "Forbidden")
        if "ifGenerationMatch" not in query or name is None:
            return self._inner.send(request, **kwargs)
        bucket = re.search(r"/b/([^/]+)/o", url.path)[1]
        with self._lock:
            if self._generation(bucket, name) != int(query["ifGenerationMatch"]):
                return self._answer(request, 412, "Precondition Failed")
            return self._inner.send(request, **kwargs)

    def close(self) -> None:
        self._inner.close()


@pytest.fixture
def strict_storage(gcs_emulator, bucket):
    """(client, adapter): a storage client whose requests go through PreconditionAdapter."""
    import requests
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    adapter = PreconditionAdapter(gcs_emulator)
    session = requests.Session()
    session.mount("http://", adapter)
    client = storage.Client(project="serve-test", credentials=AnonymousCredentials(), _http=session)
    return client, adapter
