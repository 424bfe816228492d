"""Every library internal the platform depends on, with where and why: the one list of them.

An internal is a name its library does not promise to keep, by one of three rules (the same rules
`tests/test_library_internals.py` scans the code with):

1. a dotted part starting with `_`: `bentoml._internal...`, `mlflow.server._find_app`, a
   `RunOperations._operation_futures` read on an object;
2. anything under a namespace its library keeps for itself or for the old API (`INTERNAL_NAMESPACES`);
3. a name reached through a submodule of a package whose public API is what it exports
   (`EXPORTING_PACKAGES`): `pulumi.runtime.settings.get_monitor` is one, `pulumi.runtime.set_mocks`
   is not.

The test checks each entry against the installed library (the name resolves; its signature takes
the parameters we pass; a name we replace is still looked up where we replace it, at call time; the
installed version is inside `pin`, and `pin` is the range pyproject.toml gives), and it scans the
code: an internal used but not listed here fails it, and so does an entry whose `used_in` is not
exactly the files that use it. So the list cannot drift from the code in either direction.

The code imports the libraries directly, not through this module, on purpose: pyright then checks
each use against the installed library's own signatures (a name resolved from this list would be
`Any`), and each image's build context stays exactly the modules it runs (infra/platform.py) — this
list names BentoML, Evidently and Pulumi, which the tracking image, say, neither has nor needs.
Nothing imports it at runtime; it lives in `workloads/`, the package every other may import.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

INTERNAL_NAMESPACES = {
    "evidently.legacy": "Evidently 0.7 keeps its previous API there while users migrate; its stat-test "
    "registry and metric modules are the implementation behind the presets, not an API",
}
"""Namespace → why everything under it counts as internal (rule 2)."""
EXPORTING_PACKAGES = {
    "kfp.dsl": "kfp documents the names `kfp.dsl` exports; its submodules are the implementation",
    "pulumi.runtime": "Pulumi documents the names `pulumi.runtime` exports (mocks, config); the rest is the engine's",
}
"""Package → why a name only its submodules have counts as internal (rule 3)."""


@dataclass(frozen=True)
class LibraryInternal:
    """One internal name: what it is, in which library and range, where we use it, why, and its shape."""

    library: str
    """The distribution, as pyproject.toml names it."""
    pin: str
    """The range pyproject.toml allows (the test compares the two)."""
    module: str
    attribute: str
    """Dotted, inside `module`; a part an instance only has is reached by building the owner (`build_with`)."""
    used_in: tuple[str, ...]
    """Repository-relative files that use it: exactly those (the test scans the code)."""
    why: str
    parameters: tuple[str, ...] = ()
    """Parameter names the callable (a class: its constructor) must take: the ones we pass."""
    members: tuple[str, ...] = ()
    """Attributes the object must have (methods we call, members we read)."""
    build_with: Mapping[str, Any] | None = field(default=None, hash=False)
    """Keyword arguments that build the owning class, for attributes only an instance has."""
    instance_members: tuple[str, ...] = ()
    """Attributes an instance built with `build_with` must have."""
    typing_only: bool = False
    """Defined for type checkers only (under `if TYPE_CHECKING:`): checked in the module's source."""
    looked_up_by: str | None = None
    """For a name we replace: the module whose code must look it up by name when it runs, so that the
    replacement is what it finds."""

    @property
    def path(self) -> str:
        return f"{self.module}.{self.attribute}"


# One constructor per library, its pin filled in; each entry then reads (module, attribute, used_in, why, ...).
_bentoml = functools.partial(LibraryInternal, "bentoml", ">=1.4.36,<1.5")
_evidently = functools.partial(LibraryInternal, "evidently", ">=0.7.23,<0.8")
_kfp = functools.partial(LibraryInternal, "kfp", ">=2.17.3,<2.18")
_mlflow = functools.partial(LibraryInternal, "mlflow", ">=3.10,<4")
_pulumi = functools.partial(LibraryInternal, "pulumi", ">=3.200,<4")

