"""Each image's build context is exactly what it needs, and its tag changes exactly when that context does.

pulumi-docker-build rebuilds an image whenever its hashed context changes, and our ECR repositories
are immutable: a rebuild that pushes an existing tag fails. So the tag (`content_tag`) must hash
what the dockerignore admits, no less (or a rebuild reuses a tag) and no more (or unrelated edits
rebuild and roll pods). The dockerignore is read here with pathspec's gitignore patterns
(`PathSpec.from_lines("gitignore")`), which read our generated files as Docker's patternmatcher
does: `*` excludes everything (Docker's `*` matches the top-level names and excludes what is below
them, gitignore's matches a name at any depth: the same result), a later `!path` admits that path
and all below it again, and the last matching line wins. Not `pathspec.GitIgnoreSpec`: git refuses
to re-admit a file whose parent folder is excluded, Docker does not.
"""

from __future__ import annotations

import ast
import json
import os
import shlex
import shutil
import stat
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pathspec
import pytest
import yaml

from infra.container_image import REPOSITORY_ROOT, ImageSpec, content_tag, context_files, stale_dockerignore
from infra.platform import DRIFT_IMAGE, IMAGES, SERVING_IMAGE, TRAINING_IMAGE
from pipelines.contract import compiled_pipeline_path
from workloads import catalogue
from workloads.catalogue_entry import ENTRY_VARIABLE, WORKLOAD_FIELDS, entry_from_json, entry_to_json

# Optional imports an admitted module makes of a module no image holds, each on purpose.
DELIBERATELY_ABSENT = {
    ("workloads/catalogue_entry.py", "workloads.catalogue"): "the fallback where no entry is handed over (a checkout)",
    ("pipelines/training_pipeline.py", "workloads.catalogue"): "compile_all: `mlops pipeline compile`, in a checkout",
}
FIRST_PARTY = {path.parent.name for path in REPOSITORY_ROOT.glob("*/__init__.py")}


def _ids(spec: ImageSpec) -> str:
    return spec.name


def _admitted_by_dockerignore(spec: ImageSpec, root: Path) -> set[str]:
    """The files under `root` the committed dockerignore lets into the context."""
    patterns = pathspec.PathSpec.from_lines("gitignore", (root / spec.dockerignore).read_text().splitlines())
    admitted: set[str] = set()
    for folder, folders, files in os.walk(root):
        relative_folder = Path(folder).relative_to(root)
        if relative_folder == Path("."):
            # The virtual environments and .git hold most files on disk: read them off only after
            # checking the patterns exclude them (the copy-based test below writes into them too).
            hidden = [name for name in folders if name.startswith(".")]
            assert all(patterns.match_file(f"{name}/probe.py") for name in hidden)
            folders[:] = [name for name in folders if name not in hidden]
        for name in files:
            relative = (relative_folder / name).as_posix()
            if not patterns.match_file(relative):
                admitted.add(relative)
    return admitted


def _copy_sources(dockerfile: Path) -> list[list[str]]:
    """The sources of each COPY/ADD of the build context in a Dockerfile (continuation lines joined)."""
    text = dockerfile.read_text().replace("\\\n", " ")
    copies = []
    for line in text.splitlines():
        words = line.strip().split(maxsplit=1)
        if len(words) < 2 or words[0].upper() not in ("COPY", "ADD"):
            continue
        arguments = json.loads(words[1]) if words[1].lstrip().startswith("[") else shlex.split(words[1])
        if any(argument.startswith("--from") for argument in arguments):
            continue  # from another stage or image, not from the context
        paths = [argument for argument in arguments if not argument.startswith("--")]
        copies.append(paths[:-1])
    return copies


def _module_files(module: str) -> list[str]:
    """The files importing `module` executes: each package's `__init__.py` on the way, then the module."""
    parts = module.split(".")
    files = []
    for depth in range(1, len(parts) + 1):
        base = "/".join(parts[:depth])
        if (REPOSITORY_ROOT / base / "__init__.py").is_file():
            files.append(f"{base}/__init__.py")
        elif (REPOSITORY_ROOT / f"{base}.py").is_file():
            files.append(f"{base}.py")
    return files


