"""A stand-in for osbuild-composer, for tests only: no osbuild-composer can run on these machines.

It implements the documented endpoints and status flow of both APIs closely enough to drive the
clients end to end, and it is strict where composer is strict:

- Weldr API (osbuild-composer internal/weldr/api.go) on a unix socket: blueprints/new (TOML or
  JSON only, name and semver checks), blueprints/depsolve, compose (JSON only, ostree option rules),
  compose/status (WAITING -> RUNNING -> FINISHED | FAILED), compose/image (only when FINISHED),
  compose/logs (tar with logs/osbuild.log, only when FINISHED or FAILED), compose/cancel. Errors are
  {"status": false, "errors": [{"id", "msg"}]}.
- Cloud API v2 (osbuild-composer internal/cloudapi/v2/openapi.v2.yml, the parts used trimmed into
  tests/data/composer-cloudapi.trimmed.yml) on a unix socket without a token and on
  127.0.0.1 (plain or TLS) with a bearer token: POST /compose, GET /composes/{id} (pending ->
  building with progress -> uploading -> success | failure), /composes/{id}/logs, /metadata,
  /download. Every request body is validated with jsonschema against the component the OpenAPI
  document names (ComposeRequest), and every JSON answer the stand-in gives against its own
  component, so the stand-in cannot drift from the document either.

Anything that breaks a rule is recorded as a violation; the pytest fixture fails the test if any
violation is left at teardown. Test control (not part of composer) lives under /_standin/:
GET state, POST scenario (outcome, poll counts, injected errors), POST reset.
The worker-side shapes in Cloud API logs (OSBuildJobResult with job_error and osbuild_output) follow
osbuild-composer internal/worker/json.go; the OpenAPI document leaves them untyped.

Run: python3 composer_standin.py --weldr-socket W --cloud-socket C --spec SPEC --ready-file F
     [--tcp] [--tls-cert CERT --tls-key KEY] [--token-file T]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import signal
import socket
import socketserver
import ssl
import subprocess
import sys
import tarfile
import threading
import time
import tomllib
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import jsonschema
import pytest
import yaml

CLOUD_PREFIX = "/api/image-builder-composer/v2"
WELDR_TYPES = ("edge-commit", "edge-container", "edge-installer", "edge-raw-image", "edge-simplified-installer",
               "image-installer", "qcow2")
FILENAMES = {"edge-commit": "commit.tar", "edge-container": "container.tar", "edge-installer": "installer.iso"}
MIME = {"edge-commit": "application/x-tar", "edge-container": "application/x-tar",
        "edge-installer": "application/x-iso9660-image"}
DISTROS = re.compile(r"^(rhel-\d{1,2}\d?|rhel-\d+\.\d+|centos-\d+|fedora-\d+)$")
NAME = re.compile(r"^[a-zA-Z0-9._-]+$")
SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:[-+].*)?$")
OSTREE_REF = re.compile(r"^(?:[\w\d][-._\w\d]*/)*[\w\d][-._\w\d]*$")
WELDR_COMPOSE_KEYS = {"blueprint_name", "compose_type", "branch", "size", "ostree", "upload"}
OSTREE_KEYS = {"ref", "parent", "url", "contenturl", "rhsm"}

DEFAULT_SCENARIO: dict[str, Any] = {
    "outcome": "success",          # or "failure"
    "waiting_polls": 1,            # status polls that still see WAITING / pending
    "running_polls": 3,            # status polls that see RUNNING / building (progress steps)
    "artifact_size": 256 * 1024,   # bytes in the image payload
    "depsolve_error": None,        # text: depsolve answers with a BlueprintsError
    "compose_error": None,         # {"id", "msg"} (Weldr) / {"id", "reason"} (Cloud): compose start refused
    "failed_stage": "org.osbuild.skopeo",
    "failure_output": ("Getting image source signatures\n"
                       "time=\"2026-01-01T00:00:00Z\" level=fatal msg=\"initializing source "
                       "docker://mirror.example:5000/amq7/amq-broker-rhel8-operator@sha256:0f: "
                       "reading manifest sha256:0f in mirror.example:5000/amq7/amq-broker-rhel8-operator: "
                       "manifest unknown\""),
    "echo_auth_in_error": False,   # fault injection: a broken server echoing the Authorization header
    "status_faults": [],           # fault injection: the next status polls answer "503" / "429" or "drop"
                                   # the connection unanswered (a composer restarting, a proxy in front)
}


# A blueprint of the shape `edgebuild render` writes (blueprints/edge.toml.j2), written by hand for tests.
SAMPLE_BLUEPRINT = """\
name = "microshift-edge"
description = "MicroShift with amq-broker-rhel8 from the mirror"
version = "0.0.1"
distro = "rhel-94"

