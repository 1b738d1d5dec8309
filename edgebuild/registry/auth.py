"""Registry credentials from containers-auth.json files, looked up the way podman and skopeo do.

Order: an explicit `--authfile` only; otherwise REGISTRY_AUTH_FILE, then
`$XDG_RUNTIME_DIR/containers/auth.json`, `$XDG_CONFIG_HOME/containers/auth.json`
(default `~/.config`), then `~/.docker/config.json` and the legacy `~/.dockercfg`. Within a file
the most specific key wins (`host/ns/repo`, then `host/ns`, then `host`), and legacy keys such as
`https://index.docker.io/v1/` are normalised. A file's `credHelpers[host]` wins for that host, and its
`credsStore` answers for hosts the file has no entry for (`docker-credential-<name> get`). Secrets are
never put in messages or reprs.

Identity tokens (OAuth2 refresh tokens that `docker login` stores instead of a password) come from an
entry's `identitytoken` or from a helper answering Username `<token>`; the client trades them for
access tokens at the registry's token realm (client.py), the way docker and containers/image do.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import RegistryError

IDENTITY_TOKEN_USER = "<token>"  # what credential helpers answer as Username for an identity token


@dataclass(frozen=True, slots=True)
class Credentials:
    """A username and password, or an identity (refresh) token; `origin` names where they came from."""

    username: str
    password: str = field(repr=False)
    origin: str = ""  # the file (or helper) they came from, for messages
    identity_token: str = field(default="", repr=False)  # an OAuth2 refresh token; wins over the password

    def __repr__(self) -> str:  # never show the secret, even in a traceback
        kind = ", identity token" if self.identity_token else ""
        return f"Credentials(username={self.username!r}, origin={self.origin!r}{kind})"

    __str__ = __repr__

    @property
    def is_identity_token(self) -> bool:
        return bool(self.identity_token)

    @property
    def who(self) -> str:
        """How messages name these credentials (never the secret)."""
        source = f" from {self.origin}" if self.origin else ""
        if self.identity_token:
            return f"the identity token{source}"
        return f"the credentials of user {self.username!r}{source}"


def auth_file_candidates(authfile: str | os.PathLike[str] | None = None,
                         env: Mapping[str, str] | None = None) -> list[Path]:
    """The auth files to read, most important first."""
    env = os.environ if env is None else env
    if authfile:
        return [Path(authfile)]
    files: list[Path] = []
    if env.get("REGISTRY_AUTH_FILE"):
        files.append(Path(env["REGISTRY_AUTH_FILE"]))
    if env.get("XDG_RUNTIME_DIR"):
        files.append(Path(env["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
    home = Path(env.get("HOME") or Path.home())
    config_home = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else home / ".config"
    files.append(config_home / "containers" / "auth.json")
    files.append(home / ".docker" / "config.json")
    files.append(home / ".dockercfg")
    return files


def normalize_key(key: str) -> str:
    """`https://index.docker.io/v1/` -> `docker.io`; `http://host:5000/v2/` -> `host:5000`."""
    key = key.strip()
    for prefix in ("https://", "http://"):
        if key.startswith(prefix):
            key = key[len(prefix):].split("/", 1)[0]
            break
    if key in ("index.docker.io", "registry-1.docker.io"):
        return "docker.io"
    return key.rstrip("/")


def _auths(data: dict, path: Path) -> dict[str, dict]:
    """An auth file's `auths` entries by normalised key (a legacy ~/.dockercfg is the map itself)."""
    auths = data.get("auths", {} if path.name != ".dockercfg" else data)
    if not isinstance(auths, dict):
        raise RegistryError(f"auth file {path}: 'auths' must be a JSON object")
    return {normalize_key(k): v for k, v in auths.items() if isinstance(v, dict)}