_DISPATCHER = "bentoml._internal.marshal.dispatcher"
_TRAFFIC = "bentoml._internal.server.http.traffic"
_SERVICE = "workloads/serving/service.py"
_REQUEST_TIMEOUT = "workloads/serving/request_timeout.py"
_DRIFT = "monitoring/drift.py"
_STATTESTS = "evidently.legacy.calculations.stattests.registry"
_KFP_TYPES = "pipelines/kfp_types.py"
_RUN_OPERATIONS = "mlflow.utils.async_logging.run_operations"  # documented, all but this attribute
_SETTINGS = "pulumi.runtime.settings"
_OFFLINE_PLAN = "infra/offline_plan.py"
_CONFIG = "infra/config.py"

INTERNALS: tuple[LibraryInternal, ...] = (
    # ---------------------------------------------------------------- BentoML: the serving image
    _bentoml(
        _DISPATCHER,
        "CorkDispatcher",
        (_SERVICE,),
        "BentoML's adaptive batching, used in-process: BentoML 1.4 reaches it only through an HTTP hop "
        "(`_batching_dispatcher`'s docstring says why neither hop will do)",
        parameters=("max_latency_in_ms", "max_batch_size", "fallback", "get_batch_size", "batch_dim", "shared_sema"),
        members=("shutdown",),
    ),
    _bentoml(
        _DISPATCHER,
        "NonBlockSema",
        (_SERVICE,),
        "lets MLOPS_CONCURRENT_BATCHES batches into the model at once (the dispatcher's default is one)",
        parameters=("count",),
    ),
    _bentoml(
        "bentoml._internal.external_typing.starlette",
        "AsgiMiddleware",
        (_SERVICE,),
        "the type of the middleware the service adds, in a `TYPE_CHECKING` import",
        typing_only=True,
    ),
    _bentoml(
        _TRAFFIC,
        "TimeoutMiddleware",
        (_REQUEST_TIMEOUT,),
        "replaced by a subclass that cancels its per-request timer: upstream keeps each answered "
        "request's context alive for the whole timeout (request_timeout.py)",
        parameters=("app", "timeout"),
        build_with={"app": None, "timeout": 1.0},
        instance_members=("app", "timeout"),
        looked_up_by="bentoml._internal.server.base_app",
    ),
    _bentoml(
        _TRAFFIC,
        "TimeoutMiddleware._set_timer_out",
        (_REQUEST_TIMEOUT,),
        "the subclass arms its timer with upstream's own callback, so a timeout answers as upstream does",
        parameters=("waiter",),
    ),
    # ---------------------------------------------------------------- MLflow: tracking server, training, drift
    _mlflow(
        "mlflow.server",
        "_find_app",
        ("workloads/tracking/mlflow_entrypoint.py",),
        "replaced so that `--app-name basic-auth` starts the workers with the platform's app "
        "(the database credentials hook in every worker); an entry point would need the repository installed",
        parameters=("app_name",),
        looked_up_by="mlflow.server",
    ),
    _mlflow(
        _RUN_OPERATIONS,
        "RunOperations._operation_futures",
        ("workloads/tracking/instrument.py",),
        "read to drop finished batches and collect failures without blocking (`wait()` blocks on all)",
        build_with={"operation_futures": []},
    ),
    # ---------------------------------------------------------------- Evidently: the drift image
    _evidently(
        "evidently.legacy.metrics.data_drift.embeddings_drift",
        "TSNE",
        (_DRIFT,),
        "replaced by a PCA layout during the report: the embedding plot's t-SNE took ~70 s of the job "
        "for a picture; the drift score does not use it",
        members=("fit_transform",),
        looked_up_by="evidently.legacy.metrics.data_drift.embeddings_drift",
    ),
    _evidently(
        _STATTESTS,
        "StatTest",
        (_DRIFT,),
        "describes the two-sample class-mix test so Evidently's report runs it (and shows its p-value)",
        parameters=("name", "display_name", "allowed_feature_types"),
    ),
    _evidently(
        _STATTESTS,
        "register_stattest",
        (_DRIFT,),
        "registers that test with its implementation",
        parameters=("stat_test", "default_impl"),
    ),
    _evidently(
        "evidently.legacy.core",
        "ColumnType.Categorical",
        (_DRIFT,),
        "the feature type the class-mix test applies to",
    ),
    # ---------------------------------------------------------------- kfp: typed decorators, the pipeline
    _kfp(
        "kfp.dsl.base_component",
        "BaseComponent",
        (_KFP_TYPES,),
        "the type every component is; `kfp.dsl` does not export it",
    ),
    _kfp(
        "kfp.dsl.graph_component",
        "GraphComponent",
        (_KFP_TYPES,),
        "what `@dsl.pipeline` returns, which kfp leaves unannotated (kfp_types.py types the decorator)",
    ),
    _kfp(
        "kfp.dsl.python_component",
        "PythonComponent",
        (_KFP_TYPES,),
        "what `@dsl.component` returns, which kfp leaves unannotated (kfp_types.py types the decorator)",
    ),
    _kfp(
        "kfp.dsl.pipeline_channel",
        "PipelineParameterChannel",
        ("pipelines/training_pipeline.py",),
        "the type of a task's output inside the pipeline function, cast for `dsl.OneOf`'s annotation",
    ),
    # ---------------------------------------------------------------- Pulumi: the offline plan, mocks
    _pulumi(
        "pulumi.runtime.sync_await",
        "_sync_await",
        (_OFFLINE_PLAN,),
        "runs the program and waits for its registrations in this process, as the SDK's test helper does",
        parameters=("awaitable",),
    ),
    _pulumi(
        "pulumi.runtime.stack",
        "run_pulumi_func",
        (_OFFLINE_PLAN,),
        "runs `__main__.py` as the engine would, inside the root stack resource",
        parameters=("func",),
    ),
    _pulumi(
        "pulumi.runtime.stack",
        "wait_for_rpcs",
        (_OFFLINE_PLAN,),
        "waits until every registration reached the recording monitor",
    ),
    _pulumi(
        _SETTINGS,
        "ROOT",
        (_OFFLINE_PLAN,),
        "cleared so that several stacks render in one process",
        members=("set", "get"),
    ),
    _pulumi(
        _SETTINGS,
        "SETTINGS.rpc_manager",
        (_OFFLINE_PLAN,),
        "cleared between renders, as the SDK's own test decorator does",
        members=("clear",),
    ),
    _pulumi(
        _SETTINGS,
        "SETTINGS.outputs",
        (_OFFLINE_PLAN,),
        "cleared between renders, as the SDK's own test decorator does",
        members=("clear",),
    ),
    _pulumi(
        _SETTINGS,
        "get_monitor",
        (_CONFIG,),
        "tells the offline plan (a mock monitor) from a real preview/up, which refuses placeholders",
    ),
    _pulumi(
        "pulumi.runtime.rpc",
        "deserialize_properties",
        (_OFFLINE_PLAN,),
        "reads each registration's inputs (and the stack outputs) back into plain values for the plan",
        parameters=("props_struct", "keep_unknowns"),
    ),
    _pulumi(
        "pulumi.runtime.rpc",
        "is_rpc_secret",
        (_OFFLINE_PLAN,),
        "finds the secrets among those values, so the plan shows `[secret]` instead",
        parameters=("value",),
    ),
    _pulumi(
        "pulumi.runtime.rpc",
        "serialize_properties",
        (_OFFLINE_PLAN,),
        "serialises the stack outputs as the engine receives them, secrets marked",
        parameters=("inputs", "property_deps"),
    ),
    _pulumi(
        "pulumi.runtime.mocks",
        "MockMonitor",
        (_CONFIG, _OFFLINE_PLAN),
        "the plan's recording monitor subclasses it; the config tells mocks from the engine by it",
        parameters=("mocks",),
        members=("RegisterResource",),
    ),
    _pulumi(
        "pulumi.runtime.config",
        "CONFIG",
        (_CONFIG,),
        "the stack's whole configuration at once, to validate it in one model (`pulumi.Config` reads one key)",
        members=("get",),
    ),
)
