"""Workload settings read from environment variables: the one mechanism every workload's configuration uses.

A workload declares its variables as the fields of a `WorkloadSettings` model, each made by
`variable(NAME, default, ...)`: the variable's name, its default, its range (`ge`, `gt`, `le`, ... or a
kind that carries it: `Count`, `Interval`, `Share`) and its help text (the field's docstring), in one
place. `from_environment` reads them with pydantic-settings' environment source, over `os.environ`
or a given mapping (a test's, a child process's); the `--help` text (`variables_help`) and the README
table (`variables_table`) are generated from the same fields.

On top of pydantic-settings:

* a blank value is unset and the default applies, as an empty `value:` in a manifest would suggest;
* a mistake is one line naming the variable and what was expected, raised as the workload's own error
  class (`error_class`), never pydantic's multi-line report;
* `variable(...)`'s `default_text`, `expected` and `from_file` (kept in the field's `json_schema_extra`,
  `variable_extra`) say what the type and range cannot: the default's text where it is computed
  elsewhere, what a valid value looks like, and whether the value may come from the file named by
  `<NAME>_FILE` (a mounted Secret, which then wins over `<NAME>`).

Building a model directly (`DriftSettings(seed=1)`) reads no environment at all: only `from_environment`
does, so code that passes its settings explicitly never picks up a stray variable.
"""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, ClassVar, Literal, NamedTuple, Self, TypedDict, Union, Unpack, get_args, get_origin

from pydantic import BeforeValidator, Field, StringConstraints, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails, PydanticUndefined
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

FILE_SUFFIX = "_FILE"
"""`<NAME>_FILE` names a file holding the value of `<NAME>` (fields with `variable_extra(from_file=True)`)."""

Stripped = Annotated[str, StringConstraints(strip_whitespace=True)]
"""Text whose surrounding blanks are not part of the value (names, URLs, paths)."""
Lowercase = BeforeValidator(lambda value: value.strip().lower() if isinstance(value, str) else value)
"""A choice written in any case and with blanks around it: `Annotated[Mode, Lowercase]` reads `KFP ` as `kfp`."""
Uppercase = BeforeValidator(lambda value: value.strip().upper() if isinstance(value, str) else value)
"""The same for choices spelled in capitals (`read` reads as `READ`)."""
Count = Annotated[int, Field(ge=1)]
"""How many of something (threads, rows, images, workers): at least one."""
Interval = Annotated[float, Field(gt=0)]
"""Seconds between two repetitions of something: more than none."""
Share = Annotated[float, Field(ge=0.0, le=1.0)]
"""A fraction of a whole (a distance or a margin on a 0-1 scale)."""

_TYPE_WORDS: Mapping[Any, str] = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
_BOUNDS = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
HELP_WIDTH = 110
"""Where an argparse `--help` wraps the variables (argparse keeps a raw epilog as it is)."""
REQUIRED = "required"
NONE = "none"
"""How `variables()` shows a default that must be given, or that is no value at all."""


def variable_extra(default_text: str = "", expected: str = "", from_file: bool = False) -> dict[str, Any]:
    """A field's `json_schema_extra`: what the help and the messages say beyond the type and range."""
    return {"default_text": default_text, "expected": expected, "from_file": from_file}


class Constraints(TypedDict, total=False):
    """The range or form a variable's value must have, as pydantic's `Field` takes it."""

    ge: float
    gt: float
    le: float
    lt: float
    pattern: str


def variable(
    name: str,
    default: Any = PydanticUndefined,
    *,
    examples: list[Any] | None = None,
    description: str | None = None,
    repr: bool = True,
    default_text: str = "",
    expected: str = "",
    from_file: bool = False,
    **constraints: Unpack[Constraints],
) -> Any:
    """The field read from the environment variable `name` (no `default`: required; a mutable default
    such as `{}` is fine, pydantic copies it for each instance).

    The help text is the field's docstring (`use_attribute_docstrings`), or `description` where it is
    computed; `repr=False` keeps a secret out of reprs and logs.
    """
    extra = variable_extra(default_text, expected, from_file)
    return Field(
        default,
        validation_alias=name,
        examples=examples,
        description=description,
        repr=repr,
        json_schema_extra=extra,
        **constraints,
    )


class InvalidVariableError(Exception):
    """Raised inside the source (a value that cannot be decoded, a file that cannot be read).

    Deliberately not a ValueError: pydantic-settings would wrap a ValueError into its own message,
    which names the field but not the variable.
    """