[[packages]]
name = "microshift"
version = "4.17.1"

[[packages]]
name = "microshift-olm"
version = "4.17.1"

[[containers]]
source = "registry.redhat.io/redhat/redhat-operator-index@sha256:DIGEST_1"

[[containers]]
source = "mirror.example:5000/amq7/amq-broker-rhel8-operator@sha256:DIGEST_2"
tls-verify = false

[customizations.services]
enabled = ["microshift"]

[customizations.firewall]
ports = ["6443:tcp", "30000-32767:tcp"]

[[customizations.firewall.zones]]
name = "trusted"
sources = ["10.42.0.0/16", "169.254.169.1"]

[[customizations.directories]]
path = "/etc/microshift/manifests.d/050-redhat-operators"
ensure_parents = true

[[customizations.files]]
path = "/etc/containers/registries.conf.d/999-edgebuild-mirror.conf"
mode = "0644"
user = "root"
group = "root"
data = \'\'\'
[[registry]]
prefix = "registry.redhat.io"
location = "registry.redhat.io"
mirror-by-digest-only = true

[[registry.mirror]]
location = "mirror.example:5000"
insecure = true
\'\'\'
""".replace("DIGEST_1", "1" * 64).replace("DIGEST_2", "2" * 64)


class Spec:
    """jsonschema validators for components of the Cloud API OpenAPI document."""

    def __init__(self, path: str) -> None:
        with open(path, encoding="utf-8") as handle:
            self.doc = yaml.safe_load(handle)
        self._validators: dict[str, jsonschema.Draft4Validator] = {}

    def errors(self, component: str, instance: Any) -> list[str]:
        validator = self._validators.get(component)
        if validator is None:
            schema = {"$ref": f"#/components/schemas/{component}", "components": self.doc["components"]}
            validator = jsonschema.Draft4Validator(schema)
            self._validators[component] = validator
        return [f"{component}: {'/'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
                for e in validator.iter_errors(instance)]


class State:
    def __init__(self, spec: Spec, token: str | None) -> None:
        self.spec = spec
        self.token = token
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.scenario = dict(DEFAULT_SCENARIO)
        self.blueprints: dict[str, dict[str, Any]] = {}
        self.composes: dict[str, dict[str, Any]] = {}
        self.violations: list[str] = []
        self.requests: list[dict[str, Any]] = []

    def violation(self, text: str) -> None:
        self.violations.append(text)

    def new_compose(self, api: str, image_type: str, blueprint: Any, request: Any) -> dict[str, Any]:
        compose_id = str(uuid.uuid4())
        size = int(self.scenario["artifact_size"])
        payload = _artifact(compose_id, image_type, size)
        compose = {"id": compose_id, "api": api, "image_type": image_type, "blueprint": blueprint,
                   "request": request, "polls": 0, "created": time.time(),
                   "scenario": dict(self.scenario), "artifact": payload,
                   "artifact_sha256": hashlib.sha256(payload).hexdigest(),
                   "ostree_commit": hashlib.sha256(compose_id.encode()).hexdigest()}
        self.composes[compose_id] = compose
        return compose

    def advance(self, compose: dict[str, Any]) -> tuple[str, int]:
        """Move a compose one poll further; returns (phase, step) with phase waiting|running|done."""
        compose["polls"] += 1
        sc = compose["scenario"]
        n = compose["polls"]
        if n <= sc["waiting_polls"]:
            return "waiting", 0
        if n <= sc["waiting_polls"] + sc["running_polls"]:
            return "running", n - sc["waiting_polls"]
        return "done", sc["running_polls"]


def _artifact(compose_id: str, image_type: str, size: int) -> bytes:
    """A small real tar (or ISO-named blob) whose payload is deterministic for the compose id."""
    seed = hashlib.sha256(compose_id.encode()).digest()
    body = (seed * (size // len(seed) + 1))[:size]
    if image_type == "edge-installer":
        return body
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo("repo/standin-payload")
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    return out.getvalue()


def _osbuild_result(stage: str, output: str, success: bool) -> dict[str, Any]:
    """osbuild's JSON result: log maps pipeline name -> stages (id, type, output, success)."""
    build = [{"id": "a1", "type": "org.osbuild.rpm", "output": "Installed 312 packages", "success": True}]
    os_stages = [{"id": "b1", "type": "org.osbuild.rpm", "output": "Installed 641 packages", "success": True},
                 {"id": "b2", "type": stage, "output": output if not success else "done", "success": success}]
    return {"type": "result", "success": success, "log": {"build": build, "os": os_stages}}


