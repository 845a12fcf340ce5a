"""Reading kubeconfigs as kubectl does: files and merging, contexts and namespaces, and each kind of
credential, checked on the requests they produce (httpx.MockTransport; no cluster)."""

from __future__ import annotations

import base64
import datetime
import json
import ssl
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from model_garden_operator.plugin import kubeconfig as kc
from model_garden_operator.plugin.errors import ConfigError
from model_garden_operator.plugin.kubeconfig import Connection, connect


def write(path: Path, *, clusters: Any = (), users: Any = (), contexts: Any = (), current: str = "") -> Path:
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": n, "cluster": c} for n, c in dict(clusters).items()],
        "users": [{"name": n, "user": u} for n, u in dict(users).items()],
        "contexts": [{"name": n, "context": c} for n, c in dict(contexts).items()],
    }
    if current:
        doc["current-context"] = current
    path.write_text(yaml.safe_dump(doc))
    return path


def simple(
    path: Path, user: dict[str, Any], server: str = "https://k8s.example:6443", **cluster: Any
) -> Path:
    return write(
        path,
        clusters={"c": {"server": server, **cluster}},
        users={"u": user},
        contexts={"ctx": {"cluster": "c", "user": "u"}},
        current="ctx",
    )


def sent_headers(conn: Connection, status: Callable[[int], int] = lambda n: 200) -> list[httpx.Headers]:
    """Headers of the requests one GET makes with `conn`'s auth (`status(n)` answers the n-th)."""
    seen: list[httpx.Headers] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(httpx.Headers(request.headers))  # a retry re-sends the same request object
        return httpx.Response(status(len(seen)), json={})

    with httpx.Client(transport=httpx.MockTransport(answer), auth=conn.auth, base_url=conn.server) as client:
        client.get("/api")
    return seen


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


# --- files, contexts, namespaces ------------------------------------------------------------------
def test_kubeconfig_list_merges_with_the_first_file_winning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = write(
        tmp_path / "a",
        contexts={"dev": {"cluster": "shared", "user": "alice", "namespace": "team-a"}},
        users={"alice": {"token": "from-a"}},
        current="dev",
    )
    second = write(
        tmp_path / "b",
        clusters={"shared": {"server": "https://dev.example"}},
        users={"alice": {"token": "from-b"}, "bob": {"token": "bob"}},
        contexts={"dev": {"cluster": "shared", "user": "bob"}, "prod": {"cluster": "shared", "user": "bob"}},
        current="prod",
    )
    monkeypatch.setenv("KUBECONFIG", f"{first}:{tmp_path / 'missing'}:{second}")
    conn = connect()
    assert (conn.server, conn.context, conn.namespace) == ("https://dev.example", "dev", "team-a")
    assert sent_headers(conn)[0]["Authorization"] == "Bearer from-a"
    other = connect(context="prod", namespace="ns-flag")
    assert (other.context, other.namespace, other.namespace_given) == ("prod", "ns-flag", True)
    assert sent_headers(other)[0]["Authorization"] == "Bearer bob"
    assert connect(context="prod").namespace == "default"


def test_explicit_file_default_file_and_their_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="kubeconfig /nope does not exist"):
        connect(kubeconfig="/nope")
    with pytest.raises(ConfigError, match="no kubeconfig found: set KUBECONFIG"):
        connect()
    default = tmp_path / "home" / ".kube" / "config"
    default.parent.mkdir(parents=True)
    simple(default, {"token": "t"})
    assert connect().server == "https://k8s.example:6443"
    with pytest.raises(ConfigError, match="context 'other' not found"):
        connect(context="other")
    broken = tmp_path / "broken"
    broken.write_text("clusters: [unclosed")
    with pytest.raises(ConfigError, match=f"cannot read kubeconfig {broken}"):
        connect(kubeconfig=str(broken))
    no_current = write(tmp_path / "none", contexts={"x": {"cluster": "c"}})
    with pytest.raises(ConfigError, match="no current context"):
        connect(kubeconfig=str(no_current))


# --- credentials ----------------------------------------------------------------------------------
def test_token_file_relative_to_the_kubeconfig(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "token").write_text("file-token\n")
    conn = connect(kubeconfig=str(simple(tmp_path / "config", {"tokenFile": "secrets/token"})))
    assert sent_headers(conn)[0]["Authorization"] == "Bearer file-token"


def test_basic_auth(tmp_path: Path) -> None:
    conn = connect(kubeconfig=str(simple(tmp_path / "config", {"username": "admin", "password": "pw"})))
    assert sent_headers(conn)[0]["Authorization"] == "Basic " + base64.b64encode(b"admin:pw").decode()