def _is_module(name: str) -> bool:
    base = REPOSITORY_ROOT / name.replace(".", "/")
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _first_party_imports(path: Path) -> Iterator[str]:
    """Every first-party module the file imports, at the top or inside a function (lazy imports run too)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name.split(".")[0] in FIRST_PARTY)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] not in FIRST_PARTY:
                continue
            yield node.module
            for alias in node.names:  # `from workloads import features` imports a module
                if _is_module(f"{node.module}.{alias.name}"):
                    yield f"{node.module}.{alias.name}"


@pytest.mark.parametrize("spec", IMAGES, ids=_ids)
def test_each_dockerignore_is_the_one_its_spec_implies(spec: ImageSpec) -> None:
    assert stale_dockerignore(spec) is None, "run `python -m infra.container_image` and commit the result"


@pytest.mark.parametrize("spec", IMAGES, ids=_ids)
def test_the_dockerignore_admits_exactly_the_files_the_tag_hashes(spec: ImageSpec) -> None:
    hashed = set(context_files(spec))
    assert _admitted_by_dockerignore(spec, REPOSITORY_ROOT) == hashed
    assert not any("__pycache__" in name or name.endswith(".pyc") for name in hashed)


@pytest.mark.parametrize("spec", IMAGES, ids=_ids)
def test_the_context_is_what_the_dockerfile_copies_and_nothing_else(spec: ImageSpec) -> None:
    admitted = set(context_files(spec))
    copied: set[str] = set()
    for sources in _copy_sources(REPOSITORY_ROOT / spec.dockerfile):
        for source in sources:
            prefix = source.rstrip("/") + "/"
            below = {name for name in admitted if name == source or name.startswith(prefix)}
            assert below, (
                f"{spec.dockerfile} COPYs {source}, which the sources of image {spec.name} do not admit: add it "
                "to its ImageSpec (infra/platform.py, pipelines/contract.py) and run `python -m infra.container_image`"
            )
            copied |= below
    assert admitted - copied == set(), f"image {spec.name}'s context holds files its Dockerfile never copies"


@pytest.mark.parametrize("spec", IMAGES, ids=_ids)
def test_the_context_holds_every_module_its_modules_import(spec: ImageSpec) -> None:
    admitted = set(context_files(spec))
    missing = []
    for name in sorted(admitted):
        if not name.endswith(".py"):
            continue
        for module in _first_party_imports(REPOSITORY_ROOT / name):
            if (name, module) in DELIBERATELY_ABSENT:
                continue
            missing += [f"{name} imports {module} ({file})" for file in _module_files(module) if file not in admitted]
    assert missing == [], f"image {spec.name} lacks modules its code imports: {missing}"


def test_no_image_holds_the_catalogue_but_each_holds_the_model_classes_it_builds() -> None:
    for spec in IMAGES:
        assert "workloads/catalogue.py" not in context_files(spec), spec.name  # a new entry would rebuild it
    for entry in catalogue.CATALOGUE.values():
        module = entry.model_factory.partition(":")[0]
        for spec in (SERVING_IMAGE, TRAINING_IMAGE):
            assert set(_module_files(module)) <= set(context_files(spec)), (spec.name, entry.name)


# ------------------------------------------------------------------------------- on a copy of the repository


@pytest.fixture
def repository_copy(tmp_path: Path) -> Path:
    """The files the images are built from, and a few the images must ignore, outside any git checkout."""
    names = {name for spec in IMAGES for name in context_files(spec)}
    names |= {spec.dockerfile for spec in IMAGES} | {spec.dockerignore for spec in IMAGES}
    names |= {"workloads/catalogue.py", "README.md", "workloads/serving/local.py", "pipelines/compiled/digits.yaml"}
    for name in names:
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPOSITORY_ROOT / name, target)
    return tmp_path


def _tags(root: Path) -> dict[str, str]:
    return {spec.name: content_tag(spec, root) for spec in IMAGES}


def _builds_from(name: str, root: Path) -> set[str]:
    return {spec.name for spec in IMAGES if name == spec.dockerfile or name in context_files(spec, root)}


def test_files_outside_every_context_change_no_tag(repository_copy: Path) -> None:
    root = repository_copy
    before = _tags(root)
    for name in (
        ".git/objects/ab/cdef0123",
        ".venv/lib/python3.11/site-packages/anything.py",
        "tests/test_new.py",
        "notes/unrelated.md",
        "stacks/Pulumi.qa.yaml",
        "pipelines/compiled/new-model.yaml",
        "workloads/serving/__pycache__/service.cpython-311.pyc",
        "workloads/models/__pycache__/digits.cpython-311.pyc",
        "workloads/models/stray.pyc",
    ):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"anything\n")
    for name in ("workloads/catalogue.py", "README.md", "workloads/serving/local.py", "pipelines/compiled/digits.yaml"):
        with (root / name).open("a") as handle:
            handle.write("# edited\n")
    assert _tags(root) == before


@pytest.mark.parametrize(
    "name",
    [
        "workloads/__init__.py",  # in every image
        "workloads/tracking/server.py",
        "workloads/serving/service.py",
        "workloads/models/digits.py",  # serving and training
        "monitoring/job.py",
        "monitoring/Dockerfile",
        "pipelines/training_pipeline.py",  # the drift job compiles retraining runs
        "pipelines/schedule.py",  # training (both variants)
        "pyproject.toml",
    ],
)
def test_one_byte_of_a_source_changes_the_tags_of_the_images_holding_it_only(repository_copy: Path, name: str) -> None:
    root = repository_copy
    before = _tags(root)
    expected = _builds_from(name, root)
    assert expected  # not vacuous: the file is in some context
    path = root / name
    content = path.read_bytes()
    path.write_bytes(content[:-1] + bytes([content[-1] ^ 1]) if content else b"#")  # workloads/__init__.py is empty
    after = _tags(root)
    assert {image for image in before if before[image] != after[image]} == expected


def test_a_new_file_or_a_mode_change_in_a_context_changes_its_tags(repository_copy: Path) -> None:
    """pulumi-docker-build hashes names and modes too (a COPY keeps the mode): so must the tag."""
    root = repository_copy
    before = _tags(root)
    (root / "workloads" / "models" / "new_architecture.py").write_text("class New: ...\n")
    added = _tags(root)
    assert {image for image in before if before[image] != added[image]} == {
        "model-serving",
        "model-serving-gpu",
        "training",
        "training-gpu",
    }

    service = root / "workloads" / "serving" / "service.py"
    service.chmod(service.stat().st_mode | stat.S_IXUSR)
    assert {image for image in added if added[image] != _tags(root)[image]} == {"model-serving", "model-serving-gpu"}


# ------------------------------------------------------- an image's context alone: the entry is handed over


def _run_in_context(spec: ImageSpec, tmp_path: Path, code: str, environ: dict[str, str]) -> Any:
    """Run `code` (printing JSON) with only the spec's context on the path, as in the image.

    `-S`, with site-packages put on the path by hand: the checkout's editable install (a .pth import
    hook) would otherwise find `workloads.catalogue` in the checkout when the context lacks it.
    """
    context = tmp_path / spec.name
    for name in context_files(spec):
        (context / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPOSITORY_ROOT / name, context / name)
    packages = sysconfig.get_paths()["purelib"]
    completed = subprocess.run(
        [sys.executable, "-S", "-c", code],
        cwd=context,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": f"{context}{os.pathsep}{packages}", **environ},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_every_entry_survives_the_trip_through_its_environment_variable() -> None:
    for entry in catalogue.CATALOGUE.values():
        carried = entry_from_json(entry_to_json(entry))
        assert {name: getattr(carried, name) for name in WORKLOAD_FIELDS} == {
            name: getattr(entry, name) for name in WORKLOAD_FIELDS
        }


def test_the_serving_image_serves_the_entry_its_deployment_hands_it(tmp_path: Path) -> None:
    code = """