def _weldr_log_text(compose: dict[str, Any]) -> str:
    sc = compose["scenario"]
    lines = ["Pipeline build", "Stage: org.osbuild.rpm", "Output:", "Installed 312 packages", "",
             "Pipeline os", "Stage: org.osbuild.rpm", "Output:", "Installed 641 packages", ""]
    if sc["outcome"] == "failure":
        lines += [f"Stage: {sc['failed_stage']}", "Output:", *sc["failure_output"].splitlines(),
                  "", f"Error: stage {sc['failed_stage']} failed"]
    else:
        lines += ["Stage: org.osbuild.ostree.commit", "Output:", "commit " + compose["ostree_commit"]]
    return "\n".join(lines) + "\n"


def _tar_of(name: str, text: str) -> bytes:
    out = io.BytesIO()
    data = text.encode()
    with tarfile.open(fileobj=out, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "composer-standin/1"
    api = "weldr"            # set per listener: weldr | cloud
    needs_token = False

    @property
    def st(self) -> State:
        return self.server.state  # type: ignore[attr-defined]

    def log_message(self, fmt: str, *args: Any) -> None:  # unix clients have no address; never log headers
        sys.stderr.write(f"standin {self.api}: {fmt % args}\n")

    # ----- plumbing
    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, code: int, body: bytes, ctype: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            for start in range(0, len(body), 1 << 20):
                self.wfile.write(body[start:start + (1 << 20)])

    def _json(self, code: int, obj: Any, component: str | None = None) -> None:
        if component:
            for err in self.st.spec.errors(component, obj):
                self.st.violation(f"stand-in answer {self.path}: {err}")
        self._send(code, json.dumps(obj).encode(), "application/json")

    def _record(self, body: bytes) -> None:
        entry: dict[str, Any] = {"api": self.api, "method": self.command, "path": self.path,
                                 "content_type": self.headers.get("Content-Type"),
                                 "authorized": self._authorized()}
        if body:
            try:
                entry["json"] = json.loads(body)
            except ValueError:
                entry["text"] = body.decode(errors="replace")
        self.st.requests.append(entry)

    def _authorized(self) -> bool:
        return self.headers.get("Authorization") == f"Bearer {self.st.token}"

    def _dispatch(self) -> None:
        body = self._body()
        path = urlsplit(self.path).path
        with self.st.lock:
            if path.startswith("/_standin/"):
                return self._control(path, body)
            self._record(body)
            if self._status_fault(path):
                return None
            if self.api == "weldr":
                return self._weldr(path, body)
            return self._cloud(path, body)

    do_GET = do_POST = do_DELETE = _dispatch

    STATUS_PATH = re.compile(r"^(/api/v1/compose/status/[^/]+|" + re.escape(CLOUD_PREFIX) + r"/composes/[^/]+)$")

    def _status_fault(self, path: str) -> bool:
        """Answer a status poll with the next injected fault, if any is left; True when one was used."""
        faults = self.st.scenario["status_faults"]
        if self.command != "GET" or not faults or not self.STATUS_PATH.match(path):
            return False
        fault = str(faults.pop(0))
        if fault == "drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return True
        code = int(fault)
        extra = {"Retry-After": "0"} if code == 429 else None
        if self.api == "weldr":
            self._send(code, json.dumps({"status": False, "errors": [
                {"id": "Unavailable", "msg": "injected"}]}).encode(), "application/json", extra)
        else:
            self._send(code, b"<html>503 Service Unavailable</html>", "text/html", extra)
        return True

    # ----- test control
    def _control(self, path: str, body: bytes) -> None:
        if path == "/_standin/state":
            composes = {k: {kk: vv for kk, vv in v.items() if kk != "artifact"} for k, v in self.st.composes.items()}
            return self._json(200, {"violations": self.st.violations, "requests": self.st.requests,
                                    "composes": composes})
        if path == "/_standin/scenario" and self.command == "POST":
            changes = json.loads(body or b"{}")
            unknown = set(changes) - set(DEFAULT_SCENARIO)
            if unknown:
                return self._json(400, {"error": f"unknown scenario keys {sorted(unknown)}"})
            self.st.scenario.update(changes)
            return self._json(200, self.st.scenario)
        if path == "/_standin/reset" and self.command == "POST":
            self.st.reset()
            return self._json(200, {"status": True})
        return self._json(404, {"error": "unknown control path"})

    # ----- Weldr API
    def _werr(self, code: int, ident: str, msg: str) -> None:
        self._json(code, {"status": False, "errors": [{"id": ident, "msg": msg}]})

    def _weldr(self, path: str, body: bytes) -> None:
        if path == "/api/status":
            return self._json(200, {"api": "1", "backend": "osbuild-composer", "build": "standin",
                                    "db_supported": True, "db_version": "0", "msgs": [], "schema_version": "0"})
        m = re.match(r"^/api/v(\d+)(/.*)$", path)
        if not m or int(m.group(1)) > 1:
            return self._json(404, {"status": False, "errors": [{"id": "HTTPError", "msg": "Not Found", "code": 404}]})
        route, method = m.group(2), self.command
        if route == "/blueprints/new" and method == "POST":
            return self._weldr_push(body)
        if (m2 := re.match(r"^/blueprints/depsolve/(.+)$", route)) and method == "GET":
            return self._weldr_depsolve(unquote(m2.group(1)).split(","))
        if route == "/compose" and method == "POST":
            return self._weldr_compose(body)
        if (m2 := re.match(r"^/compose/(status|image|logs|info)/([^/]+)$", route)) and method == "GET":
            return self._weldr_compose_get(m2.group(1), unquote(m2.group(2)))
        if (m2 := re.match(r"^/compose/cancel/([^/]+)$", route)) and method == "DELETE":
            return self._weldr_cancel(unquote(m2.group(1)))
        return self._json(404, {"status": False, "errors": [{"id": "HTTPError", "msg": "Not Found", "code": 404}]})

    def _weldr_push(self, body: bytes) -> None:
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if ctype not in ("text/x-toml", "application/json"):
            self.st.violation(f"blueprints/new with Content-Type {ctype!r}")
            return self._werr(400, "BlueprintsError", "blueprint must be in json or toml format")
        if not body:
            return self._werr(400, "BlueprintsError", "Missing blueprint")
        try:
            bp = tomllib.loads(body.decode()) if ctype == "text/x-toml" else json.loads(body)
        except (ValueError, tomllib.TOMLDecodeError) as exc:
            self.st.violation(f"blueprints/new body does not parse as {ctype}: {exc}")
            return self._werr(400, "BlueprintsError", f"400 Bad Request: {exc}")
        name = bp.get("name", "")
        if not isinstance(name, str) or not NAME.match(name):
            return self._werr(400, "InvalidChars", "Invalid characters in API path")
        version = bp.get("version") or "0.0.0"
        if not SEMVER.match(str(version)):
            return self._werr(400, "BlueprintsError", "Invalid 'version', must use Semantic Versioning")
        distro = bp.get("distro", "")
        if distro and not DISTROS.match(distro):
            return self._werr(400, "BlueprintsError", f"'{distro}' is not a valid distribution")
        self.st.blueprints[name] = bp
        return self._json(200, {"status": True})

    def _weldr_depsolve(self, names: list[str]) -> None:
        blueprints, errors = [], []
        for name in names:
            bp = self.st.blueprints.get(name)
            if bp is None:
                errors.append({"id": "UnknownBlueprint", "msg": f"{name}: blueprint not found"})
                continue
            if self.st.scenario["depsolve_error"]:
                errors.append({"id": "BlueprintsError", "msg": f"{name}: {self.st.scenario['depsolve_error']}"})
                continue
            deps = [{"name": p["name"], "epoch": 0, "version": "1.0", "release": "1.el9", "arch": "x86_64"}
                    for p in bp.get("packages", [])]
            blueprints.append({"blueprint": bp, "dependencies": deps})
        return self._json(200, {"blueprints": blueprints, "errors": errors})

    def _weldr_compose(self, body: bytes) -> None:
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if ctype != "application/json":
            self.st.violation(f"POST /compose with Content-Type {ctype!r}")
            return self._werr(400, "BadRequest", "Content-Type must be application/json")
        try:
            req = json.loads(body)
        except ValueError:
            self.st.violation("POST /compose body is not JSON")
            return self._werr(400, "BadRequest", "invalid JSON")
        unknown = set(req) - WELDR_COMPOSE_KEYS
        if unknown:
            self.st.violation(f"POST /compose has keys composer does not read: {sorted(unknown)}")
        ostree = req.get("ostree") or {}
        if set(ostree) - OSTREE_KEYS:
            self.st.violation(f"POST /compose ostree has unknown keys: {sorted(set(ostree) - OSTREE_KEYS)}")
        name, ctype_ = req.get("blueprint_name"), req.get("compose_type")
        if name not in self.st.blueprints:
            return self._werr(400, "UnknownBlueprint", f"Unknown blueprint name: {name}")
        if ctype_ not in WELDR_TYPES:
            return self._werr(400, "ComposeError", f"Failed to get compose type \"{ctype_}\": invalid image type")
        if ostree.get("ref") and not OSTREE_REF.match(ostree["ref"]):
            return self._werr(400, "OSTreeOptionsError", f"Invalid ostree ref or remote \"{ostree['ref']}\"")
        if ostree.get("parent") and not ostree.get("url"):
            return self._werr(400, "OSTreeOptionsError",
                              "ostree parent ref specified, but no URL to retrieve it")
        if ctype_ == "edge-installer" and not ostree.get("url"):
            return self._werr(400, "ComposeError",
                              "boot ISO image type \"edge-installer\" requires specifying a URL from which to "
                              "retrieve the OSTree commit")
        if self.st.scenario["compose_error"]:
            err = self.st.scenario["compose_error"]
            return self._werr(400, err["id"], err["msg"])
        compose = self.st.new_compose("weldr", ctype_, self.st.blueprints[name], req)
        return self._json(200, {"build_id": compose["id"], "status": True, "warnings": []})

    def _weldr_state(self, compose: dict[str, Any], advance: bool) -> str:
        if compose.get("canceled"):
            return "FAILED"
        if advance:
            compose["phase"] = self.st.advance(compose)[0]
        phase = compose.get("phase", "waiting")
        if phase == "waiting":
            return "WAITING"
        if phase == "running":
            return "RUNNING"
        return "FINISHED" if compose["scenario"]["outcome"] == "success" else "FAILED"

    def _weldr_compose_get(self, what: str, compose_id: str) -> None:
        compose = self.st.composes.get(compose_id)
        if compose is None or compose["api"] != "weldr":
            return self._werr(400, "UnknownUUID", f"{compose_id} is not a valid build uuid")
        state = self._weldr_state(compose, advance=(what == "status"))
        bp = compose["blueprint"]
        if what == "status":
            entry = {"id": compose_id, "blueprint": bp["name"], "version": bp.get("version", "0.0.0"),
                     "compose_type": compose["image_type"], "image_size": 0, "queue_status": state,
                     "job_created": compose["created"], "uploads": []}
            if state != "WAITING":
                entry["job_started"] = compose["created"] + 1
            if state in ("FINISHED", "FAILED"):
                entry["job_finished"] = compose["created"] + 2
                entry["image_size"] = len(compose["artifact"]) if state == "FINISHED" else 0
            return self._json(200, {"uuids": [entry]})
        if what == "info":
            return self._json(200, {"id": compose_id, "blueprint": bp, "compose_type": compose["image_type"],
                                    "queue_status": state, "image_size": len(compose["artifact"])})
        if what == "image":
            if state != "FINISHED":
                return self._werr(400, "BuildInWrongState", f"Build {compose_id} is in wrong state: {state}")
            name = f"{compose_id}-{FILENAMES.get(compose['image_type'], 'image.bin')}"
            return self._send(200, compose["artifact"], MIME.get(compose["image_type"], "application/octet-stream"),
                              {"Content-Disposition": f"attachment; filename={name}"})
        if state not in ("FINISHED", "FAILED"):
            return self._werr(400, "BuildInWrongState", f"Build {compose_id} not in FINISHED or FAILED state.")
        return self._send(200, _tar_of("logs/osbuild.log", _weldr_log_text(compose)), "application/x-tar",
                          {"Content-Disposition": f"attachment; filename={compose_id}-logs.tar"})

    def _weldr_cancel(self, compose_id: str) -> None:
        compose = self.st.composes.get(compose_id)
        if compose is None:
            return self._werr(400, "UnknownUUID", f"{compose_id} is not a valid build uuid")
        compose["canceled"] = True
        return self._json(200, {"uuid": compose_id, "status": True})

    # ----- Cloud API
    def _cerr(self, code: int, ident: int, reason: str) -> None:
        if self.st.scenario["echo_auth_in_error"]:
            reason += f" (got Authorization: {self.headers.get('Authorization')})"
        self._json(code, {"href": f"{CLOUD_PREFIX}/errors/{ident}", "id": str(ident), "kind": "Error",
                          "code": f"IMAGE-BUILDER-COMPOSER-{ident}", "reason": reason,
                          "operation_id": uuid.uuid4().hex[:20]}, "Error")

    def _cloud(self, path: str, body: bytes) -> None:
        if self.needs_token and not self._authorized():
            return self._cerr(401, 1000, "Authentication failed: missing or invalid bearer token")
        if not path.startswith(CLOUD_PREFIX + "/"):
            return self._cerr(404, 2, "Requested resource doesn't exist")
        route, method = path[len(CLOUD_PREFIX):], self.command
        if route == "/compose" and method == "POST":
            return self._cloud_compose(body)
        if (m := re.match(r"^/composes/([^/]+)(/logs|/metadata|/download)?$", route)) and method == "GET":
            return self._cloud_compose_get(unquote(m.group(1)), (m.group(2) or "/").lstrip("/"))
        return self._cerr(404, 2, "Requested resource doesn't exist")

    def _cloud_compose(self, body: bytes) -> None:
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if ctype != "application/json":
            self.st.violation(f"POST /compose with Content-Type {ctype!r}")
            return self._cerr(400, 30, "Request could not be validated: content type")
        try:
            req = json.loads(body)
        except ValueError:
            self.st.violation("POST /compose body is not JSON")
            return self._cerr(400, 30, "Request could not be validated: invalid JSON")
        problems = self.st.spec.errors("ComposeRequest", req)
        if problems:
            for p in problems:
                self.st.violation(f"POST /compose body: {p}")
            return self._cerr(400, 30, "Request could not be validated: " + "; ".join(problems))
        images = req.get("image_requests") or ([req["image_request"]] if "image_request" in req else [])
        if len(images) != 1:
            return self._cerr(400, 8, "Exactly one image request should be included")
        image = images[0]
        if not DISTROS.match(req.get("distribution", "")):
            return self._cerr(400, 4, "Unsupported distribution")
        ostree = image.get("ostree") or {}
        if ostree.get("parent") and not ostree.get("url"):
            return self._cerr(400, 27, "Invalid OSTree parameters or parameter combination")
        if image["image_type"] == "edge-installer" and not ostree.get("url"):
            return self._cerr(400, 27, "Invalid OSTree parameters or parameter combination")
        if self.st.scenario["compose_error"]:
            err = self.st.scenario["compose_error"]
            return self._cerr(400, int(err["id"]), err["reason"])
        compose = self.st.new_compose("cloud", image["image_type"], req.get("blueprint"), req)
        return self._json(201, {"href": f"{CLOUD_PREFIX}/compose/{compose['id']}", "id": compose["id"],
                                "kind": "ComposeId"}, "ComposeId")

    def _cloud_status(self, compose: dict[str, Any], advance: bool) -> dict[str, Any]:
        if advance:
            compose["phase"], compose["step"] = self.st.advance(compose)
        phase, step = compose.get("phase", "waiting"), compose.get("step", 0)
        total = compose["scenario"]["running_polls"]
        ok = compose["scenario"]["outcome"] == "success"
        if phase == "waiting":
            image: dict[str, Any] = {"status": "pending"}
            overall = "pending"
        elif phase == "running":
            image = {"status": "building", "progress": {"done": step, "total": total}}
            overall = "pending"
        elif ok:
            image = {"status": "success", "progress": {"done": total, "total": total},
                     "upload_status": {"status": "success", "type": "local", "options": {
                         "artifact_path": f"/var/lib/osbuild-composer/artifacts/{compose['id']}/"
                                          f"{FILENAMES[compose['image_type']]}"}}}
            overall = "success"
        else:
            image = {"status": "failure", "progress": {"done": step, "total": total},
                     "error": {"id": 10, "reason": "osbuild build failed",
                               "details": [{"id": 33, "reason": f"stage {compose['scenario']['failed_stage']} "
                                                                "failed"}]}}
            overall = "failure"
        return {"href": f"{CLOUD_PREFIX}/composes/{compose['id']}", "id": compose["id"], "kind": "ComposeStatus",
                "status": overall, "image_status": image, "image_statuses": [image]}

    def _cloud_compose_get(self, compose_id: str, what: str) -> None:
        compose = self.st.composes.get(compose_id)
        if compose is None or compose["api"] != "cloud":
            return self._cerr(404, 15, "Compose with given id not found")
        if what == "":
            return self._json(200, self._cloud_status(compose, advance=True), "ComposeStatus")
        status = self._cloud_status(compose, advance=False)
        href = f"{CLOUD_PREFIX}/composes/{compose_id}/{what}"
        if what == "logs":
            sc = compose["scenario"]
            ok = status["status"] == "success"
            build: dict[str, Any] = {"success": ok, "upload_status": "success" if ok else "failure",
                                     "host_os": "rhel-9.4", "arch": "x86_64",
                                     "osbuild_output": _osbuild_result(sc["failed_stage"], sc["failure_output"], ok)}
            if not ok:
                build["job_error"] = {"id": 10, "reason": "osbuild build failed",
                                      "details": f"stage {sc['failed_stage']} failed"}
            return self._json(200, {"href": href, "id": compose_id, "kind": "ComposeLogs", "image_builds": [build]},
                              "ComposeLogs")
        if what == "metadata":
            meta: dict[str, Any] = {"href": href, "id": compose_id, "kind": "ComposeMetadata",
                                    "request": compose["request"]}
            if status["status"] == "success":
                meta["ostree_commit"] = compose["ostree_commit"]
            return self._json(200, meta, "ComposeMetadata")
        if status["status"] != "success":
            return self._cerr(400, 23, "Compose is not finished or has no artifact")
        name = FILENAMES[compose["image_type"]]
        return self._send(200, compose["artifact"], "application/octet-stream",
                          {"Content-Disposition": f"attachment; filename={name}"})


class UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self):  # type: ignore[no-untyped-def]
        request, _ = super().get_request()
        return request, ("unix", 0)


