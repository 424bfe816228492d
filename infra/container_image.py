"""A workload image: an ECR repository plus a build that `pulumi up` pushes and deploys by digest.

The build context is the repository root, narrowed by `<Dockerfile>.dockerignore` (BuildKit and
pulumi-docker-build both read that file, next to the Dockerfile and named after it) to exactly
`ImageSpec.sources`. One source of truth: the spec. The dockerignore is generated from it
(`python -m infra.container_image`; a test and `ContainerImage` itself refuse a stale one) and the
tag hashes exactly the files it admits. That matters because the repositories are IMMUTABLE:
pulumi-docker-build rebuilds whenever a byte, a name or a mode of its hashed context changes, and a
rebuild that pushes a tag already there fails (ImageTagAlreadyExistsException). With the tag a hash
of that same context, a rebuild always pushes a new tag, and anything outside it (.git, .venv,
tests, stacks, the catalogue) can never trigger one.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pulumi
import pulumi_aws as aws
import pulumi_docker_build as docker_build

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
GENERATED_PATTERNS = ("**/__pycache__", "**/*.pyc")
"""Bytecode Python writes next to the sources: never part of a context (the images write none either)."""
_SOURCE_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-/")


class ImageContextError(ValueError):
    """An ImageSpec's context is not what its dockerignore or its files say."""


@dataclass(frozen=True)
class ImageSpec:
    """Where a workload's image comes from: metadata only, infra never imports workload code."""

    name: str
    """Repository name suffix, e.g. `tracking-server`."""
    dockerfile: str
    """Dockerfile path relative to the repository root (the build context)."""
    sources: tuple[str, ...]
    """Files and folders (relative to the root) that are the build context, exactly what the Dockerfile
    COPYs: the dockerignore admits these and nothing else, the tag hashes them. Literal paths only (no
    wildcards), so Docker, pathspec and git read them the same way."""
    build_args: Mapping[str, str] = field(default_factory=dict)
    """`--build-arg`s; part of the tag too, so two variants of one Dockerfile never share a tag."""
    stamps_source_commit: bool = False
    """The Dockerfile takes `ARG GIT_COMMIT` (lineage of what the image trains): see `source_commit`."""

    def __post_init__(self) -> None:
        if not self.sources:
            raise ImageContextError(f"image {self.name}: no sources")
        for source in self.sources:
            # Split by hand: PurePosixPath would quietly drop a `.` part or a trailing `/`.
            if not set(source) <= _SOURCE_CHARACTERS or any(part in ("", ".", "..") for part in source.split("/")):
                raise ImageContextError(
                    f"image {self.name}: source {source!r} must be a plain relative path (no wildcards, no ./..)"
                )
        if len(set(self.sources)) != len(self.sources):
            raise ImageContextError(f"image {self.name}: a source is listed twice")

    @property
    def dockerignore(self) -> str:
        """`<Dockerfile>.dockerignore`: BuildKit prefers it to `<context>/.dockerignore`."""
        return f"{self.dockerfile}.dockerignore"


def render_dockerignore(specs: Iterable[ImageSpec]) -> str:
    """The dockerignore of the specs built from one Dockerfile: everything out, the sources back in,
    bytecode out again (the last matching line wins, in Docker as in gitignore)."""
    specs = list(specs)
    first = specs[0]
    if any(spec.dockerfile != first.dockerfile or spec.sources != first.sources for spec in specs):
        raise ImageContextError(f"images built from {first.dockerfile} must have the same sources")
    lines = [
        f"# Generated from the ImageSpec sources of {first.dockerfile} (infra/platform.py) by",
        "# `python -m infra.container_image`: edit the spec, not this file. The build context is exactly",
        "# these paths and the image tag hashes exactly the files they admit (infra/container_image.py).",
        "*",
        *(f"!{source}" for source in first.sources),
        *GENERATED_PATTERNS,
    ]
    return "\n".join(lines) + "\n"


def _generated(relative: PurePosixPath) -> bool:
    return "__pycache__" in relative.parts or relative.suffix == ".pyc"


