"""Client of osbuild-composer's Weldr API (the local API composer-cli uses) over its unix socket.

The flow is the one composer-cli and MicroShift's build script follow: push the TOML blueprint,
depsolve it (so a missing package fails in seconds, not after queueing), start the ostree compose,
poll `compose/status` until FINISHED or FAILED, then download `compose/image` or, on failure, read
`compose/logs` and show the osbuild error. Endpoints: osbuild-composer internal/weldr/api.go.
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from ..fsutil import write_atomic
from ..imagetypes import IMAGE_FILENAMES
from ..retry import parse_retry_after
from .blueprint_file import BlueprintFile, load_blueprint
from .errors import ApiErrorEntry, ComposeFailedError, ComposerAPIError, ComposeTimeoutError, api_error
from .osbuild_log import excerpt_from_weldr_log, osbuild_log_from_tar
from .transport import (
    WELDR_SOCKET,
    Download,
    Waiter,
    attachment_name,
    open_client,
    save_stream,
    socket_endpoint,
    transport_error,
)
from .types import (
    ComposeProgress,
    ComposeResult,
    ProgressCallback,
    check_image_type,
    check_ostree_options,
    retry_notice,
)

log = logging.getLogger("edgebuild.compose")

API = "Weldr API"
DONE_STATES = ("FINISHED", "FAILED")


def weldr_errors(response: httpx.Response) -> list[ApiErrorEntry]:
    """The `errors` of a Weldr error body ({"status": false, "errors": [{"id", "msg"}]}), or its text."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return [ApiErrorEntry("", text[:500])] if text else []
    entries = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(entries, list):
        return [ApiErrorEntry("", str(body)[:500])]
    return [ApiErrorEntry(str(e.get("id", "")), str(e.get("msg", ""))) for e in entries if isinstance(e, dict)]


class WeldrClient:
    """One connection to the Weldr socket; each method is one documented endpoint."""

    def __init__(self, socket: str = WELDR_SOCKET, *, timeout: float = 60.0) -> None:
        self.endpoint = socket_endpoint(socket)
        self._http = open_client(self.endpoint, api=API, timeout=timeout)

    def __enter__(self) -> WeldrClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, method: str, path: str, *, expect_json: bool = True, **kwargs: Any) -> httpx.Response:
        label = f"{method} {path}"
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise transport_error(exc, self.endpoint, API, label, None) from None
        log.debug("%s -> HTTP %s", label, response.status_code)
        if response.status_code >= 400:
            raise api_error(API, label, response.status_code, weldr_errors(response),
                            retry_after=parse_retry_after(response.headers.get("retry-after")))
        if expect_json and "json" not in response.headers.get("content-type", "json"):
            raise ComposerAPIError(API, label, response.status_code,
                                   [ApiErrorEntry("", "expected a JSON answer, got "
                                                  + response.headers.get("content-type", "no content type"))])
        return response

    def status(self) -> dict[str, Any]:
        return self._send("GET", "/api/status").json()

    def push_blueprint(self, blueprint: BlueprintFile) -> None:
        self._send("POST", "/api/v1/blueprints/new", content=blueprint.raw,
                   headers={"Content-Type": "text/x-toml"})

    def depsolve(self, name: str) -> int:
        """Depsolve one blueprint; returns how many packages it resolved to."""
        path = f"/api/v1/blueprints/depsolve/{quote(name)}"
        body = self._send("GET", path).json()
        errors = [ApiErrorEntry(str(e.get("id", "")), str(e.get("msg", ""))) for e in body.get("errors") or []
                  if isinstance(e, dict)]
        if errors:
            raise ComposerAPIError(API, f"GET {path}", 200, errors,
                                   hint="check the package names and that composer has the repositories they "
                                        "come from (composer-cli sources list)")
        blueprints = body.get("blueprints") or []
        return sum(len(b.get("dependencies") or []) for b in blueprints if isinstance(b, dict))

    def start_compose(self, name: str, image_type: str, *, ref: str | None, parent: str | None,
                      url: str | None) -> tuple[str, list[str]]:
        """Start a compose the way `composer-cli compose start-ostree` does; returns (build id, warnings)."""
        request: dict[str, Any] = {"blueprint_name": name, "compose_type": image_type, "branch": "master"}
        ostree = {k: v for k, v in (("ref", ref), ("parent", parent), ("url", url)) if v}
        if ostree:
            request["ostree"] = ostree
        body = self._send("POST", "/api/v1/compose", json=request).json()
        build_id = body.get("build_id")
        if not isinstance(build_id, str) or not build_id:
            raise ComposerAPIError(API, "POST /api/v1/compose", 200, [ApiErrorEntry("", "answer has no build_id")])
        return build_id, [str(w) for w in body.get("warnings") or []]

    def compose_status(self, compose_id: str) -> dict[str, Any]:
        path = f"/api/v1/compose/status/{quote(compose_id)}"
        entries = self._send("GET", path).json().get("uuids") or []
        for entry in entries:
            if isinstance(entry, dict) and entry.get("id") == compose_id:
                return entry
        raise ComposerAPIError(API, f"GET {path}", 200, [ApiErrorEntry("UnknownUUID", f"{compose_id} not in answer")])

    def logs_tar(self, compose_id: str) -> bytes:
        return self._send("GET", f"/api/v1/compose/logs/{quote(compose_id)}", expect_json=False).content

    def download_image(self, compose_id: str, image_type: str, dest_dir: Path) -> Download:
        path = f"/api/v1/compose/image/{quote(compose_id)}"
        try:
            with self._http.stream("GET", path) as response:
                if response.status_code >= 400:
                    response.read()
                    raise api_error(API, f"GET {path}", response.status_code, weldr_errors(response))
                name = attachment_name(response, compose_id, IMAGE_FILENAMES[image_type])
                return save_stream(response, dest_dir, name)
        except httpx.TransportError as exc:
            raise transport_error(exc, self.endpoint, API, f"GET {path}", None) from None


