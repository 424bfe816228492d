"""The hardened pod settings every platform workload runs with (Pod Security Standard `restricted`).

One definition, used by every component that declares pods, so a workload cannot quietly run with
less: non-root, read-only root file system, no privilege escalation, no capabilities, the runtime's
seccomp profile, and a writable emptyDir only at /tmp.
"""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

# The uid the workload images create for their non-root user.
WORKLOAD_UID = 10001
PLATFORM_LABEL = "mlops.platform/part-of"
PLATFORM_LABEL_VALUE = "mlops-platform"
TMP_VOLUME = "tmp"


def namespace_labels() -> dict[str, str]:
    """Labels of a platform namespace: enforce `restricted` pods; NetworkPolicies select by the second."""
    return {
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
        PLATFORM_LABEL: PLATFORM_LABEL_VALUE,
    }


def platform_namespace(resource_name: str, namespace: str, opts: pulumi.ResourceOptions) -> k8s.core.v1.Namespace:
    """A namespace of the platform's own pods, with the labels above."""
    return k8s.core.v1.Namespace(
        resource_name, metadata=k8s.meta.v1.ObjectMetaArgs(name=namespace, labels=namespace_labels()), opts=opts
    )


def pod_security_context() -> k8s.core.v1.PodSecurityContextArgs:
    return k8s.core.v1.PodSecurityContextArgs(
        run_as_non_root=True,
        run_as_user=WORKLOAD_UID,
        run_as_group=WORKLOAD_UID,
        fs_group=WORKLOAD_UID,
        seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
    )


def container_security_context() -> k8s.core.v1.SecurityContextArgs:
    return k8s.core.v1.SecurityContextArgs(
        run_as_non_root=True,
        run_as_user=WORKLOAD_UID,
        read_only_root_filesystem=True,
        allow_privilege_escalation=False,
        privileged=False,
        capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
        seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
    )


def tmp_volume(size_limit: str = "1Gi") -> k8s.core.v1.VolumeArgs:
    return k8s.core.v1.VolumeArgs(
        name=TMP_VOLUME, empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit=size_limit)
    )


def tmp_mount() -> k8s.core.v1.VolumeMountArgs:
    return k8s.core.v1.VolumeMountArgs(name=TMP_VOLUME, mount_path="/tmp")
