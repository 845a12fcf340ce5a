"""Where the cluster is and who we are: the kubeconfig, read the way kubectl reads it.

Files: `--kubeconfig`, else every file in `KUBECONFIG` (colon-separated; for each cluster, user
and context name the first file that defines it wins, as does the first `current-context`), else
`~/.kube/config`, else the pod's service account (in-cluster). The namespace is `-n`, else the
context's, else "default".

Credentials read here: a bearer token (`token`, `tokenFile`), a client certificate (file or data),
basic auth, and `exec` plugins (EKS, GKE's gke-gcloud-auth-plugin, kubelogin), whose tokens are
re-fetched when they expire or the API server answers 401. A legacy `auth-provider` goes through the
official `kubernetes` package when it is installed (`pip install model-garden[operator]`).
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import json
import os
import ssl
import subprocess
import sys
import tempfile
import threading
from collections.abc import Generator, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from model_garden_operator.plugin.errors import ConfigError

DEFAULT_NAMESPACE = "default"
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
# Re-run an exec plugin this long before its token says it expires.
EXPIRY_MARGIN = datetime.timedelta(seconds=30)


@dataclass(frozen=True)
class Named:
    """One cluster, user or context entry, with the directory of the file it came from."""

    name: str
    body: Mapping[str, Any]
    base: Path

    def path(self, key: str) -> Path | None:
        """A file named in the entry, relative to its kubeconfig file's directory."""
        value = self.body.get(key)
        if not value:
            return None
        path = Path(os.path.expanduser(str(value)))
        return path if path.is_absolute() else self.base / path


@dataclass
class KubeConfig:
    """The merged kubeconfig files."""

    files: list[Path]
    clusters: dict[str, Named] = field(default_factory=dict)
    users: dict[str, Named] = field(default_factory=dict)
    contexts: dict[str, Named] = field(default_factory=dict)
    current_context: str | None = None

    def add(self, path: Path, doc: Mapping[str, Any]) -> None:
        for key, table in (("clusters", self.clusters), ("users", self.users), ("contexts", self.contexts)):
            inner = key[:-1]  # clusters: [{name, cluster: {...}}]
            for entry in doc.get(key) or []:
                if isinstance(entry, Mapping) and entry.get("name") and entry["name"] not in table:
                    table[entry["name"]] = Named(entry["name"], entry.get(inner) or {}, path.parent)
        if not self.current_context and doc.get("current-context"):
            self.current_context = str(doc["current-context"])


def kubeconfig_paths(explicit: str | None, environ: Mapping[str, str] | None = None) -> list[Path]:
    """The files to read, in kubectl's order of precedence (only those that exist)."""
    env = os.environ if environ is None else environ
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"kubeconfig {explicit} does not exist")
        return [path]
    if env.get("KUBECONFIG"):
        found = [Path(p).expanduser() for p in env["KUBECONFIG"].split(os.pathsep) if p]
        return [p for p in found if p.is_file()]
    default = Path(env.get("HOME") or Path.home()) / ".kube" / "config"
    return [default] if default.is_file() else []


def load_kubeconfig(paths: Iterable[Path]) -> KubeConfig:
    config = KubeConfig(files=list(paths))
    for path in config.files:
        try:
            doc = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as error:
            raise ConfigError(f"cannot read kubeconfig {path}: {_first_line(error)}") from None
        if not isinstance(doc, Mapping):
            raise ConfigError(f"kubeconfig {path} is not a kubeconfig (a YAML mapping)")
        config.add(path, doc)
    return config


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


