"""Marshmallow schemas derived from the contracts' dataclasses (orchestrator/core/job.py), so
that the OpenAPI document describes a result by the one definition of each of its fields.

A field is documented with its type, and its description when its metadata has one (`doc`);
an optional field (`X | None`) may be null and may be left out, one marked `LEFT_OUT_WHEN_EMPTY`
may be left out, the others are required. Properties marked `derived` join the fields; fields
marked `UNDOCUMENTED` are left out. A class's `documented_as` names its schema (else its name).
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing

import marshmallow as ma
from marshmallow import fields

from orchestrator.core.types import derived

_SCALARS: dict[type, type[fields.Field]] = {
    str: fields.String, int: fields.Integer, float: fields.Float, bool: fields.Boolean, dict: fields.Dict,
}


@functools.cache
def schema_of(cls: type, **overrides: fields.Field) -> type[ma.Schema]:
    """The schema `<cls name>Schema` of a dataclass's JSON; `overrides` document fields whose
    type says too little (a dict of a known shape)."""
    hints = typing.get_type_hints(cls)
    declared = {f.name: _field(hints[f.name], f.metadata) for f in dataclasses.fields(cls)
                if f.metadata.get("documented", True)}
    for name, prop in _derived(cls):
        declared[name] = _field(typing.get_type_hints(prop.fget)["return"], {})
    name = getattr(cls, "documented_as", cls.__name__)
    return ma.Schema.from_dict({**declared, **overrides}, name=f"{name}Schema")


def _derived(cls: type) -> list[tuple[str, derived]]:
    return [(name, value) for klass in reversed(cls.__mro__) for name, value in vars(klass).items()
            if isinstance(value, derived)]


def _field(hint: typing.Any, metadata: typing.Mapping) -> fields.Field:
    options: dict = {"metadata": {"description": metadata["description"]}} if "description" in metadata else {}
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        (hint,) = (arg for arg in typing.get_args(hint) if arg is not type(None))
        return _typed(hint, allow_none=True, **options)
    return _typed(hint, required=metadata.get("required", True), **options)


def _typed(hint: typing.Any, **options) -> fields.Field:
    if typing.get_origin(hint) in (tuple, list):
        return fields.List(_typed(typing.get_args(hint)[0]), **options)
    if typing.get_origin(hint) is dict:
        key, value = typing.get_args(hint)
        return fields.Dict(keys=_typed(key), values=_typed(value), **options)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return fields.Nested(schema_of(hint), **options)
    return _SCALARS[hint](**options)
