"""A workload image: an ECR repository plus a build that `pulumi up` pushes and deploys by digest."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_docker_build as docker_build

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class ImageSpec:
    """Where a workload's image comes from: metadata only, infra never imports workload code."""

    name: str
    """Repository name suffix, e.g. `tracking-server`."""
    dockerfile: str
    """Dockerfile path relative to the repository root (the build context)."""
    sources: tuple[str, ...]
    """Paths whose content decides the image tag: change one byte, get a new tag."""
    build_args: Mapping[str, str] = field(default_factory=dict)
    """`--build-arg`s; part of the tag too, so two variants of one Dockerfile never share a tag."""
    stamps_source_commit: bool = False
    """The Dockerfile takes `ARG GIT_COMMIT` (lineage of what the image trains): see `source_commit`."""


def source_commit(spec: ImageSpec, root: Path = REPOSITORY_ROOT) -> str:
    """The last commit that changed the image's Dockerfile or sources, `-dirty` when the checkout
    differs from it there, `unknown` outside a git checkout.

    Not HEAD: a commit that leaves the sources alone must not rebuild the image or change its tag.
    """
    paths = [spec.dockerfile, *spec.sources]

    def git(*arguments: str) -> str | None:
        try:
            completed = subprocess.run(
                ["git", "-C", str(root), *arguments, "--", *paths], capture_output=True, text=True, timeout=30
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return completed.stdout.strip() if completed.returncode == 0 else None

    commit = git("log", "-1", "--format=%H")
    if not commit:
        return "unknown"
    return commit + ("-dirty" if git("status", "--porcelain") else "")


def build_arguments(spec: ImageSpec, root: Path = REPOSITORY_ROOT) -> dict[str, str]:
    """The image's `--build-arg`s: the spec's, plus GIT_COMMIT where the Dockerfile stamps it."""
    arguments = dict(spec.build_args)
    if spec.stamps_source_commit:
        arguments["GIT_COMMIT"] = source_commit(spec, root)
    return arguments


def content_tag(spec: ImageSpec, root: Path = REPOSITORY_ROOT) -> str:
    """A tag derived from the sources' bytes and the build arguments, so immutable tags are never reused."""
    digest = hashlib.sha256()
    paths = [root / spec.dockerfile]
    for source in spec.sources:
        base = root / source
        if base.is_file():
            paths.append(base)
        else:
            paths.extend(sorted(p for p in base.rglob("*") if p.is_file() and "__pycache__" not in p.parts))
    for path in paths:
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    arguments = build_arguments(spec, root)
    if arguments:
        digest.update(json.dumps(arguments, sort_keys=True).encode())
    return digest.hexdigest()[:20]


@dataclass(frozen=True)
class ContainerImageArgs:
    spec: ImageSpec
    repository_prefix: str
    """e.g. `mlops-dev`: the repository is `mlops-dev/tracking-server`."""
    kms_key_arn: pulumi.Input[str]


class ContainerImage(pulumi.ComponentResource):
    """Immutable, scanned ECR repository and the image built from the spec's Dockerfile."""

    repository_url: pulumi.Output[str]
    ref: pulumi.Output[str]
    """`<repository>@sha256:...`: what pods run, so a tag can never be swapped under them."""

    def __init__(self, name: str, args: ContainerImageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:images:ContainerImage", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        repository = aws.ecr.Repository(
            name,
            name=f"{args.repository_prefix}/{args.spec.name}",
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
            encryption_configurations=[
                aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="KMS", kms_key=args.kms_key_arn)
            ],
            opts=child,
        )
        aws.ecr.LifecyclePolicy(
            name,
            repository=repository.name,
            policy=pulumi.Output.json_dumps(
                {
                    "rules": [
                        {
                            "rulePriority": 1,
                            "description": "Keep the 30 newest images; older ones cannot be running.",
                            "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 30},
                            "action": {"type": "expire"},
                        }
                    ]
                }
            ),
            opts=child,
        )
        token = aws.ecr.get_authorization_token_output(
            registry_id=repository.registry_id, opts=pulumi.InvokeOutputOptions(parent=self)
        )
        image = docker_build.Image(
            name,
            # Relative to the project directory Pulumi runs in, so plans don't depend on the clone's path.
            context=docker_build.BuildContextArgs(location="."),
            dockerfile=docker_build.DockerfileArgs(location=args.spec.dockerfile),
            build_args=build_arguments(args.spec) or None,
            platforms=[docker_build.Platform.LINUX_AMD64],
            tags=[pulumi.Output.concat(repository.repository_url, ":", content_tag(args.spec))],
            push=True,
            registries=[
                docker_build.RegistryArgs(
                    address=repository.repository_url,
                    username=token.user_name,
                    password=pulumi.Output.secret(token.password),
                )
            ],
            opts=child,
        )
        self.repository_url = repository.repository_url
        self.ref = image.ref
        self.register_outputs({"repositoryUrl": self.repository_url, "ref": self.ref})
