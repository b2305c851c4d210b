"""The local inference endpoint: JSON rows in, predictions out, on 127.0.0.1 only.

::

    POST /v1/predict   {"rows": [{"age": 41, "region": "north", ...}, ...]}
                       -> 200 {"bundle": {...}, "predictions": [{"label": 0, "proba_0": 0.93, ...}]}
    GET  /v1/health    -> 200 {"status": "serving", "bundle": {...}} or 503 {"status": "no_model"}

Requests are capped (body bytes, rows) before anything is parsed, and every refusal is a 4xx
with a JSON ``error`` saying what is wrong: 400 malformed, 404 unknown path, 411 no length,
413 too large, 422 rows the model cannot score, 503 no model installed yet. The serving issue
builds the full protocol; this is the minimum local applications need.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from ..exceptions import EdgewiseError
from .arrow_rows import RowTable
from .durable import replace_durably
from .serving import Serving
from .telemetry import TelemetryWindows

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
MAX_BODY_BYTES = 4 << 20
PORT_FILE = "http-port"
#: What a JSON value must be for each kind of input column (bool is not a number here).
_ACCEPTED = {"float": (int, float), "int": (int,), "bool": (bool,), "string": (str,)}


class RequestError(EdgewiseError, ValueError):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


class InferenceServer:
    def __init__(
        self,
        port: int,
        serving: Serving,
        telemetry: TelemetryWindows,
        max_rows: int,
        state_dir: Path,
    ) -> None:
        self.serving = serving
        self.telemetry = telemetry
        self.max_rows = max_rows
        self._http = ThreadingHTTPServer((HOST, port), self._handler_class())
        self._http.daemon_threads = True
        self.port = int(self._http.server_address[1])
        # Local applications (and tests) that let the agent pick a port read it here.
        replace_durably(state_dir / PORT_FILE, f"{self.port}\n".encode())
        self._thread = threading.Thread(
            target=self._http.serve_forever, name="agent-http", daemon=True
        )

    def start(self) -> InferenceServer:
        self._thread.start()
        log.info("serving predictions", extra={"url": f"http://{HOST}:{self.port}/v1/predict"})
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(timeout=10)

    def predict(self, body: bytes) -> dict[str, Any]:
        model, bundle = self.serving.current()
        if model is None or bundle is None:
            raise RequestError(HTTPStatus.SERVICE_UNAVAILABLE, "no model is installed yet")
        rows = self._rows(body)
        started = time.perf_counter()
        table = RowTable(
            [(c.name, c.kind, _column(rows, c.name, c.kind)) for c in model.schema.columns],
            len(rows),
        )
        inputs = table.to_batch()
        scored = model.score(inputs, "request")
        elapsed = time.perf_counter() - started
        if len(scored.rejected_rows):
            self.telemetry.observe(bundle, inputs, None, elapsed)
            row = int(scored.rejected_rows[0])
            raise RequestError(
                HTTPStatus.UNPROCESSABLE_ENTITY,
                f"row {row}: {scored.reasons[0]} ({len(scored.rejected_rows)} rows cannot be "
                "scored)",
            )
        self.telemetry.observe(bundle, inputs, scored.scores, elapsed)
        columns = scored.columns
        names = [name for name, _ in columns]
        values = [column.tolist() for _, column in columns]
        predictions = [dict(zip(names, row, strict=True)) for row in zip(*values, strict=True)]
        return {"bundle": bundle.to_json(), "predictions": predictions}

    def health(self) -> tuple[HTTPStatus, dict[str, Any]]:
        _, bundle = self.serving.current()
        if bundle is None:
            return HTTPStatus.SERVICE_UNAVAILABLE, {"status": "no_model", "bundle": None}
        return HTTPStatus.OK, {"status": "serving", "bundle": bundle.to_json()}

    def _rows(self, body: bytes) -> list[dict[str, Any]]:
        try:
            document = json.loads(body)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise RequestError(HTTPStatus.BAD_REQUEST, f"body is not JSON ({exc})") from exc
        rows = document.get("rows") if isinstance(document, dict) else None
        if not isinstance(rows, list) or not rows:
            raise RequestError(HTTPStatus.BAD_REQUEST, 'expected {"rows": [{...}, ...]}')
        if len(rows) > self.max_rows:
            raise RequestError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"{len(rows)} rows, over the limit of {self.max_rows} per request",
            )
        for index, row in enumerate(rows):
            if not isinstance(row, dict):
                raise RequestError(HTTPStatus.BAD_REQUEST, f"row {index} is not an object")
        return rows

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/v1/health":
                    self._reply(HTTPStatus.NOT_FOUND, {"error": f"no such path {self.path}"})
                    return
                self._reply(*server.health())

            def do_POST(self) -> None:
                try:
                    if self.path != "/v1/predict":
                        raise RequestError(HTTPStatus.NOT_FOUND, f"no such path {self.path}")
                    self._reply(HTTPStatus.OK, server.predict(self._body()))
                except RequestError as exc:
                    self._reply(exc.status, {"error": str(exc)})

            def _body(self) -> bytes:
                length = self.headers.get("Content-Length")
                if length is None or not length.isdigit():
                    raise RequestError(HTTPStatus.LENGTH_REQUIRED, "Content-Length is required")
                if int(length) > MAX_BODY_BYTES:
                    self.close_connection = True  # the unread body must not be parsed as a request
                    raise RequestError(
                        HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                        f"body of {length} bytes, over the limit of {MAX_BODY_BYTES}",
                    )
                return self.rfile.read(int(length))

            def _reply(self, status: HTTPStatus, document: dict[str, Any]) -> None:
                data = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug(format, *args)

        return Handler


def _column(rows: list[dict[str, Any]], name: str, kind: str) -> list[Any]:
    accepted = _ACCEPTED[kind]
    values = [row.get(name) for row in rows]
    for index, value in enumerate(values):
        wrong_bool = isinstance(value, bool) and bool not in accepted
        if value is not None and (wrong_bool or not isinstance(value, accepted)):
            raise RequestError(
                HTTPStatus.BAD_REQUEST,
                f"row {index}: column {name!r} must be {kind} or null, not {json.dumps(value)}",
            )
    return values
