"""The Pod Security Standards "restricted" profile, the checks that can be made offline on a pod spec.

    restricted_violations(pod_spec) -> ["containers[0]: allowPrivilegeEscalation must be false", ...]

Follows https://kubernetes.io/docs/concepts/security/pod-security-standards/ (baseline and
restricted, policy version "latest" as of Kubernetes 1.30): host namespaces, privileged, added
capabilities, host ports, volume types, AppArmor, SELinux, /proc mount, seccomp, sysctls,
privilege escalation, running as non-root, a non-zero UID, and dropping ALL capabilities.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

ALLOWED_VOLUME_TYPES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    }
)
ALLOWED_SELINUX_TYPES = frozenset(
    {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
)
SECCOMP_OK = frozenset({"RuntimeDefault", "Localhost"})


def pod_spec_of(manifest: Mapping[str, Any]) -> Mapping[str, Any]:
    """The pod spec of a Pod, or of a workload's pod template (Deployment, Job, ...)."""
    if manifest["kind"] == "Pod":
        return manifest["spec"]
    if manifest["kind"] == "CronJob":
        return manifest["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return manifest["spec"]["template"]["spec"]


def _containers(pod: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for field in ("initContainers", "containers", "ephemeralContainers"):
        for index, container in enumerate(pod.get(field) or []):
            yield f"{field}[{index}]", container


def _security_problems(where: str, context: Mapping[str, Any]) -> Iterator[str]:
    """Checks that apply to a pod's and to a container's securityContext alike."""
    selinux = context.get("seLinuxOptions") or {}
    if selinux.get("type", "") not in ALLOWED_SELINUX_TYPES:
        yield f"{where}: seLinuxOptions.type {selinux['type']!r} is not allowed"
    if selinux.get("user") or selinux.get("role"):
        yield f"{where}: seLinuxOptions user and role must be unset"
    if (context.get("appArmorProfile") or {}).get("type") == "Unconfined":
        yield f"{where}: appArmorProfile Unconfined is not allowed"
    seccomp = (context.get("seccompProfile") or {}).get("type")
    if seccomp is not None and seccomp not in SECCOMP_OK:
        yield f"{where}: seccompProfile {seccomp} is not allowed"
    if context.get("runAsNonRoot") is False:
        yield f"{where}: runAsNonRoot must not be false"
    if context.get("runAsUser") == 0:
        yield f"{where}: runAsUser must not be 0"


def restricted_violations(pod: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            problems.append(f"{field} must not be true")
    for volume in pod.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= ALLOWED_VOLUME_TYPES:
            problems.append(
                f"volume {volume['name']}: type {sorted(kinds - ALLOWED_VOLUME_TYPES)} is not allowed"
            )
    pod_context = pod.get("securityContext") or {}
    problems += _security_problems("pod", pod_context)
    for sysctl in pod_context.get("sysctls") or []:
        if sysctl["name"] not in SAFE_SYSCTLS:
            problems.append(f"pod: sysctl {sysctl['name']} is not allowed")
    pod_non_root = pod_context.get("runAsNonRoot") is True
    pod_seccomp = (pod_context.get("seccompProfile") or {}).get("type") in SECCOMP_OK
    for where, container in _containers(pod):
        context = container.get("securityContext") or {}
        problems += _security_problems(where, context)
        if context.get("privileged"):
            problems.append(f"{where}: privileged must not be true")
        if context.get("procMount", "Default") != "Default":
            problems.append(f"{where}: procMount must be Default")
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                problems.append(f"{where}: hostPort must not be set")
        if context.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where}: allowPrivilegeEscalation must be false")
        if not (pod_non_root or context.get("runAsNonRoot") is True):
            problems.append(f"{where}: runAsNonRoot must be true (on the pod or the container)")
        if not (pod_seccomp or (context.get("seccompProfile") or {}).get("type") in SECCOMP_OK):
            problems.append(f"{where}: seccompProfile must be RuntimeDefault or Localhost")
        capabilities = context.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            problems.append(f"{where}: capabilities must drop ALL")
        added = set(capabilities.get("add") or []) - {"NET_BIND_SERVICE"}
        if added:
            problems.append(f"{where}: capabilities {sorted(added)} may not be added")
    return problems