def compose_weldr(blueprint_path: str | Path, image_type: str, *, socket: str = WELDR_SOCKET,
                  ref: str | None = None, parent: str | None = None, url: str | None = None,
                  wait: bool = False, download_dir: str | Path | None = None,
                  progress: ProgressCallback | None = None, poll_interval: float = 5.0,
                  timeout: float | None = None, heartbeat: float = 60.0,
                  waiter: Waiter | None = None) -> ComposeResult:
    """Push, depsolve and compose `blueprint_path` through Weldr; `download_dir` implies waiting.

    Raises ComposeFailedError (with the osbuild error) when the compose fails, ComposeTimeoutError
    when it runs past `timeout` seconds (the compose keeps running in composer).
    """
    check_image_type(image_type)
    check_ostree_options(image_type, ref=ref, parent=parent, url=url)
    blueprint = load_blueprint(blueprint_path)
    notify = progress or (lambda _p: None)
    with WeldrClient(socket) as client:
        client.push_blueprint(blueprint)
        packages = client.depsolve(blueprint.name)
        log.info("blueprint %s pushed and depsolved (%d packages)", blueprint.name, packages)
        compose_id, warnings = client.start_compose(blueprint.name, image_type, ref=ref, parent=parent, url=url)
        for warning in warnings:
            log.warning("composer: %s", warning)
        result = ComposeResult(api="weldr", compose_id=compose_id, image_type=image_type,
                               blueprint_name=blueprint.name, state="WAITING", warnings=warnings)
        notify(ComposeProgress("weldr", compose_id, "WAITING", message="submitted"))
        if not (wait or download_dir):
            return result
        waiter = waiter or Waiter(poll_interval, timeout)
        result.state = _wait(client, compose_id, waiter, notify, heartbeat)
        result.polls, result.elapsed_seconds = waiter.polls, waiter.elapsed
        if result.state == "FAILED":
            _raise_failure(client, compose_id, download_dir)
        if download_dir:
            saved = waiter.ask(lambda: client.download_image(compose_id, image_type, Path(download_dir)))
            result.artifact, result.artifact_size, result.artifact_sha256 = saved.path, saved.size, saved.sha256
            notify(ComposeProgress("weldr", compose_id, "DOWNLOADED", message=str(saved.path)))
        return result


def _wait(client: WeldrClient, compose_id: str, waiter: Waiter, notify: ProgressCallback, heartbeat: float) -> str:
    last_state, last_report = "WAITING", waiter.elapsed
    while True:
        status = waiter.ask(partial(client.compose_status, compose_id),
                            on_retry=retry_notice(notify, "weldr", compose_id, last_state))
        state = str(status.get("queue_status", ""))
        if state != last_state or waiter.elapsed - last_report >= heartbeat:
            notify(ComposeProgress("weldr", compose_id, state, message=f"{waiter.elapsed:.0f}s"))
            last_state, last_report = state, waiter.elapsed
        if state in DONE_STATES:
            return state
        if waiter.expired():
            raise ComposeTimeoutError(
                f"compose {compose_id} is still {state} after {waiter.elapsed:.0f}s (Weldr API)",
                hint=f"it keeps running: check with 'composer-cli compose status', fetch it with "
                     f"'composer-cli compose image {compose_id}', or stop it with "
                     f"'composer-cli compose cancel {compose_id}'")
        waiter.pause()


def _raise_failure(client: WeldrClient, compose_id: str, download_dir: str | Path | None) -> None:
    try:
        text = osbuild_log_from_tar(client.logs_tar(compose_id))
    except ComposerAPIError as exc:
        raise ComposeFailedError(API, compose_id, "composer reports FAILED and its logs could not be read: "
                                 + str(exc)) from None
    if text is None:
        raise ComposeFailedError(API, compose_id, "composer reports FAILED; its logs tar has no osbuild.log")
    log_path = None
    if download_dir:
        log_path = str(write_atomic(Path(download_dir) / f"{compose_id}-osbuild.log", text.encode("utf-8")))
    raise ComposeFailedError(API, compose_id, "osbuild failed", excerpt_from_weldr_log(text), log_path)