class WorkloadSettings(BaseSettings):
    """Base of every workload's settings: fields are variables, `from_environment` reads them."""

    model_config = SettingsConfigDict(
        case_sensitive=True,  # the variables are spelled exactly as documented
        frozen=True,
        populate_by_name=True,  # code builds settings by field name, the environment by variable name
        extra="ignore",  # the environment holds far more than one workload's variables
        protected_namespaces=(),  # `model_name` is a field here, not pydantic's namespace
        use_attribute_docstrings=True,  # a field's docstring is its help text
    )
    error_class: ClassVar[type[Exception]] = ValueError
    """The workload's one-line error (SettingsError, TrackingConfigError, ...)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Direct construction takes its arguments and the defaults only (see the module docstring).
        return (init_settings,)

    @classmethod
    def from_environment(cls, environment: Mapping[str, str] | None = None) -> Self:
        """The settings the variables of `environment` (default: this process's) describe."""
        environ = os.environ if environment is None else environment
        try:
            source = _EnvironmentSource(cls, environ)
            return cls.model_validate(source())
        except InvalidVariableError as error:
            raise cls.error_class(str(error)) from None
        except ValidationError as error:
            raise cls.error_class(_one_line(cls, error.errors()[0], environ)) from None

    @classmethod
    def variables(cls) -> dict[str, tuple[str, str]]:
        """Every variable (`<NAME>_FILE` ones included) → (its default as text, its meaning)."""
        return {row.name: (row.default, row.meaning) for row in _rows(cls)}

    @classmethod
    def file_variables(cls) -> tuple[str, ...]:
        """The variables whose value may come from the file `<NAME>_FILE` names (secrets)."""
        return tuple(name for name, field in _fields_by_variable(cls).items() if _extra(field).get("from_file"))

    @classmethod
    def variables_help(cls, indent: str = "", width: int | None = None) -> str:
        """One line per variable, for `--help`; wrapped to `width` with aligned continuations if given
        (a help formatter that re-flows paragraphs itself wants them unwrapped)."""
        rows = list(_rows(cls))
        column = max(len(row.name) for row in rows)
        lines = []
        for row in rows:
            details = [row.values] if row.values else []
            details.append("required" if row.default == REQUIRED else f"default: {row.default}")
            line = f"{indent}{row.name:<{column}}  {row.meaning} ({'; '.join(details)})"
            hanging = " " * (len(indent) + column + 2)
            lines.append(textwrap.fill(line, width, subsequent_indent=hanging) if width else line)
        return "\n".join(lines)

    @classmethod
    def variables_table(cls) -> str:
        """The variables as a Markdown table, for the README."""
        lines = ["| variable | default | meaning |", "|---|---|---|"]
        for row in _rows(cls):
            literal = f"`{row.default}`" if row.literal else row.default
            shown = {REQUIRED: "required", NONE: "\N{EN DASH}"}.get(row.default, literal)
            meaning = f"{row.meaning} ({row.values})" if row.values else row.meaning
            lines.append(f"| `{row.name}` | {_cell(shown)} | {_cell(meaning)} |")
        return "\n".join(lines)


class _Row(NamedTuple):
    name: str
    default: str
    meaning: str
    values: str
    """The choices or the range, where the field has them."""
    literal: bool
    """The default is the value itself (code in the README), not a description of it."""


def _rows(settings_cls: type[WorkloadSettings]) -> Iterator[_Row]:
    for name, field in _fields_by_variable(settings_cls).items():
        described = _extra(field).get("default_text")
        default = described or _default_text(field)
        literal = not described and default not in (REQUIRED, NONE)
        yield _Row(name, default, _meaning(field), _accepted(field), literal)
        if _extra(field).get("from_file"):
            yield _Row(name + FILE_SUFFIX, NONE, f"file holding {name} (a mounted Secret); wins over {name}", "", False)


class _EnvironmentSource(EnvSettingsSource):
    """pydantic-settings' environment source over any mapping, with blank values left out and
    `<NAME>_FILE` files read for the fields that allow them."""

    def __init__(self, settings_cls: type[WorkloadSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        self._workload = settings_cls
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        present = {name: value for name, value in self._environ.items() if value.strip()}
        for name, field in _fields_by_variable(self._workload).items():
            path = present.get(name + FILE_SUFFIX)
            if path and _extra(field).get("from_file"):
                present[name] = _read_file(name + FILE_SUFFIX, Path(path))
        return present

    def decode_complex_value(self, field_name: str, field: FieldInfo, value: Any) -> Any:
        try:
            return super().decode_complex_value(field_name, field, value)
        except ValueError:  # not JSON: the message names the variable like every other mistake
            name = str(field.validation_alias)
            raise InvalidVariableError(f"{name}={value!r}: expected {_expected(field)}") from None


def _read_file(variable: str, path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise InvalidVariableError(f"{variable}: cannot read {path}: {error.strerror}") from None


def _fields_by_variable(settings_cls: type[WorkloadSettings]) -> dict[str, FieldInfo]:
    fields: dict[str, FieldInfo] = {}
    for field_name, field in settings_cls.model_fields.items():
        if not isinstance(field.validation_alias, str):
            raise TypeError(f"{settings_cls.__name__}.{field_name} names no variable (validation_alias)")
        if not field.description:  # pydantic found no docstring (no source to read?): the help would be blank
            raise TypeError(f"{settings_cls.__name__}.{field_name} has no help text (a docstring or description)")
        fields[field.validation_alias] = field
    return fields


def _meaning(field: FieldInfo) -> str:
    """The help text on one line: a docstring keeps the line breaks it was wrapped at."""
    return " ".join((field.description or "").split())


def _extra(field: FieldInfo) -> dict[str, Any]:
    return field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}


def _one_line(settings_cls: type[WorkloadSettings], error: ErrorDetails, environ: Mapping[str, str]) -> str:
    """The first mistake pydantic found, as one line that names the variable."""
    if error["type"] in ("value_error", "assertion_error"):
        return str(error.get("ctx", {}).get("error", error["msg"]))  # our validators name their variables
    if not error["loc"]:
        return error["msg"]
    name = str(error["loc"][0])
    field = _fields_by_variable(settings_cls)[name]
    if error["type"] == "missing":
        return _missing(name, field)
    if _extra(field).get("from_file"):  # a secret: never echoed
        return f"{name}: expected {_expected(field)}"
    return f"{name}={environ.get(name, error['input'])!r}: expected {_expected(field)}"


def _missing(name: str, field: FieldInfo) -> str:
    who = f"{name} (or {name}{FILE_SUFFIX})" if _extra(field).get("from_file") else name
    if field.examples:
        return f"{who} is required (e.g. {' or '.join(map(str, field.examples))})"
    return f"{who} is required: {_meaning(field)}"


def _expected(field: FieldInfo) -> str:
    """What a valid value is, from the field's type and range unless the field says it."""
    if _extra(field).get("expected"):
        return str(_extra(field)["expected"])
    annotation = _plain(field.annotation)
    if get_origin(annotation) is Literal:
        return "one of " + ", ".join(str(choice) for choice in get_args(annotation))
    return _TYPE_WORDS.get(annotation, "a valid value") + _range(field.metadata)


def _accepted(field: FieldInfo) -> str:
    """What the help says a value may be: the choices or the range, where the field has them."""
    if get_origin(_plain(field.annotation)) is Literal or _range(field.metadata):
        return _expected(field)
    return ""


def _plain(annotation: Any) -> Any:
    """`int | None` → int, `Annotated[str, ...]` → str."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _plain(get_args(annotation)[0])
    if origin in (Union, UnionType):
        members = [member for member in get_args(annotation) if member is not type(None)]
        return _plain(members[0]) if len(members) == 1 else annotation
    return annotation


def _range(metadata: list[Any]) -> str:
    """` >= 1`, ` in [0.5, 1.0]`, ...: the bounds pydantic keeps as `annotated_types` constraints."""
    bounds = {kind: getattr(item, kind) for item in metadata for kind in _BOUNDS if hasattr(item, kind)}
    low = next((kind for kind in ("ge", "gt") if kind in bounds), None)
    high = next((kind for kind in ("le", "lt") if kind in bounds), None)
    if low and high:
        return f" in {'[' if low == 'ge' else '('}{bounds[low]}, {bounds[high]}{']' if high == 'le' else ')'}"
    return "".join(f" {_BOUNDS[kind]} {bounds[kind]}" for kind in (low, high) if kind)


def _default_text(field: FieldInfo) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return REQUIRED
    default = field.get_default(call_default_factory=True)
    if default is None or default == "":
        return NONE
    if isinstance(default, float):
        return f"{default:g}"
    if isinstance(default, dict):
        return json.dumps(default)
    return str(default)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


# ---------------------------------------------------------------- the tracking server's client variables


class TrackingClientVariables:
    """MLflow's own client variables: every workload that reads the registry is configured by them,
    and the infrastructure sets them (from the tracking Secret) for each one."""

    URI = "MLFLOW_TRACKING_URI"
    USERNAME = "MLFLOW_TRACKING_USERNAME"
    PASSWORD = "MLFLOW_TRACKING_PASSWORD"


class TrackingClientSettings(WorkloadSettings):
    """The MLflow client variables, documented with each workload's own: MLflow reads them itself."""

    tracking_uri: Stripped | None = variable(TrackingClientVariables.URI, None)
    """tracking server holding the registry"""
    tracking_username: Stripped | None = variable(TrackingClientVariables.USERNAME, None)
    """tracking server user (basic auth)"""
    tracking_password: str | None = variable(TrackingClientVariables.PASSWORD, None, repr=False)
    """tracking server password"""
