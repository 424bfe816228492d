"""kfp's component and pipeline decorators, with the types they really return.

kfp 2.17 leaves `dsl.component` and `dsl.pipeline` unannotated, so a type checker sees a decorated
function as the plain function: calling a component without its `Output[...]` parameters looks like
a missing argument, and `.outputs` / `.component_spec` look unknown. These wrappers only add the
return types (`PythonComponent`, `GraphComponent`); what runs and what compiles is unchanged, since
kfp strips every decorator line from the source it ships into a step
(`component_factory._get_function_source_definition`).
"""

from collections.abc import Callable
from typing import Any, cast

from kfp import dsl
from kfp.dsl.base_component import BaseComponent
from kfp.dsl.graph_component import GraphComponent
from kfp.dsl.python_component import PythonComponent


def component(**options: Any) -> Callable[[Callable[..., Any]], PythonComponent]:
    """`@dsl.component(**options)`: a lightweight component (a PythonComponent)."""
    return cast(Callable[[Callable[..., Any]], PythonComponent], dsl.component(**options))


def pipeline(**options: Any) -> Callable[[Callable[..., Any]], GraphComponent]:
    """`@dsl.pipeline(**options)`: a pipeline (a GraphComponent, what the compiler takes)."""
    return cast(Callable[[Callable[..., Any]], GraphComponent], dsl.pipeline(**options))


__all__ = ["BaseComponent", "GraphComponent", "PythonComponent", "component", "pipeline"]