# --- credentials -----------------------------------------------------------------------------
class ExecCredential:
    """A token from an exec plugin, fetched on first use and again when it expires."""

    def __init__(self, spec: Mapping[str, Any], user: str, base: Path, cluster: Mapping[str, Any]) -> None:
        if not spec.get("command"):
            raise ConfigError(f"kubeconfig user {user!r}: exec has no command")
        self._spec, self._user, self._base, self._cluster = spec, user, base, cluster
        self._lock = threading.Lock()
        self.token: str | None = None
        self.client_certificate: str | None = None
        self.client_key: str | None = None
        self._expires: datetime.datetime | None = None

    def fresh(self) -> bool:
        if self.token is None and self.client_certificate is None:
            return False
        now = datetime.datetime.now(datetime.UTC)
        return self._expires is None or now < self._expires - EXPIRY_MARGIN

    def run(self) -> None:
        with self._lock:
            self._run()

    def _run(self) -> None:
        spec = self._spec
        info: dict[str, Any] = {
            "apiVersion": spec.get("apiVersion") or "client.authentication.k8s.io/v1",
            "kind": "ExecCredential",
            "spec": {"interactive": sys.stdin.isatty()},
        }
        if spec.get("provideClusterInfo"):
            info["spec"]["cluster"] = {k: v for k, v in self._cluster.items() if k != "extensions"}
        env = {**os.environ, "KUBERNETES_EXEC_INFO": json.dumps(info)}
        env.update({str(e["name"]): str(e.get("value", "")) for e in spec.get("env") or [] if "name" in e})
        argv = [str(spec["command"]), *map(str, spec.get("args") or [])]
        interactive = spec.get("interactiveMode") in ("Always", "IfAvailable") and sys.stdin.isatty()
        try:
            done = subprocess.run(
                argv,
                env=env,
                cwd=self._base,
                stdout=subprocess.PIPE,
                stderr=None if interactive else subprocess.PIPE,
                stdin=None if interactive else subprocess.DEVNULL,
                timeout=120,
                check=False,
            )
        except FileNotFoundError:
            hint = spec.get("installHint") or f"install {argv[0]} or fix the kubeconfig"
            raise ConfigError(
                f"kubeconfig user {self._user!r} needs the credential plugin {argv[0]!r}, which is "
                f"not installed: {' '.join(str(hint).split())}"
            ) from None
        except subprocess.TimeoutExpired:
            raise ConfigError(f"credential plugin {argv[0]!r} did not answer in 120 s") from None
        if done.returncode != 0:
            detail = (done.stderr or b"").decode(errors="replace").strip().splitlines()
            raise ConfigError(
                f"credential plugin {argv[0]!r} failed (exit {done.returncode})"
                + (f": {detail[-1]}" if detail else "")
            )
        try:
            status = json.loads(done.stdout)["status"]
        except (ValueError, KeyError, TypeError):
            raise ConfigError(f"credential plugin {argv[0]!r} printed no ExecCredential status") from None
        self.token = status.get("token")
        self.client_certificate = status.get("clientCertificateData")
        self.client_key = status.get("clientKeyData")
        expires = status.get("expirationTimestamp")
        self._expires = datetime.datetime.fromisoformat(expires.replace("Z", "+00:00")) if expires else None


class KubeAuth(httpx.Auth):
    """Static headers, or an exec plugin's token: refreshed when stale and once after a 401."""

    def __init__(self, headers: Mapping[str, str], exec_credential: ExecCredential | None = None) -> None:
        self._headers = dict(headers)
        self._exec = exec_credential

    def _apply(self, request: httpx.Request) -> None:
        request.headers.update(self._headers)
        if self._exec is not None:
            if not self._exec.fresh():
                self._exec.run()
            if self._exec.token:
                request.headers["Authorization"] = f"Bearer {self._exec.token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self._apply(request)
        response = yield request
        if response.status_code == 401 and self._exec is not None:
            self._exec.run()
            self._apply(request)
            yield request