class TCPHTTPServer(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True


def _handler(api: str, needs_token: bool) -> type[Handler]:
    return type(f"{api.title()}Handler", (Handler,), {"api": api, "needs_token": needs_token})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weldr-socket", required=True)
    p.add_argument("--cloud-socket", required=True)
    p.add_argument("--spec", required=True, help="composer-cloudapi-openapi.v2.yml")
    p.add_argument("--ready-file", required=True, help="JSON {pid, tcp_port} is written here once listening")
    p.add_argument("--tcp", action="store_true", help="also serve the Cloud API on 127.0.0.1 (token required)")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--token-file")
    args = p.parse_args(argv)
    token = open(args.token_file, encoding="utf-8").read().strip() if args.token_file else None
    state = State(Spec(args.spec), token)
    servers: list[socketserver.BaseServer] = []
    for path, api in ((args.weldr_socket, "weldr"), (args.cloud_socket, "cloud")):
        if os.path.exists(path):
            os.unlink(path)
        srv = UnixHTTPServer(path, _handler(api, needs_token=False))
        srv.state = state  # type: ignore[attr-defined]
        servers.append(srv)
    tcp_port = None
    if args.tcp:
        srv = TCPHTTPServer(("127.0.0.1", 0), _handler("cloud", needs_token=True))
        if args.tls_cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(args.tls_cert, args.tls_key)
            srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        srv.state = state  # type: ignore[attr-defined]
        tcp_port = srv.server_address[1]
        servers.append(srv)
    for srv in servers:
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    tmp = args.ready_file + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump({"pid": os.getpid(), "tcp_port": tcp_port}, handle)
    os.replace(tmp, args.ready_file)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    return 0


# --------------------------------------------------------------------------------------------------
# pytest side: the fixture that starts the stand-in as its own process and stops it by PID.

# The parts of the Cloud API document the stand-in and the tests validate against (source in its header).
SPEC = Path(__file__).resolve().parent / "data" / "composer-cloudapi.trimmed.yml"


class StandIn:
    """Handle on a running stand-in: addresses, token, CA, and the /_standin/ control calls."""

    def __init__(self, root: Path, pid: int, tcp_port: int, token: str) -> None:
        self.root = root
        self.pid = pid
        self.weldr_socket = str(root / "weldr.sock")
        self.cloud_socket = str(root / "cloud.sock")
        self.cloud_url = f"https://127.0.0.1:{tcp_port}"
        self.ca_cert = str(root / "cert.pem")
        self.token = token
        self.token_file = str(root / "token")

    def _control(self, method: str, path: str, body: Any = None) -> Any:
        import httpx
        with httpx.Client(transport=httpx.HTTPTransport(uds=self.weldr_socket), base_url="http://standin") as c:
            response = c.request(method, f"/_standin/{path}", json=body)
            response.raise_for_status()
            return response.json()

    def scenario(self, **changes: Any) -> dict[str, Any]:
        return self._control("POST", "scenario", changes)

    def state(self) -> dict[str, Any]:
        return self._control("GET", "state")

    def reset(self) -> None:
        self._control("POST", "reset")

    def requests(self, api: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self.state()["requests"] if api is None or r["api"] == api]

    def take_violations(self) -> list[str]:
        """Violations so far, cleared; for tests that send a bad request on purpose."""
        found = self.state()["violations"]
        self._control("POST", "reset")
        return found


def _make_cert(root: Path) -> None:
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(root / "key.pem"),
                    "-out", str(root / "cert.pem"), "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)


@pytest.fixture(scope="module")
def composer_standin_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandIn]:
    root = tmp_path_factory.mktemp("standin")
    _make_cert(root)
    token = "tok-" + uuid.uuid4().hex
    (root / "token").write_text(token + "\n", encoding="utf-8")
    ready = root / "ready.json"
    proc = subprocess.Popen(
        [sys.executable, __file__, "--weldr-socket", str(root / "weldr.sock"), "--cloud-socket",
         str(root / "cloud.sock"), "--spec", str(SPEC), "--ready-file", str(ready), "--tcp",
         "--tls-cert", str(root / "cert.pem"), "--tls-key", str(root / "key.pem"), "--token-file",
         str(root / "token")],
        stdout=subprocess.DEVNULL, stderr=open(root / "standin.log", "wb"))
    try:
        deadline = time.monotonic() + 20
        while not ready.exists():
            if proc.poll() is not None:
                raise RuntimeError(f"stand-in exited with {proc.returncode}: {(root / 'standin.log').read_text()}")
            if time.monotonic() > deadline:
                raise RuntimeError("stand-in did not start within 20 s")
            time.sleep(0.02)
        info = json.loads(ready.read_text())
        yield StandIn(root, proc.pid, info["tcp_port"], token)
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture
def standin(composer_standin_process: StandIn) -> Iterator[StandIn]:
    """A reset stand-in; the test fails at teardown if any request broke the documented rules."""
    composer_standin_process.reset()
    yield composer_standin_process
    violations = composer_standin_process.state()["violations"]
    assert not violations, "requests broke the composer API documents:\n" + "\n".join(violations)



@pytest.fixture
def blueprint(tmp_path: Path) -> Path:
    """SAMPLE_BLUEPRINT in a file, as `edgebuild render` leaves one for `edgebuild compose`."""
    path = tmp_path / "blueprint.toml"
    path.write_text(SAMPLE_BLUEPRINT, encoding="utf-8")
    return path


if __name__ == "__main__":
    sys.exit(main())
