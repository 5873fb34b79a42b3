"""A Kubernetes object checked against a schema without a cluster: custom resources' fields described here
(`Obj`, `MapOf`, `ListOf`, Python types), and every Kubernetes object inside them field by field against the
Kubernetes client's own models, then deserialized by the client (which enforces required fields).

Used by `ray_manifests` for KubeRay's RayCluster and RayJob: no CRD schema of KubeRay ships in a Python
package, so its fields are listed there and only the walk over them is generic.
"""

from __future__ import annotations

import json
import re
from typing import Any, NamedTuple


class Obj(NamedTuple):
    """A KubeRay object: its known fields (name → schema) and the required ones."""
    fields: dict[str, Any]
    required: tuple[str, ...] = ()


class MapOf(NamedTuple):
    value: Any


class ListOf(NamedTuple):
    item: Any


_LIST = re.compile(r"^list\[(.+)\]$")
_DICT = re.compile(r"^dict[\[(]str, (.+)[\])]$")
# Kubernetes primitive names in the client's openapi_types; quantities are int-or-string in JSON
_PRIMITIVES: dict[str, tuple[type, ...]] = {"str": (str,), "int": (int,), "bool": (bool,),
                                            "float": (int, float), "datetime": (str,), "date": (str,)}
_QUANTITIES = {("V1ResourceRequirements", "limits"), ("V1ResourceRequirements", "requests"),
               ("V1EmptyDirVolumeSource", "sizeLimit")}


def type_name(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    return names.get(type(value), type(value).__name__)


def is_a(value: Any, types: tuple[type, ...]) -> bool:
    return isinstance(value, types) and not (isinstance(value, bool) and bool not in types)


def parse_quantity(value: Any):
    from kubernetes.utils import parse_quantity

    return parse_quantity(value)


def _model_problems(value: Any, type_name: str, where: str, out: list[str], quantity: bool = False) -> None:
    """`value` against the Kubernetes client model `type_name`, recursively: unknown fields, wrong types."""
    import kubernetes.client.models as models

    if value is None:  # an explicit null is an absent optional field to the API server
        return
    if m := _LIST.match(type_name):
        if not isinstance(value, list):
            out.append(f"{where}: expected a list, got {type_name(value)}")
            return
        for i, item in enumerate(value):
            _model_problems(item, m[1], f"{where}[{i}]", out, quantity)
        return
    if m := _DICT.match(type_name):
        if not isinstance(value, dict):
            out.append(f"{where}: expected an object, got {type_name(value)}")
            return
        for key, item in value.items():
            _model_problems(item, m[1], f"{where}.{key}", out, quantity)
        return
    if quantity:
        if not is_a(value, (str, int, float)):
            out.append(f"{where}: expected a quantity, got {type_name(value)}")
            return
        try:
            parse_quantity(value)
        except ValueError:
            out.append(f"{where}: {value!r} is not a Kubernetes quantity (e.g. 500m, 8, 32Gi)")
        return
    if type_name == "object":  # int-or-string and free-form fields
        return
    if type_name in _PRIMITIVES:
        if not is_a(value, _PRIMITIVES[type_name]):
            out.append(f"{where}: expected {type_name}, got {type_name(value)} {value!r}")
        return
    klass = getattr(models, type_name, None)
    if klass is None:
        out.append(f"{where}: the Kubernetes client has no model {type_name}")
        return
    if not isinstance(value, dict):
        out.append(f"{where}: expected a {type_name} object, got {type_name(value)}")
        return
    attributes = {json_key: attr for attr, json_key in klass.attribute_map.items()}
    for key, item in value.items():
        if key not in attributes:
            out.append(f"{where}.{key}: not a field of {type_name} (misspelt?)")
            continue
        _model_problems(item, klass.openapi_types[attributes[key]], f"{where}.{key}", out,
                        (type_name, key) in _QUANTITIES)


class Body:
    """What ApiClient.deserialize reads: a response whose `data` is the JSON text."""

    def __init__(self, value: Any):
        self.data = json.dumps(value)


def _deserialize(value: Any, type_name: str, where: str, out: list[str]):
    """`value` as the client's model object (its setters reject missing required fields), or None."""
    from kubernetes.client import ApiClient

    try:
        return ApiClient().deserialize(Body(value), type_name)
    except (ValueError, TypeError, AttributeError) as err:
        out.append(f"{where}: does not deserialize into {type_name}: {' '.join(str(err).split())}")
        return None


def schema_problems(value: Any, schema: Any, where: str, out: list[str], family: str) -> None:
    """`value` against a schema (Obj, MapOf, ListOf, a Python type or a Kubernetes client model name); an
    unknown field of an Obj is reported as not a field of `family` (e.g. "KubeRay ray.io/v1")."""
    if isinstance(schema, str):
        before = len(out)
        _model_problems(value, schema, where, out)
        if len(out) == before and value is not None and not _LIST.match(schema):
            _deserialize(value, schema, where, out)
    elif isinstance(schema, Obj):
        if not isinstance(value, dict):
            out.append(f"{where}: expected an object, got {type_name(value)}")
            return
        out.extend(f"{where}.{key}: required field missing" for key in schema.required if key not in value)
        for key, item in value.items():
            if key not in schema.fields:
                out.append(f"{where}.{key}: not a {family} field (misspelt?)")
            else:
                schema_problems(item, schema.fields[key], f"{where}.{key}", out, family)
    elif isinstance(schema, MapOf):
        if not isinstance(value, dict):
            out.append(f"{where}: expected an object, got {type_name(value)}")
            return
        for key, item in value.items():
            schema_problems(item, schema.value, f"{where}.{key}", out, family)
    elif isinstance(schema, ListOf):
        if not isinstance(value, list):
            out.append(f"{where}: expected a list, got {type_name(value)}")
            return
        for i, item in enumerate(value):
            schema_problems(item, schema.item, f"{where}[{i}]", out, family)
    elif not is_a(value, (int, float) if schema is float else (schema,)):
        expected = {str: "a string", int: "an integer", bool: "a boolean", float: "a number"}[schema]
        out.append(f"{where}: expected {expected}, got {type_name(value)} {value!r}")