@dataclass(frozen=True)
class Connection:
    """Everything needed to talk to one API server as one user, in one namespace."""

    server: str
    namespace: str
    auth: KubeAuth
    verify: ssl.SSLContext | bool = True
    proxy: str | None = None
    context: str | None = None
    namespace_given: bool = False

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for httpx.Client / httpx.AsyncClient."""
        kwargs: dict[str, Any] = {"base_url": self.server, "auth": self.auth, "verify": self.verify}
        if self.proxy:
            kwargs["proxy"] = self.proxy
        return kwargs

    def describe(self) -> str:
        return f"{self.server} (context {self.context!r})" if self.context else self.server


def _data_or_file(entry: Named, key: str) -> bytes | None:
    if entry.body.get(f"{key}-data"):
        try:
            return base64.b64decode(entry.body[f"{key}-data"])
        except ValueError:
            raise ConfigError(f"kubeconfig {entry.name!r}: {key}-data is not base64") from None
    path = entry.path(key)
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as error:
        raise ConfigError(f"kubeconfig {entry.name!r}: cannot read {key} {path}: {error.strerror}") from None


def _ssl_context(
    ca: bytes | None, cert: bytes | None, key: bytes | None, *, insecure: bool = False
) -> ssl.SSLContext:
    if ca is not None and not insecure:
        # Like kubectl: a cluster's own CA is the only one trusted for it.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    else:
        context = ssl.create_default_context()
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif ca is not None:
        try:
            context.load_verify_locations(cadata=ca.decode())
        except (ssl.SSLError, ValueError) as error:
            raise ConfigError(
                f"the cluster's certificate-authority is not a PEM certificate: {error}"
            ) from None
    if cert is not None and key is not None:
        # ssl loads a certificate chain from files only: write both for the moment of loading.
        with tempfile.TemporaryDirectory(prefix="kubectl-mg-") as tmp:
            cert_path, key_path = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
            for path, data in ((cert_path, cert), (key_path, key)):
                path.touch(mode=0o600)
                path.write_bytes(data)
            try:
                context.load_cert_chain(cert_path, key_path)
            except ssl.SSLError as error:
                raise ConfigError(f"the client certificate or key cannot be loaded: {error}") from None
    return context


def _auth_provider_headers(config: KubeConfig, context_name: str) -> dict[str, str]:
    """A legacy auth-provider user, through the official client (the `operator` extra)."""
    try:
        from kubernetes.client import Configuration
        from kubernetes.config.kube_config import KubeConfigLoader
    except ImportError:
        raise ConfigError(
            "this kubeconfig user has a legacy auth-provider; install the official client "
            "(pip install 'model-garden[operator]') or switch the user to an exec plugin"
        ) from None
    doc = {
        "clusters": [{"name": n.name, "cluster": dict(n.body)} for n in config.clusters.values()],
        "users": [{"name": n.name, "user": dict(n.body)} for n in config.users.values()],
        "contexts": [{"name": n.name, "context": dict(n.body)} for n in config.contexts.values()],
    }
    target = Configuration()
    try:
        KubeConfigLoader(config_dict=doc, active_context=context_name).load_and_set(target)
    except Exception as error:  # noqa: BLE001 - the official loader raises many types; one line out
        raise ConfigError(f"auth-provider login failed: {_first_line(error)}") from None
    token = target.api_key.get("authorization") or target.api_key.get("BearerToken")
    if not token:
        return {}
    return {"Authorization": token if token.lower().startswith("bearer ") else f"Bearer {token}"}


def _in_cluster(namespace: str | None) -> Connection | None:
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
    token_file = SERVICE_ACCOUNT_DIR / "token"
    if not host or not port or not token_file.is_file():
        return None
    ca_file = SERVICE_ACCOUNT_DIR / "ca.crt"
    ca = ca_file.read_bytes() if ca_file.is_file() else None
    ns_file = SERVICE_ACCOUNT_DIR / "namespace"
    own_ns = ns_file.read_text().strip() if ns_file.is_file() else DEFAULT_NAMESPACE
    server = f"https://{'[' + host + ']' if ':' in host else host}:{port}"
    auth = KubeAuth({"Authorization": f"Bearer {token_file.read_text().strip()}"})
    return Connection(server, namespace or own_ns, auth, _ssl_context(ca, None, None), None, "in-cluster")


def connect(
    *, kubeconfig: str | None = None, context: str | None = None, namespace: str | None = None
) -> Connection:
    """The Connection kubectl would use with the same flags and environment."""
    paths = kubeconfig_paths(kubeconfig)
    if not paths:
        if (found := _in_cluster(namespace)) is not None:
            return found
        raise ConfigError(
            "no kubeconfig found: set KUBECONFIG, pass --kubeconfig or create ~/.kube/config "
            "(or use --url to talk to a model's endpoint directly)"
        )
    config = load_kubeconfig(paths)
    name = context or config.current_context
    if not name:
        raise ConfigError(f"no current context in {', '.join(map(str, paths))}: pass --context")
    ctx = config.contexts.get(name)
    if ctx is None:
        raise ConfigError(f"context {name!r} not found in {', '.join(map(str, paths))}")
    cluster = config.clusters.get(str(ctx.body.get("cluster", "")))
    if cluster is None or not cluster.body.get("server"):
        raise ConfigError(f"context {name!r} names no cluster with a server")
    user = config.users.get(str(ctx.body.get("user", ""))) or Named("", {}, paths[0].parent)

    headers: dict[str, str] = {}
    exec_credential: ExecCredential | None = None
    cert, key = _data_or_file(user, "client-certificate"), _data_or_file(user, "client-key")
    if user.body.get("token"):
        headers["Authorization"] = f"Bearer {user.body['token']}"
    elif (token_file := user.path("tokenFile")) is not None:
        with contextlib.suppress(OSError):
            headers["Authorization"] = f"Bearer {token_file.read_text().strip()}"
    elif user.body.get("username"):
        pair = f"{user.body['username']}:{user.body.get('password', '')}".encode()
        headers["Authorization"] = f"Basic {base64.b64encode(pair).decode()}"
    elif user.body.get("exec"):
        exec_credential = ExecCredential(user.body["exec"], user.name, user.base, cluster.body)
        exec_credential.run()
        if exec_credential.client_certificate and exec_credential.client_key:
            cert, key = exec_credential.client_certificate.encode(), exec_credential.client_key.encode()
    elif user.body.get("auth-provider"):
        headers.update(_auth_provider_headers(config, name))

    server = str(cluster.body["server"]).rstrip("/")
    verify: ssl.SSLContext | bool = True
    if server.startswith("https://"):
        insecure = bool(cluster.body.get("insecure-skip-tls-verify"))
        ca = None if insecure else _data_or_file(cluster, "certificate-authority")
        if insecure or ca is not None or cert is not None:
            verify = _ssl_context(ca, cert, key, insecure=insecure)
    return Connection(
        server=server,
        namespace=namespace or str(ctx.body.get("namespace") or DEFAULT_NAMESPACE),
        auth=KubeAuth(headers, exec_credential),
        verify=verify,
        proxy=cluster.body.get("proxy-url"),
        context=name,
        namespace_given=namespace is not None,
    )
