"""A client of the model server: the next-day forecast from the last days of a CSV.

``make predict`` runs ``python -m components.deploy forecast``, which reads the last
``HISTORY_DAYS`` bars of one coin from a Kaggle-schema CSV (the shared Bitcoin file by
default), posts them as one history instance to ``<url>/v1/models/<name>:predict`` and
returns the server's prediction: the median close and, for a quantile model, the
quantiles of the close and of the log return. Standard library only.
"""

from __future__ import annotations

import csv
import json
import urllib.error
import urllib.request
from pathlib import Path

from components.common.features import HISTORY_DAYS

BAR_COLUMNS = ("date", "open", "high", "low", "close", "volume")


class ClientError(RuntimeError):
    """The CSV is unusable or the server did not answer with a forecast."""


def last_bars(csv_path: str | Path, coin: str = "bitcoin", days: int = HISTORY_DAYS) -> list:
    """The last ``days`` bars of ``coin`` (column ``slug``, when the file has one)."""
    try:
        with open(csv_path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise ClientError(f"cannot read {csv_path}: {exc.strerror or exc}") from None
    if rows and "slug" in rows[0]:
        rows = [r for r in rows if r["slug"] == coin]
    if rows and not set(BAR_COLUMNS) <= set(rows[0]):
        raise ClientError(f"{csv_path} lacks the columns {', '.join(BAR_COLUMNS)}")
    rows = sorted(rows, key=lambda r: r["date"])[-days:]
    if len(rows) < days:
        raise ClientError(f"{csv_path} has {len(rows)} rows of {coin!r}; a forecast needs {days}")
    try:
        return [
            {"date": r["date"], **{k: float(r[k]) for k in BAR_COLUMNS if k != "date"}}
            for r in rows
        ]
    except ValueError as exc:
        raise ClientError(f"{csv_path}: {exc}") from None


def forecast(url: str, model_name: str, history: list[dict], timeout: float = 60.0) -> dict:
    """POST one history instance; the server's prediction for it."""
    body = json.dumps({"instances": [{"history": history}]}).encode()
    request = urllib.request.Request(
        f"{url.rstrip('/')}/v1/models/{model_name}:predict",
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            (prediction,) = json.loads(response.read())["predictions"]
    except urllib.error.HTTPError as err:
        raise ClientError(f"{request.full_url}: HTTP {err.code}: {err.read().decode()}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ClientError(
            f"no model server at {url} ({reason}); start one with `make serve`"
        ) from None
    return prediction
