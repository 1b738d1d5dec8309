"""Client of osbuild-composer's Cloud API (v2), for a composer with remote workers.

It talks to `/api/image-builder-composer/v2` either on the local socket `/run/cloudapi/api.socket`
(no token) or over HTTPS with a bearer token. Flow: `POST /compose` with the converted blueprint
and one image request, poll `GET /composes/{id}` until `status` leaves `pending`, then fetch
`/composes/{id}/metadata` (the ostree commit) and `/composes/{id}/download`, or on failure the
image error and `/composes/{id}/logs`. Shapes: composer-cloudapi-openapi.v2.yml.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from ..errors import UsageError
from ..fsutil import write_atomic
from ..imagetypes import IMAGE_FILENAMES
from ..retry import parse_retry_after
from .blueprint_file import load_blueprint
from .cloudapi import blueprint_to_cloud, compose_request
from .errors import ApiErrorEntry, ComposeFailedError, ComposerAPIError, ComposerError, ComposeTimeoutError, api_error
from .osbuild_log import excerpt_from_cloud_logs
from .transport import (
    CLOUD_SOCKET,
    Download,
    Endpoint,
    Token,
    Waiter,
    attachment_name,
    open_client,
    parse_endpoint,
    redact,
    save_stream,
    transport_error,
)
from .types import (
    ComposeProgress,
    ComposeResult,
    ProgressCallback,
    check_image_type,
    check_ostree_options,
    composer_arch,
    retry_notice,
)

log = logging.getLogger("edgebuild.compose")

API = "Cloud API"
PREFIX = "/api/image-builder-composer/v2"
DEFAULT_ENDPOINT = f"unix://{CLOUD_SOCKET}"


def with_prefix(endpoint: Endpoint) -> Endpoint:
    """Append the API prefix unless the address already names it (a proxy may mount it elsewhere)."""
    if endpoint.socket:
        return Endpoint(base_url=endpoint.base_url + PREFIX, socket=endpoint.socket)
    path = urlsplit(endpoint.base_url).path
    if path.rstrip("/").endswith(PREFIX) or "/api/" in path:
        return endpoint
    return Endpoint(base_url=endpoint.base_url + PREFIX)


def cloud_errors(response: httpx.Response, token: Token | None) -> list[ApiErrorEntry]:
    """Entries of a Cloud API `Error` body ({id, code, reason, operation_id, details}) or its plain text."""
    try:
        body = response.json()
    except ValueError:
        text = redact(response.text.strip(), token)
        return [ApiErrorEntry("", text[:500])] if text else []
    if not isinstance(body, dict):
        return [ApiErrorEntry("", redact(str(body)[:500], token))]
    ident = str(body.get("code") or body.get("id") or "")
    reason = str(body.get("reason") or body.get("message") or "")
    if body.get("details"):
        details = body["details"]
        reason += f" ({details if isinstance(details, str) else json.dumps(details)})"
    if body.get("operation_id"):
        reason += f" [operation {body['operation_id']}]"
    return [ApiErrorEntry(redact(ident, token), redact(reason, token))]


class CloudClient:
    """One connection to a Cloud API endpoint; each method is one documented operation."""

    def __init__(self, endpoint: Endpoint, *, token: Token | None = None, verify: bool | str = True,
                 timeout: float = 60.0) -> None:
        self.endpoint = with_prefix(endpoint)
        self.token = token
        self._http = open_client(self.endpoint, api=API, token=token, verify=verify, timeout=timeout)

    def __enter__(self) -> CloudClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _check(self, response: httpx.Response, label: str) -> None:
        if response.status_code < 400:
            return
        hint = None
        if response.status_code in (401, 403):
            hint = ("the token is missing, expired or not allowed to compose: refresh it and pass it with "
                    "--token-file (the local socket needs none)")
        raise api_error(API, label, response.status_code, cloud_errors(response, self.token), hint,
                        parse_retry_after(response.headers.get("retry-after")))

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        label = f"{method} {PREFIX}{path}"
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise transport_error(exc, self.endpoint, API, label, self.token) from None
        log.debug("%s -> HTTP %s", label, response.status_code)
        self._check(response, label)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self._send(method, path, **kwargs)
        try:
            body = response.json()
        except ValueError:
            raise ComposerAPIError(API, f"{method} {PREFIX}{path}", response.status_code,
                                   [ApiErrorEntry("", "the answer is not JSON")]) from None
        if not isinstance(body, dict):
            raise ComposerAPIError(API, f"{method} {PREFIX}{path}", response.status_code,
                                   [ApiErrorEntry("", "the answer is not a JSON object")])
        return body

    def post_compose(self, request: Mapping[str, Any]) -> str:
        body = self._json("POST", "/compose", json=request)
        compose_id = body.get("id")
        if not isinstance(compose_id, str) or not compose_id:
            raise ComposerAPIError(API, f"POST {PREFIX}/compose", 201, [ApiErrorEntry("", "answer has no id")])
        return compose_id

    def compose_status(self, compose_id: str) -> dict[str, Any]:
        return self._json("GET", f"/composes/{quote(compose_id)}")

    def compose_logs(self, compose_id: str) -> dict[str, Any]:
        return self._json("GET", f"/composes/{quote(compose_id)}/logs")

    def compose_metadata(self, compose_id: str) -> dict[str, Any]:
        return self._json("GET", f"/composes/{quote(compose_id)}/metadata")

    def download(self, compose_id: str, image_type: str, dest_dir: Path) -> Download:
        path = f"/composes/{quote(compose_id)}/download"
        label = f"GET {PREFIX}{path}"
        try:
            with self._http.stream("GET", path) as response:
                if response.status_code >= 400:
                    response.read()
                    self._check(response, label)
                name = attachment_name(response, compose_id, IMAGE_FILENAMES[image_type])
                return save_stream(response, dest_dir, name)
        except httpx.TransportError as exc:
            raise transport_error(exc, self.endpoint, API, label, self.token) from None


def compose_cloud(blueprint_path: str | Path, image_type: str, *, endpoint: str | Endpoint = DEFAULT_ENDPOINT,
                  token: Token | str | None = None, ca_cert: str | None = None,
                  distribution: str | None = None, arch: str | None = None,
                  ref: str | None = None, parent: str | None = None, url: str | None = None,
                  repositories: Sequence[Mapping[str, Any]] = (), wait: bool = False,
                  download_dir: str | Path | None = None, progress: ProgressCallback | None = None,
                  poll_interval: float = 5.0, timeout: float | None = None, heartbeat: float = 60.0,
                  waiter: Waiter | None = None) -> ComposeResult:
    """Compose `blueprint_path` through the Cloud API; `download_dir` implies waiting.

    `endpoint` is `unix:///run/cloudapi/api.socket` (default) or `https://HOST[:PORT]`; `token`
    (a Token, or the token text) is sent as a bearer token and never printed. The distribution is the
    blueprint's `distro` unless `distribution` is given.
    """
    check_image_type(image_type)
    check_ostree_options(image_type, ref=ref, parent=parent, url=url)
    where = endpoint if isinstance(endpoint, Endpoint) else parse_endpoint(endpoint)
    secret = Token(token) if isinstance(token, str) else token
    blueprint_file = load_blueprint(blueprint_path)
    converted = blueprint_to_cloud(blueprint_file.data, str(blueprint_file.path))
    for warning in converted.warnings:
        log.warning("%s: %s", blueprint_file.path, warning)
    distro = distribution or converted.distro
    if not distro:
        raise UsageError(f"the Cloud API needs a distribution and blueprint {blueprint_file.path} sets no distro",
                         hint='add distro = "rhel-94" (for example) to the blueprint')
    architecture = composer_arch(arch or converted.architecture)
    if converted.architecture and composer_arch(converted.architecture) != architecture:
        raise UsageError(f"blueprint {blueprint_file.path} is for {converted.architecture} but --arch asks for "
                         f"{arch}", hint="drop one of them or make them agree")
    request = compose_request(converted, image_type, distribution=distro, architecture=architecture,
                              ref=ref, parent=parent, url=url, repositories=repositories)
    notify = progress or (lambda _p: None)
    with CloudClient(where, token=secret, verify=ca_cert or True) as client:
        compose_id = client.post_compose(request)
        result = ComposeResult(api="cloud", compose_id=compose_id, image_type=image_type,
                               blueprint_name=blueprint_file.name, state="pending",
                               warnings=list(converted.warnings))
        notify(ComposeProgress("cloud", compose_id, "pending", message="submitted"))
        if not (wait or download_dir):
            return result
        waiter = waiter or Waiter(poll_interval, timeout)
        status = _wait(client, compose_id, waiter, notify, heartbeat)
        result.state = str(status.get("status"))
        result.polls, result.elapsed_seconds = waiter.polls, waiter.elapsed
        if result.state == "failure":
            _raise_failure(client, compose_id, status, download_dir)
        result.ostree_commit = _ostree_commit(client, compose_id)
        if download_dir:
            saved = waiter.ask(lambda: client.download(compose_id, image_type, Path(download_dir)))
            result.artifact, result.artifact_size, result.artifact_sha256 = saved.path, saved.size, saved.sha256
            notify(ComposeProgress("cloud", compose_id, "downloaded", message=str(saved.path)))
        return result


def _mapping(value: Any) -> Mapping[str, Any]:
    """`value` when the composer sent a JSON object there, else an empty one (absent or null fields)."""
    return value if isinstance(value, Mapping) else {}


def _image_progress(status: Mapping[str, Any]) -> tuple[str, int | None, int | None]:
    image = _mapping(status.get("image_status"))
    progress = _mapping(image.get("progress"))
    done, total = progress.get("done"), progress.get("total")
    return (str(image.get("status") or status.get("status")),
            done if isinstance(done, int) else None, total if isinstance(total, int) else None)


def _wait(client: CloudClient, compose_id: str, waiter: Waiter, notify: ProgressCallback,
          heartbeat: float) -> dict[str, Any]:
    last: tuple[str, int | None, int | None] = ("pending", None, None)
    last_report = waiter.elapsed
    while True:
        status = waiter.ask(partial(client.compose_status, compose_id),
                            on_retry=retry_notice(notify, "cloud", compose_id, last[0]))
        seen = _image_progress(status)
        if seen != last or waiter.elapsed - last_report >= heartbeat:
            notify(ComposeProgress("cloud", compose_id, seen[0], seen[1], seen[2], f"{waiter.elapsed:.0f}s"))
            last, last_report = seen, waiter.elapsed
        if status.get("status") != "pending":
            return status
        if waiter.expired():
            raise ComposeTimeoutError(
                f"compose {compose_id} is still {seen[0]} after {waiter.elapsed:.0f}s (Cloud API)",
                hint=f"it keeps running in composer: poll GET {PREFIX}/composes/{compose_id} and fetch "
                     f"{PREFIX}/composes/{compose_id}/download when it succeeds")
        waiter.pause()


def _raise_failure(client: CloudClient, compose_id: str, status: Mapping[str, Any],
                   download_dir: str | Path | None) -> None:
    error = _mapping(_mapping(status.get("image_status")).get("error"))
    reason = f"error {error.get('id', '?')}: {error.get('reason', 'no reason given')}" if error else "no error given"
    if error.get("details"):
        details = error["details"]
        reason += f" ({details if isinstance(details, str) else json.dumps(details)})"
    reason = redact(reason, client.token)
    try:
        logs = client.compose_logs(compose_id)
    except ComposerError as exc:
        raise ComposeFailedError(API, compose_id, f"{reason}; logs could not be read: {exc}") from None
    log_path = None
    if download_dir:
        data = json.dumps(logs, indent=2).encode("utf-8")
        log_path = str(write_atomic(Path(download_dir) / f"{compose_id}-logs.json", data))
    raise ComposeFailedError(API, compose_id, reason, redact(excerpt_from_cloud_logs(logs), client.token), log_path)


def _ostree_commit(client: CloudClient, compose_id: str) -> str | None:
    try:
        commit = client.compose_metadata(compose_id).get("ostree_commit")
    except ComposerError as exc:
        log.warning("compose %s: metadata not available: %s", compose_id, exc)
        return None
    return commit if isinstance(commit, str) and commit else None
