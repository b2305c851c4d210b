"""A client of the control plane's HTTP API: what the `edgewise fleet` commands and the demo
use. Standard library only, so an operator's laptop needs none of the server's libraries."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from ..exceptions import FleetApiError

_TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class ApiClient:
    url: str
    token: str | None

    def call(self, method: str, path: str, body: Any = None, **query: str) -> Any:
        query = {key: value for key, value in query.items() if value}
        url = self.url.rstrip("/") + path + ("?" + urllib.parse.urlencode(query) if query else "")
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=_TIMEOUT_SECONDS) as response:
                return json.load(response)
        except urllib.error.HTTPError as exc:
            raise FleetApiError(f"{method} {path}: {exc.code} {_detail(exc)}") from exc
        except (urllib.error.URLError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            raise FleetApiError(f"cannot reach the control plane at {self.url}: {reason}") from exc


def _detail(error: urllib.error.HTTPError) -> str:
    try:
        detail = json.load(error)["detail"]
    except (ValueError, KeyError, TypeError):
        return str(error.reason)
    if isinstance(detail, list):  # request validation: one entry per bad field
        return "; ".join(
            f"{'.'.join(map(str, item.get('loc', [])))}: {item.get('msg')}" for item in detail
        )
    return str(detail)