def _self_signed(tmp_path: Path) -> tuple[bytes, bytes]:
    crypto = pytest.importorskip("cryptography")
    del crypto
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "alice")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def test_client_certificate_and_certificate_authority(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    (tmp_path / "ca.crt").write_bytes(cert)
    user = {
        "client-certificate-data": base64.b64encode(cert).decode(),
        "client-key-data": base64.b64encode(key).decode(),
    }
    conn = connect(kubeconfig=str(simple(tmp_path / "config", user, **{"certificate-authority": "ca.crt"})))
    assert isinstance(conn.verify, ssl.SSLContext)
    assert conn.verify.verify_mode == ssl.CERT_REQUIRED
    assert conn.verify.cert_store_stats()["x509"] == 1  # the cluster's CA only, as kubectl trusts
    assert "Authorization" not in sent_headers(conn)[0]

    bad = simple(tmp_path / "bad", {"token": "t"}, **{"certificate-authority-data": "bm90IGEgY2VydA=="})
    with pytest.raises(ConfigError, match="certificate-authority is not a PEM certificate"):
        connect(kubeconfig=str(bad))


def test_insecure_skip_tls_verify(tmp_path: Path) -> None:
    conn = connect(
        kubeconfig=str(simple(tmp_path / "config", {"token": "t"}, **{"insecure-skip-tls-verify": True}))
    )
    assert isinstance(conn.verify, ssl.SSLContext) and conn.verify.verify_mode == ssl.CERT_NONE


def _exec_plugin(tmp_path: Path, expires_in: int) -> Path:
    """A credential plugin that counts its runs and hands out token-N."""
    script = tmp_path / "credential-plugin"
    expires = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=expires_in)).isoformat()
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, os, pathlib\n"
        "count = pathlib.Path(os.environ['COUNT_FILE'])\n"
        "n = int(count.read_text()) + 1 if count.exists() else 1\n"
        "count.write_text(str(n))\n"
        "info = json.loads(os.environ['KUBERNETES_EXEC_INFO'])\n"
        "pathlib.Path(os.environ['COUNT_FILE'] + '.info').write_text(json.dumps(info))\n"
        "print(json.dumps({'apiVersion': info['apiVersion'], 'kind': 'ExecCredential', 'status': "
        f"{{'token': f'token-{{n}}', 'expirationTimestamp': {expires!r}}}}}))\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def test_exec_plugin_token_is_refreshed_on_expiry_and_after_401(tmp_path: Path) -> None:
    script = _exec_plugin(tmp_path, expires_in=3600)
    count = tmp_path / "count"
    user = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": str(script),
            "args": [],
            "env": [{"name": "COUNT_FILE", "value": str(count)}],
            "provideClusterInfo": True,
        }
    }
    conn = connect(kubeconfig=str(simple(tmp_path / "config", user)))
    info = json.loads((tmp_path / "count.info").read_text())
    assert info["kind"] == "ExecCredential" and info["apiVersion"] == "client.authentication.k8s.io/v1beta1"
    assert info["spec"]["cluster"]["server"] == "https://k8s.example:6443"
    assert sent_headers(conn)[0]["Authorization"] == "Bearer token-1"  # fresh: not fetched again
    # The API server refuses the token (revoked): fetched once more and the request repeated.
    retried = sent_headers(conn, status=lambda n: 401 if n == 1 else 200)
    assert [h["Authorization"] for h in retried] == ["Bearer token-1", "Bearer token-2"]

    stale = _exec_plugin(tmp_path, expires_in=10)  # within the margin: stale at once
    user["exec"]["command"] = str(stale)
    count.unlink()
    conn = connect(kubeconfig=str(simple(tmp_path / "config", user)))
    assert sent_headers(conn)[0]["Authorization"] == "Bearer token-2"


def test_exec_plugin_missing_or_failing_is_one_line(tmp_path: Path) -> None:
    user = {
        "exec": {"command": "mg-test-no-such-plugin", "installHint": "Install it with\n gcloud components"}
    }
    with pytest.raises(ConfigError) as missing:
        connect(kubeconfig=str(simple(tmp_path / "config", user)))
    assert str(missing.value) == (
        "kubeconfig user 'u' needs the credential plugin 'mg-test-no-such-plugin', which is not installed: "
        "Install it with gcloud components"
    )
    failing = tmp_path / "failing"
    failing.write_text("#!/bin/sh\necho 'token expired, run: login' >&2\nexit 3\n")
    failing.chmod(0o755)
    with pytest.raises(ConfigError, match=r"'.*failing' failed \(exit 3\): token expired, run: login"):
        connect(kubeconfig=str(simple(tmp_path / "config2", {"exec": {"command": str(failing)}})))


def test_auth_provider_needs_the_official_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for module in ("kubernetes", "kubernetes.client", "kubernetes.config.kube_config"):
        monkeypatch.setitem(sys.modules, module, None)  # as in an install without the operator extra
    user = {"auth-provider": {"name": "oidc", "config": {"id-token": "x"}}}
    with pytest.raises(
        ConfigError, match=r"install the official client \(pip install 'model-garden\[operator\]'\)"
    ):
        connect(kubeconfig=str(simple(tmp_path / "config", user)))


def test_in_cluster_service_account(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, _ = _self_signed(tmp_path)
    account = tmp_path / "sa"
    account.mkdir()
    (account / "token").write_text("sa-token")
    (account / "namespace").write_text("models\n")
    (account / "ca.crt").write_bytes(cert)
    monkeypatch.setattr(kc, "SERVICE_ACCOUNT_DIR", account)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    conn = connect()
    assert (conn.server, conn.namespace, conn.context) == ("https://10.0.0.1:443", "models", "in-cluster")
    assert sent_headers(conn)[0]["Authorization"] == "Bearer sa-token"
    assert connect(namespace="other").namespace == "other"