import json, workloads
from workloads.serving.settings import SettingsError, load_settings
entry = load_settings().entry
try:
    load_settings({"MLOPS_MODEL": "digits"})
    missing = "loaded"
except SettingsError as error:
    missing = str(error)
print(json.dumps([workloads.__file__, entry.name, entry.class_names, entry.image_shape, missing]))
"""
    entry = catalogue.get("surface-defects")
    where, name, classes, shape, missing = _run_in_context(
        SERVING_IMAGE, tmp_path, code, {"MLOPS_MODEL": entry.name, ENTRY_VARIABLE: entry_to_json(entry)}
    )
    assert where.startswith(str(tmp_path))  # the context's package, not the checkout's
    assert (name, tuple(classes), tuple(shape)) == (entry.name, entry.class_names, entry.image_shape)
    assert (
        missing == f"MLOPS_MODEL: unknown model 'digits': this image has no catalogue and {ENTRY_VARIABLE} is not set"
    )


def test_the_drift_image_compiles_the_committed_pipeline_from_the_entry_alone(tmp_path: Path) -> None:
    """Its retraining run is compiled in the pod: it must be the pipeline `pulumi up` uploaded."""
    code = """
import json
from monitoring.drift import class_names_for
from pipelines.training_pipeline import compiled_text
print(json.dumps([class_names_for("digits"), compiled_text("digits")]))
"""
    entry = catalogue.get("digits")
    classes, compiled = _run_in_context(DRIFT_IMAGE, tmp_path, code, {ENTRY_VARIABLE: entry_to_json(entry)})
    assert tuple(classes) == entry.class_names
    assert compiled == compiled_pipeline_path("digits").read_text(encoding="utf-8")


def test_the_training_image_builds_the_model_its_pipeline_names(tmp_path: Path) -> None:
    """The compiled pipeline hands every step that takes a model its entry; the image has the class."""
    committed = next(yaml.safe_load_all(compiled_pipeline_path("surface-defects").read_text(encoding="utf-8")))
    executors = committed["deploymentSpec"]["executors"].values()
    handed = {
        variable["value"]
        for executor in executors
        for variable in executor["container"].get("env", [])
        if variable["name"] == ENTRY_VARIABLE
    }
    assert handed == {entry_to_json(catalogue.get("surface-defects"))}
    code = """
import json
import pipelines.steps
from workloads.catalogue_entry import entry_for
network = entry_for("surface-defects").build_model()
print(json.dumps(type(network).__name__))
"""
    built = _run_in_context(TRAINING_IMAGE, tmp_path, code, {ENTRY_VARIABLE: handed.pop()})
    assert built == "SurfaceDefectClassifier"