def context_files(spec: ImageSpec, root: Path = REPOSITORY_ROOT) -> list[str]:
    """The files the build context holds (relative, `/`-separated, sorted): what the dockerignore admits.

    Like BuildKit's walk, symbolic links to folders are not followed.
    """
    found: set[str] = set()
    for source in spec.sources:
        base = root / source
        if base.is_file():
            found.add(source)
            continue
        if not base.is_dir():
            raise ImageContextError(f"image {spec.name}: source {source} does not exist under {root}")
        for folder, folders, files in os.walk(base):
            folders[:] = [name for name in folders if name != "__pycache__"]
            for name in files:
                path = Path(folder, name)
                relative = PurePosixPath(path.relative_to(root).as_posix())
                if not _generated(relative) and path.is_file():
                    found.add(str(relative))
    return sorted(found)


def source_commit(spec: ImageSpec, root: Path = REPOSITORY_ROOT) -> str:
    """The last commit that changed the image's Dockerfile or sources, `-dirty` when the checkout
    differs from it there, `unknown` outside a git checkout.

    Not HEAD: a commit that leaves the sources alone must not rebuild the image or change its tag.
    The sources are literal paths, which git reads as the dockerignore does (a folder: all below it).
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
    """A tag derived from what pulumi-docker-build hashes, so a rebuild never pushes a tag twice.

    That is the Dockerfile's bytes, and each context file's name, mode and bytes (the mode too: COPY
    keeps it, so a checkout with another umask is another image, and another tag), plus the build
    arguments (inputs of the Image resource).
    """
    digest = hashlib.sha256()
    digest.update((root / spec.dockerfile).read_bytes())
    for relative in context_files(spec, root):
        path = root / relative
        digest.update(b"\0" + relative.encode() + b"\0" + stat.filemode(os.lstat(path).st_mode).encode() + b"\0")
        content = path.read_bytes()
        digest.update(str(len(content)).encode() + b"\0" + content)
    arguments = build_arguments(spec, root)
    if arguments:
        digest.update(json.dumps(arguments, sort_keys=True).encode())
    return digest.hexdigest()[:20]


def stale_dockerignore(spec: ImageSpec, root: Path = REPOSITORY_ROOT) -> str | None:
    """Why the spec's committed dockerignore is not the one it implies, or None when it is."""
    path = root / spec.dockerignore
    if not path.is_file():
        return f"{spec.dockerignore} is missing"
    if path.read_text(encoding="utf-8") != render_dockerignore([spec]):
        return f"{spec.dockerignore} is not what the ImageSpec {spec.name} implies"
    return None


def write_dockerignores(specs: Iterable[ImageSpec], root: Path = REPOSITORY_ROOT) -> list[Path]:
    """Write each Dockerfile's dockerignore from the specs built from it; returns the paths written."""
    by_dockerfile: dict[str, list[ImageSpec]] = {}
    for spec in specs:
        by_dockerfile.setdefault(spec.dockerfile, []).append(spec)
    written = []
    for group in by_dockerfile.values():
        path = root / group[0].dockerignore
        path.write_text(render_dockerignore(group), encoding="utf-8")
        written.append(path)
    return written


@dataclass(frozen=True)
class ContainerImageArgs:
    spec: ImageSpec
    repository_prefix: str
    """e.g. `mlops-dev`: the repository is `mlops-dev/tracking-server`."""
    kms_key_arn: pulumi.Input[str]
    force_delete: bool
    """`pulumi destroy` deletes the repository even while it holds images (it is refused otherwise)."""


class ContainerImage(pulumi.ComponentResource):
    """Immutable, scanned ECR repository and the image built from the spec's Dockerfile."""

    repository_url: pulumi.Output[str]
    ref: pulumi.Output[str]
    """`<repository>@sha256:...`: what pods run, so a tag can never be swapped under them."""

    def __init__(self, name: str, args: ContainerImageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:images:ContainerImage", name, None, opts)
        stale = stale_dockerignore(args.spec)
        if stale:  # the context would not be what the tag hashes: the next `pulumi up` could push a tag twice
            raise ImageContextError(f"{stale}: run `python -m infra.container_image` and commit the result")
        child = pulumi.ResourceOptions(parent=self)
        repository = aws.ecr.Repository(
            name,
            name=f"{args.repository_prefix}/{args.spec.name}",
            image_tag_mutability="IMMUTABLE",
            force_delete=args.force_delete,
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


if __name__ == "__main__":
    # Through the imported module, so the specs and the functions come from the same module object.
    from infra import container_image
    from infra.platform import IMAGES

    for written in container_image.write_dockerignores(IMAGES):
        print(written.relative_to(container_image.REPOSITORY_ROOT))
