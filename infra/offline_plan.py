"""The offline plan: run `__main__.py` under recording mocks and list every resource it declares.

The JSON it produces is a contract other tools build on (tests, diffs, policies, rendered
manifests):

    {"stack": "dev",
     "resources": [{"type": "aws:eks/cluster:Cluster", "name": "mlops-eks",
                    "parent": "urn:pulumi:dev::mlops-platform::...", "inputs": {...}}, ...]}

Resources are sorted by (type, name); inputs use the providers' camelCase property names; every
secret value is replaced by "[secret]".
"""

from __future__ import annotations

import contextlib
import json
import os
import runpy
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.stack import run_pulumi_func, wait_for_rpcs
from pulumi.runtime.sync_await import _sync_await

from infra.config import PROJECT
from infra.kubeflow_install import DIRECTORY_TYPE, load_description, resource_name, resource_type
from infra.offline_mocks import OfflineMocks

PROJECT_ROOT = Path(__file__).resolve().parent.parent
STACKS_DIR = PROJECT_ROOT / "stacks"
SECRET = "[secret]"


class StackNotFound(Exception):
    """Raised for a stack name with no `stacks/Pulumi.<stack>.yaml`."""


def available_stacks(stacks_dir: Path | None = None) -> list[str]:
    stacks_dir = stacks_dir or STACKS_DIR
    return sorted(path.name.removeprefix("Pulumi.").removesuffix(".yaml") for path in stacks_dir.glob("Pulumi.*.yaml"))


@dataclass(frozen=True)
class StackConfig:
    values: dict[str, str]
    """`namespace:key` -> the string Pulumi would hand the program (JSON for objects and lists)."""
    secret_keys: list[str]


def load_stack_config(stack: str, stacks_dir: Path | None = None) -> StackConfig:
    stacks_dir = stacks_dir or STACKS_DIR
    path = stacks_dir / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        known = ", ".join(available_stacks(stacks_dir)) or "none"
        raise StackNotFound(f"no stack file {path.name} in {stacks_dir} (stacks: {known})")
    document = yaml.safe_load(path.read_text()) or {}
    return stack_config_from_mapping(document.get("config") or {})


def stack_config_from_mapping(config: Mapping[str, Any]) -> StackConfig:
    values: dict[str, str] = {}
    secret_keys: list[str] = []
    for key, value in config.items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            # Encrypted with the stack's secrets provider: not readable offline, and not needed.
            values[key] = SECRET
            secret_keys.append(key)
        elif isinstance(value, str):
            values[key] = value
        else:
            values[key] = json.dumps(value)
    return StackConfig(values=values, secret_keys=secret_keys)


def _plain(value: Any) -> Any:
    """Turn deserialized RPC values into JSON, with every secret masked."""
    if rpc.is_rpc_secret(value):
        return SECRET
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in sorted(value.items())}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, pulumi.Resource):
        return f"[resource {type(value).__name__}]"
    if isinstance(value, float) and value.is_integer():
        return int(value)  # the RPC layer carries every number as a double
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


class _RecordingMonitor(pulumi_mocks.MockMonitor):
    """The SDK's mock monitor, also remembering each registration's type, name, parent, inputs and
    dependencies."""

    def __init__(self, mocks: pulumi.runtime.Mocks) -> None:
        super().__init__(mocks)
        self.recorded: list[dict[str, Any]] = []

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            inputs = _plain(rpc.deserialize_properties(request.object, keep_unknowns=True))
            # Names of the resources this one waits for (its inputs' and its dependsOn, with a
            # component expanded into its children), as the engine would order them.
            dependencies = sorted({urn.rsplit("::", 1)[-1] for urn in request.dependencies})
            self.recorded.append(
                {
                    "type": request.type,
                    "name": request.name,
                    "parent": request.parent or None,
                    "inputs": inputs,
                    "dependencies": dependencies,
                }
            )
            if request.type == DIRECTORY_TYPE:
                self.recorded.extend(_directory_children(request.name, response.urn, inputs, dependencies))
        return response


def _directory_children(
    name: str, urn: str, inputs: Mapping[str, Any], dependencies: list[str]
) -> list[dict[str, Any]]:
    """The objects a `kustomize.v2.Directory` registers at `pulumi up`, from the overlay's description.

    The engine calls a component provider only once the component's dependencies exist, so each child
    waits for what the Directory waits for.
    """
    description = load_description(Path.cwd(), Path(str(inputs["directory"])))
    prefix = str(inputs.get("resourcePrefix") or name)
    return [
        {
            "type": resource_type(obj),
            "name": resource_name(prefix, obj),
            "parent": urn,
            "inputs": _plain(obj),
            "dependencies": dependencies,
        }
        for obj in description["objects"]
    ]


@contextlib.contextmanager
def _working_directory(path: Path) -> Iterator[None]:
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def render(
    stack: str,
    config: StackConfig,
    project_root: Path = PROJECT_ROOT,
    declared: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Run the program for `stack` with `config` under mocks; return the plan document.

    Raises whatever the program raises (e.g. infra.config.ConfigError) before or while declaring;
    `declared`, when given, receives every registration made up to that point.
    """
    region = config.values.get("aws:region", "us-east-1")
    monitor = _RecordingMonitor(OfflineMocks(region))
    if declared is not None:
        monitor.recorded = declared
    # Each render starts from a clean runtime, so several stacks can be rendered in one process.
    pulumi_settings.ROOT.set(None)
    # The SDK's own test decorator resets these two; they are not typed as public attributes.
    pulumi_settings.SETTINGS.rpc_manager.clear()  # pyright: ignore[reportAttributeAccessIssue]
    pulumi_settings.SETTINGS.outputs.clear()  # pyright: ignore[reportAttributeAccessIssue]
    pulumi.runtime.set_mocks(monitor.mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)
    pulumi.runtime.set_all_config(dict(config.values), config.secret_keys)

    def program() -> None:
        runpy.run_path(str(project_root / "__main__.py"), run_name="__main__")

    with _working_directory(project_root):
        _sync_await(run_pulumi_func(program))
        _sync_await(wait_for_rpcs())
        # What `pulumi.export` gives users (`pulumi stack output`), secrets masked like inputs.
        root = pulumi_settings.get_root_resource()
        exported = getattr(root, "outputs", None) or {}
        outputs = _plain(rpc.deserialize_properties(_sync_await(rpc.serialize_properties(exported, {})), True))
    resources = sorted(monitor.recorded, key=lambda resource: (resource["type"], resource["name"]))
    return {"stack": stack, "resources": resources, "outputs": outputs}


def render_stack(
    stack: str,
    overrides: Mapping[str, Any] | None = None,
    removals: tuple[str, ...] = (),
    declared: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Render a stack file from `stacks/`, optionally with `namespace:key` values replaced or removed."""
    config = load_stack_config(stack)
    values = {key: value for key, value in config.values.items() if key not in removals}
    if overrides:
        values.update(stack_config_from_mapping(overrides).values)
    return render(stack, StackConfig(values=values, secret_keys=config.secret_keys), declared=declared)


def to_json(plan: Mapping[str, Any]) -> str:
    return json.dumps(plan, indent=2, sort_keys=True) + "\n"


def summary(plan: Mapping[str, Any]) -> str:
    counts = Counter(resource["type"] for resource in plan["resources"])
    lines = [f"stack {plan['stack']}: {len(plan['resources'])} resources"]
    lines += [f"  {count:4d}  {kind}" for kind, count in sorted(counts.items())]
    return "\n".join(lines)
