"""A small HTTP client for a running ``qtts serve`` (used by ``qtts queue`` and ``batch --via-queue``)."""

from __future__ import annotations

from typing import Any

from qtts.errors import ServerUnavailable, from_category


class Client:
    def __init__(self, base_url: str, api_key: str = "", timeout_s: float = 30.0) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout_s)

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ServerUnavailable(f"no qtts server answers at {self.base_url} ({type(exc).__name__})",
                                    hint="start one with 'qtts serve', "
                                         "or point --server / QTTS_SERVER_URL at it") from exc
        if response.status_code >= 400:
            try:
                error = response.json().get("error", {})
            except ValueError:
                error = {}
            message = error.get("message") or f"HTTP {response.status_code}"
            raise from_category(str(error.get("code", "")), message, error.get("hint", ""), response.status_code)
        return response

    def submit(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._request("POST", "/v1/jobs", json=body).json()

    def job(self, job_id: str) -> dict[str, Any]:
        return self._request("GET", f"/v1/jobs/{job_id}").json()

    def jobs(self, limit: int = 20, offset: int = 0, status: str | None = None) -> dict[str, Any]:
        params = {"limit": limit, "offset": offset, **({"status": status} if status else {})}
        return self._request("GET", "/v1/jobs", params=params).json()

    def audio(self, job_id: str, fmt: str | None = None) -> bytes:
        params = {"format": fmt} if fmt else {}
        return self._request("GET", f"/v1/jobs/{job_id}/audio", params=params).content

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self._request("DELETE", f"/v1/jobs/{job_id}").json()
