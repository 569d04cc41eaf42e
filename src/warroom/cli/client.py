"""The CLI's REST client: base URL and token from --url/WARROOM_URL and WARROOM_TOKEN.

Errors from the server come back as `{"error": {...}}` and are raised as the
matching WarroomError, so every client command prints one line and exits
with the documented code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from warroom.core import errors as e

if TYPE_CHECKING:
    import httpx

_BY_STATUS: dict[int, type[e.WarroomError]] = {
    400: e.InvalidInput,
    401: e.Unauthenticated,
    403: e.PermissionDenied,
    404: e.NotFound,
    409: e.Conflict,
    413: e.TooLarge,
    415: e.InvalidInput,
    422: e.InvalidInput,
}


class ApiClient:
    def __init__(
        self, url: str | None = None, token: str | None = None, *, timeout: float = 30
    ) -> None:
        from warroom.settings import from_env

        settings = from_env()
        self.url = (url or settings.client_url).rstrip("/")
        self.token = token if token is not None else settings.client_token
        self.timeout = timeout

    def _client(self) -> httpx.Client:
        import httpx

        headers = {"Accept": "application/json", "User-Agent": "warroom-cli"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return httpx.Client(base_url=self.url, headers=headers, timeout=self.timeout)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request; returns parsed JSON (or text). Raises WarroomError subclasses."""
        import httpx

        try:
            with self._client() as client:
                resp = client.request(method, path, **kwargs)
        except httpx.ConnectError:
            raise e.Unavailable(
                f"cannot reach the warroom server at {self.url}",
                hint="start it with `warroom serve`, or set --url / WARROOM_URL",
            ) from None
        except httpx.TimeoutException:
            raise e.Unavailable(f"the server at {self.url} did not answer in time") from None
        except httpx.HTTPError as exc:
            raise e.Unavailable(f"request to {self.url} failed: {exc}") from None
        if resp.status_code >= 400:
            raise self._error(resp)
        if resp.status_code == 204 or not resp.content:
            return None
        if resp.headers.get("content-type", "").startswith("application/json"):
            return resp.json()
        return resp.text

    def _error(self, resp: httpx.Response) -> e.WarroomError:
        message = f"server answered {resp.status_code}"
        field = None
        hint = None
        try:
            body = resp.json()
            err = body.get("error", {}) if isinstance(body, dict) else {}
            message = str(err.get("message") or message)
            field = err.get("field")
            hint = err.get("hint")
        except ValueError:
            pass
        if resp.status_code == 401 and not self.token:
            hint = "set WARROOM_TOKEN (create one with `warroom token create NAME`)"
        if resp.status_code in (429, 503):
            return e.Unavailable(message, hint=hint)
        if resp.status_code >= 500:
            return e.Unavailable(f"server error: {message}", hint=hint)
        cls = _BY_STATUS.get(resp.status_code, e.InvalidInput)
        return cls(message, field=field, hint=hint)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)
