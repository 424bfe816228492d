"""Image tags, the commit a training image stamps, the dockerignore and the repositories' destroy rule."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from infra.container_image import (
    ImageContextError,
    ImageSpec,
    build_arguments,
    content_tag,
    render_dockerignore,
    source_commit,
    stale_dockerignore,
)
from tests.offline_plans import STACKS, offline_plan

GIT_IDENTITY = ["-c", "user.name=mlops tests", "-c", "user.email=tests@example.invalid", "-c", "commit.gpgsign=false"]
SPEC = ImageSpec(name="training", dockerfile="Dockerfile", sources=("src",), stamps_source_commit=True)


def _commit(root: Path, message: str) -> str:
    subprocess.run(["git", "-C", str(root), "add", "--all"], check=True)
    subprocess.run(["git", "-C", str(root), *GIT_IDENTITY, "commit", "--quiet", "-m", message], check=True)
    return subprocess.run(
        ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    subprocess.run(["git", "init", "--quiet", str(tmp_path)], check=True)
    (tmp_path / "Dockerfile").write_text("FROM scratch\nARG GIT_COMMIT=unknown\n")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "train.py").write_text("print('v1')\n")
    return tmp_path


def test_the_stamped_commit_is_the_last_one_that_changed_the_sources(repository: Path) -> None:
    sources_commit = _commit(repository, "sources")
    tag = content_tag(SPEC, repository)

    (repository / "notes.md").write_text("unrelated\n")
    _commit(repository, "unrelated")  # HEAD moves; the image's sources do not
    assert source_commit(SPEC, repository) == sources_commit
    assert content_tag(SPEC, repository) == tag  # so nothing is rebuilt

    (repository / "src" / "train.py").write_text("print('v2')\n")
    assert source_commit(SPEC, repository) == f"{sources_commit}-dirty"
    changed_commit = _commit(repository, "change the sources")
    assert source_commit(SPEC, repository) == changed_commit
    assert build_arguments(SPEC, repository) == {"GIT_COMMIT": changed_commit}
    assert content_tag(SPEC, repository) != tag


def test_reverting_the_sources_still_gets_a_new_tag(repository: Path) -> None:
    """Same bytes, another stamped commit: an immutable repository must never see a tag pushed twice."""
    _commit(repository, "v1")
    first = content_tag(SPEC, repository)
    (repository / "src" / "train.py").write_text("print('v2')\n")
    _commit(repository, "v2")
    (repository / "src" / "train.py").write_text("print('v1')\n")
    _commit(repository, "back to v1")
    assert content_tag(SPEC, repository) != first


def test_outside_a_checkout_the_commit_is_unknown(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "src").mkdir()
    assert source_commit(SPEC, tmp_path) == "unknown"


def test_variants_of_one_dockerfile_never_share_a_tag(repository: Path) -> None:
    _commit(repository, "sources")
    cpu = ImageSpec(name="training", dockerfile="Dockerfile", sources=("src",))
    gpu = ImageSpec(name="training-gpu", dockerfile="Dockerfile", sources=("src",), build_args={"TORCH_INDEX_URL": ""})
    assert build_arguments(cpu, repository) == {}
    assert content_tag(cpu, repository) != content_tag(gpu, repository)


def test_a_dockerignore_that_is_not_the_specs_is_refused(repository: Path) -> None:
    """`ContainerImage` raises on a stale one: the context would not be what the tag hashes."""
    spec = ImageSpec(name="training", dockerfile="Dockerfile", sources=("src",))
    assert stale_dockerignore(spec, repository) == "Dockerfile.dockerignore is missing"
    (repository / "Dockerfile.dockerignore").write_text(render_dockerignore([spec]))
    assert stale_dockerignore(spec, repository) is None
    (repository / "Dockerfile.dockerignore").write_text(render_dockerignore([spec]) + "!notes.md\n")
    assert "is not what the ImageSpec training implies" in (stale_dockerignore(spec, repository) or "")


@pytest.mark.parametrize("source", ["src/*.py", "../src", "/src", "src/", "./src"])
def test_a_source_is_a_plain_relative_path(source: str) -> None:
    """Wildcards or dots would read differently in Docker, pathspec and git: the context would drift."""
    with pytest.raises(ImageContextError, match="plain relative path"):
        ImageSpec(name="training", dockerfile="Dockerfile", sources=(source,))


def test_a_missing_source_is_an_error_not_an_empty_context(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    with pytest.raises(ImageContextError, match="source src does not exist"):
        content_tag(SPEC, tmp_path)


@pytest.mark.parametrize("stack", STACKS)
def test_a_repository_holding_images_is_deleted_only_where_the_databases_may_be(stack: str) -> None:
    """Dev: `pulumi destroy` removes everything. Staging and prod protect their databases, so the
    registry survives a destroy: the images that trained and served its versions do too."""
    resources = offline_plan(stack)["resources"]
    protected = {r["inputs"]["deletionProtection"] for r in resources if r["type"] == "aws:rds/instance:Instance"}
    repositories = [r for r in resources if r["type"] == "aws:ecr/repository:Repository"]
    assert len(protected) == 1 and repositories
    assert {r["inputs"]["forceDelete"] for r in repositories} == {not protected.pop()}
    assert stack != "dev" or all(r["inputs"]["forceDelete"] for r in repositories)
    assert stack != "prod" or not any(r["inputs"]["forceDelete"] for r in repositories)