def _read_auth_data(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise RegistryError(f"cannot read auth file {path}: {exc.strerror}",
                            hint="fix its permissions or point --authfile / REGISTRY_AUTH_FILE elsewhere") from None
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError as exc:
        where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise RegistryError(f"auth file {path} is not valid JSON{where}",
                            hint="fix or remove the file; `podman login` writes a valid one "
                                 "(format: containers-auth.json(5))") from None
    if not isinstance(data, dict):
        raise RegistryError(f"auth file {path} must hold a JSON object with an 'auths' map")
    return data


def _helper_for(data: dict, registry: str) -> str | None:
    """The credential helper an auth file names for `registry`: `credHelpers[host]`, else `credsStore`."""
    helpers = data.get("credHelpers")
    if isinstance(helpers, dict):
        for key, helper in helpers.items():
            if normalize_key(key) == registry and isinstance(helper, str) and helper:
                return helper
    store = data.get("credsStore")
    return store if isinstance(store, str) and store else None


def credentials_from_helper(helper: str, registry: str, path: Path) -> Credentials | None:
    """Run `docker-credential-<helper> get` (the Docker credential-helper protocol: the server on
    stdin, `{"Username", "Secret"}` on stdout); None when the helper has nothing for `registry`."""
    program = shutil.which(f"docker-credential-{helper}")
    if program is None:
        raise RegistryError(f"auth file {path} names the credential helper '{helper}' for {registry}, but "
                            f"docker-credential-{helper} is not on PATH",
                            hint="install the helper, or log in with `podman login` to store credentials in the file")
    try:
        result = subprocess.run([program, "get"], input=registry, capture_output=True, text=True, timeout=60,
                                check=False)
    except subprocess.TimeoutExpired:
        raise RegistryError(f"credential helper docker-credential-{helper} did not answer within 60 s") from None
    if result.returncode != 0:
        if "credentials not found" in (result.stdout + result.stderr).lower():
            return None
        raise RegistryError(f"credential helper docker-credential-{helper} failed for {registry} "
                            f"(exit {result.returncode})", hint="run it by hand: echo HOST | "
                            f"docker-credential-{helper} get")
    try:
        answer = json.loads(result.stdout)
        username, secret = str(answer["Username"]), str(answer["Secret"])
    except (ValueError, KeyError, TypeError):
        raise RegistryError(f"credential helper docker-credential-{helper} gave an answer that is not "
                            '{"Username": …, "Secret": …}') from None
    origin = f"docker-credential-{helper} (named by {path})"
    if username == IDENTITY_TOKEN_USER:
        return Credentials(username, "", origin, identity_token=secret) if secret else None
    return Credentials(username, secret, origin)


def _decode_entry(entry: dict, key: str, path: Path) -> Credentials | None:
    """An `auths` entry: base64 `auth` or username/password; an `identitytoken` wins over a password
    (the `auth` then only names the user, often with an empty password)."""
    token = entry.get("identitytoken")
    if isinstance(token, str) and token:
        user = ""
        if isinstance(entry.get("auth"), str):
            try:
                user = base64.b64decode(entry["auth"], validate=True).decode("utf-8").partition(":")[0]
            except (binascii.Error, UnicodeDecodeError, ValueError):
                user = ""  # the token is what counts; a damaged `auth` only loses the user name
        return Credentials(user or IDENTITY_TOKEN_USER, "", str(path), identity_token=token)
    if entry.get("auth"):
        try:
            decoded = base64.b64decode(entry["auth"], validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise RegistryError(f"auth file {path}: the 'auth' value for {key} is not base64 of 'user:password'",
                                hint=f"log in again with `podman login {key}`") from None
        user, sep, password = decoded.partition(":")
        if not sep:
            raise RegistryError(f"auth file {path}: the 'auth' value for {key} has no ':' between user and password",
                                hint=f"log in again with `podman login {key}`")
        return Credentials(user, password, str(path))
    if entry.get("username") and entry.get("password"):
        return Credentials(str(entry["username"]), str(entry["password"]), str(path))
    return None


def find_credentials(registry: str, repository: str | None = None, *, authfile: str | os.PathLike[str] | None = None,
                     env: Mapping[str, str] | None = None) -> Credentials | None:
    """Credentials for `registry` (and `repository`, for namespaced entries), or None.

    An explicit `authfile` that does not exist is an error (a typo would otherwise surface later
    as a confusing 401); the default files may be absent.
    """
    if authfile and not Path(authfile).is_file():
        raise RegistryError(f"auth file {authfile} does not exist",
                            hint="check the --authfile path, or create it with `podman login --authfile FILE HOST`")
    registry = normalize_key(registry)
    keys = [registry]
    if repository:
        parts = repository.split("/")
        keys = [f"{registry}/{'/'.join(parts[:i])}" for i in range(len(parts), 0, -1)] + keys
    for path in auth_file_candidates(authfile, env):
        data = _read_auth_data(path)
        helpers = data.get("credHelpers")
        if isinstance(helpers, dict) and any(normalize_key(k) == registry for k in helpers):
            return credentials_from_helper(_helper_for(data, registry) or "", registry, path)
        auths = _auths(data, path)
        for key in keys:
            if key in auths:
                creds = _decode_entry(auths[key], key, path)
                if creds is not None:
                    return creds
        store = _helper_for(data, registry)
        if store is not None:
            creds = credentials_from_helper(store, registry, path)
            if creds is not None:
                return creds
    return None


@dataclass(frozen=True, slots=True)
class Challenge:
    """A parsed WWW-Authenticate header: scheme ('basic' or 'bearer') and its parameters."""

    scheme: str
    params: dict[str, str]


def parse_challenge(header: str) -> Challenge | None:
    """Parse `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"` (quoted commas allowed)."""
    header = header.strip()
    if not header:
        return None
    scheme, _, rest = header.partition(" ")
    params: dict[str, str] = {}
    i, n = 0, len(rest)
    while i < n:
        while i < n and rest[i] in " ,":
            i += 1
        eq = rest.find("=", i)
        if eq < 0:
            break
        name = rest[i:eq].strip().lower()
        i = eq + 1
        if i < n and rest[i] == '"':
            j, value = i + 1, []
            while j < n and rest[j] != '"':
                if rest[j] == "\\" and j + 1 < n:
                    j += 1
                value.append(rest[j])
                j += 1
            params[name] = "".join(value)
            i = j + 1
        else:
            j = rest.find(",", i)
            j = n if j < 0 else j
            params[name] = rest[i:j].strip()
            i = j
    return Challenge(scheme.lower(), params)
