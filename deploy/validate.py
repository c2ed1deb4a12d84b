"""Validate KubeRay manifests strictly against KubeRay's own CRD schemas, offline.

    python deploy/validate.py                         # every YAML in deploy/kuberay/
    python deploy/validate.py my-rayjob.yaml --crds ../shared/kuberay-crds

Strict like ``kubectl apply --validate=strict``: an unknown or misspelled field, a duplicated YAML key,
a wrong type or a missing required field is an error. CRD schemas rarely say
``additionalProperties: false``, so ``strict_schema`` adds it to every object schema that lists its
``properties`` (unless the schema preserves unknown fields), and translates the Kubernetes extensions
that ``jsonschema`` does not know (``x-kubernetes-int-or-string``, ``nullable``, list types).
``metadata`` is only ``type: object`` in a CRD, so ``metadata_errors`` checks it the way the API server
and the KubeRay operator do. ``operator_errors`` adds the KubeRay operator's own spec rules that a
schema cannot express (``ray-operator/controllers/ray/utils/validation.go``). CEL rules
(``x-kubernetes-validations``) are not evaluated.
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import yaml

DEPLOY_DIR = Path(__file__).resolve().parent
DEFAULT_CRD_DIR = DEPLOY_DIR.parent.parent / "shared" / "kuberay-crds"  # ../shared/kuberay-crds from the repo root
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")  # KubeRay's rule for RayCluster/RayJob names
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")  # namespaces
MAX_NAME_LENGTH = {"RayCluster": 53, "RayJob": 47}  # KubeRay's MaxRayClusterNameLength / MaxRayJobNameLength


class StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that rejects duplicated mapping keys (PyYAML silently keeps the last one)."""


def _mapping_no_duplicates(loader: StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}: a strict loader keeps neither silently", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_no_duplicates)


def load_documents(text: str) -> list[Any]:
    """Parse every YAML document in ``text`` with the strict safe loader, skipping empty ones.

    Raises:
        yaml.YAMLError: invalid YAML or a duplicated key.
    """
    return [doc for doc in yaml.load_all(text, Loader=StrictLoader) if doc is not None]


def strict_schema(schema: Any) -> Any:
    """Return a copy of a CRD's OpenAPI v3 schema that ``jsonschema`` enforces like a strict API server.

    Args:
        schema: an ``openAPIV3Schema`` (or any sub-schema of one).

    Returns:
        The transformed copy: closed objects, int-or-string as ``anyOf``, nullable types, set uniqueness.
    """
    if isinstance(schema, list):
        return [strict_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {
        key: copy.deepcopy(value) if key in ("enum", "required", "default") else strict_schema(value)
        for key, value in schema.items()
        if key != "properties"
    }
    if "properties" in schema:  # a name -> schema map, not a schema: transform each value only
        out["properties"] = {name: strict_schema(sub) for name, sub in schema["properties"].items()}
        if "additionalProperties" not in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    if schema.get("x-kubernetes-int-or-string") and "anyOf" not in schema:
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if schema.get("nullable") and isinstance(schema.get("type"), str):
        out["type"] = [schema["type"], "null"]
    if schema.get("x-kubernetes-list-type") == "set":
        out["uniqueItems"] = True
    return out


def _list_map_keys(
    validator: Any, keys: list[str], instance: Any, schema: dict
) -> Iterator[jsonschema.ValidationError]:
    """``x-kubernetes-list-type: map``: no two items may share the values of the list-map keys."""
    if schema.get("x-kubernetes-list-type") != "map" or not isinstance(instance, list):
        return
    seen: dict[tuple, int] = {}
    for index, item in enumerate(instance):
        if isinstance(item, dict):
            key = tuple(repr(item.get(k)) for k in keys)  # repr: hashable whatever the value's type
            if key in seen:
                shared = {k: item.get(k) for k in keys}
                yield jsonschema.ValidationError(f"items {seen[key]} and {index} share the list-map key {shared}")
            seen[key] = index


FORMATS = jsonschema.FormatChecker()


@FORMATS.checks("int32")
def _is_int32(value: Any) -> bool:
    return not isinstance(value, int) or -(2**31) <= value < 2**31


@FORMATS.checks("int64")
def _is_int64(value: Any) -> bool:
    return not isinstance(value, int) or -(2**63) <= value < 2**63


_FAST_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

StrictValidator = jsonschema.validators.extend(
    jsonschema.Draft7Validator, {"x-kubernetes-list-map-keys": _list_map_keys}
)


class CrdRegistry:
    """The CRDs of one folder, indexed by (group, kind); strict schemas built once per version."""

    def __init__(self, crd_dir: str | Path) -> None:
        self.crd_dir = Path(crd_dir)
        self._crds: dict[tuple[str, str], dict] = {}
        self._validators: dict[tuple[str, str, str], Any] = {}
        for path in sorted(self.crd_dir.glob("*.yaml")):
            # CRDs are large, generated and trusted: the C safe loader reads them 5x faster.
            for crd in yaml.load_all(path.read_text(encoding="utf-8"), Loader=_FAST_SAFE_LOADER):
                if isinstance(crd, dict) and crd.get("kind") == "CustomResourceDefinition":
                    self._crds[(crd["spec"]["group"], crd["spec"]["names"]["kind"])] = crd

    def validator(self, api_version: str, kind: str) -> Any:
        """The strict validator for ``apiVersion``/``kind``.

        Raises:
            KeyError: no CRD for that group/kind, or the version is unknown or not served.
        """
        group, _, version = api_version.rpartition("/")
        crd = self._crds.get((group, kind))
        if crd is None:
            raise KeyError(
                f"no CRD for kind {kind!r} in group {group!r} under {self.crd_dir} "
                f"(known: {sorted(k for _, k in self._crds)})"
            )
        versions = {v["name"]: v for v in crd["spec"]["versions"]}
        if version not in versions or not versions[version].get("served", False):
            raise KeyError(
                f"{kind} has no served version {version!r}; use one of "
                f"{[n for n, v in versions.items() if v.get('served')]}"
            )
        cache_key = (group, kind, version)
        if cache_key not in self._validators:
            schema = strict_schema(versions[version]["schema"]["openAPIV3Schema"])
            self._validators[cache_key] = StrictValidator(schema, format_checker=FORMATS)
        return self._validators[cache_key]


def _path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "<root>"


def schema_errors(doc: Any, registry: CrdRegistry) -> list[str]:
    """Every strict-schema violation of one manifest, as ``"path: message"`` strings (empty = valid)."""
    if not isinstance(doc, dict):
        return [f"<root>: a manifest must be a mapping, got {type(doc).__name__}"]
    errors = [f"{key}: missing" for key in ("apiVersion", "kind", "metadata", "spec") if key not in doc]
    if errors:
        return errors
    if "status" in doc:
        errors.append("status: written by the operator; remove it from the manifest")
    try:
        validator = registry.validator(str(doc["apiVersion"]), str(doc["kind"]))
    except KeyError as exc:
        return errors + [f"apiVersion/kind: {exc.args[0]}"]
    for error in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path))):
        errors.append(f"{_path(error)}: {error.message}")
    return errors


METADATA_SCHEMA = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string"},
        "namespace": {"type": "string", "pattern": DNS1123_LABEL.pattern, "maxLength": 63},
        "labels": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 63}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


def metadata_errors(doc: dict) -> list[str]:
    """Check ``metadata`` as the API server and KubeRay do: a DNS-1035 name short enough, string labels."""
    meta = doc.get("metadata")
    errors = [f"metadata.{_path(e)}: {e.message}" for e in StrictValidator(METADATA_SCHEMA).iter_errors(meta)]
    name = meta.get("name") if isinstance(meta, dict) else None
    if isinstance(name, str):
        if not DNS1035_LABEL.match(name):
            errors.append(f"metadata.name: {name!r} is not a DNS-1035 label (lowercase letters, digits, '-')")
        limit = MAX_NAME_LENGTH.get(str(doc.get("kind")), 63)
        if len(name) > limit:
            errors.append(f"metadata.name: {name!r} is longer than {limit} characters (KubeRay limit)")
    return errors


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def operator_errors(doc: dict) -> list[str]:
    """The KubeRay operator's spec rules that the CRD schema cannot express (the operator rejects such
    objects; ``utils/validation.go``), plus a replica-range sanity check."""
    spec = doc.get("spec") or {}
    errors: list[str] = []
    if doc.get("kind") == "RayJob":
        if not spec.get("shutdownAfterJobFinishes") and spec.get("ttlSecondsAfterFinished", 0) > 0:
            errors.append("spec.ttlSecondsAfterFinished needs shutdownAfterJobFinishes: true")
        if spec.get("suspend") and not spec.get("shutdownAfterJobFinishes"):
            errors.append("spec.suspend needs shutdownAfterJobFinishes: true")
        if "activeDeadlineSeconds" in spec and spec["activeDeadlineSeconds"] <= 0:
            errors.append("spec.activeDeadlineSeconds must be > 0")
        if spec.get("backoffLimit", 0) < 0:
            errors.append("spec.backoffLimit must be >= 0")
        if bool(spec.get("clusterSelector")) == bool(spec.get("rayClusterSpec")):
            errors.append("spec: set exactly one of rayClusterSpec and clusterSelector")
        try:
            runtime_env = yaml.safe_load(spec.get("runtimeEnvYAML") or "{}")
        except yaml.YAMLError as exc:
            runtime_env = f"invalid YAML ({exc})"
        if not isinstance(runtime_env, dict):
            errors.append(f"spec.runtimeEnvYAML must be a YAML mapping, got {runtime_env!r}")
        spec = spec.get("rayClusterSpec") or {}
    groups = [("headGroupSpec", spec.get("headGroupSpec") or {})]
    groups += [(f"workerGroupSpecs.{g.get('groupName')}", g) for g in spec.get("workerGroupSpecs") or []]
    for where, group in groups:
        params = group.get("rayStartParams") or {}
        if group.get("resources") and any(params.get(k) for k in ("num-cpus", "num-gpus", "memory", "resources")):
            errors.append(f"{where}: set resources either in rayStartParams or in resources, not both")
        if "labels" in params:
            errors.append(f"{where}.rayStartParams.labels is not supported; use {where}.labels")
        if not (group.get("template") or {}).get("spec", {}).get("containers"):
            errors.append(f"{where}.template.spec.containers: at least one container is required")
        if (
            "minReplicas" in group
            and not group["minReplicas"] <= group.get("replicas", group["minReplicas"]) <= group["maxReplicas"]
        ):
            errors.append(f"{where}: needs minReplicas <= replicas <= maxReplicas")
    if (spec.get("authOptions") or {}).get("mode") == "token" and _version_tuple(str(spec.get("rayVersion", "0"))) < (
        2,
        52,
    ):
        errors.append("authOptions.mode token needs rayVersion >= 2.52.0")
    return errors


def validate_file(path: str | Path, registry: CrdRegistry) -> list[str]:
    """All errors of every document in one manifest file, each prefixed with ``file[doc index]``."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        docs = load_documents(text)
    except yaml.YAMLError as exc:
        return [f"{path}: {exc}"]
    errors: list[str] = []
    for index, doc in enumerate(docs):
        found = schema_errors(doc, registry)
        if not found:
            found = metadata_errors(doc) + operator_errors(doc)
        errors += [f"{path}[{index}] {message}" for message in found]
    return errors


def main(argv: list[str] | None = None) -> int:
    """CLI: 0 when every manifest is valid; 1 listing every error (on stderr); 2 for a usage error
    (no CRD folder, a manifest path that does not exist, no manifests at all)."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="exit codes: 0 valid, 1 invalid manifests (each error listed), "
        "2 usage error (missing CRD folder or manifest)",
    )
    parser.add_argument("files", nargs="*", help="manifests (default: deploy/kuberay/*.yaml)")
    parser.add_argument("--crds", default=str(DEFAULT_CRD_DIR), help="folder of KubeRay CRD YAML files")
    args = parser.parse_args(argv)
    if not Path(args.crds).is_dir():
        print(f"CRD folder {args.crds} not found: pass --crds with KubeRay's config/crd/bases", file=sys.stderr)
        return 2
    files = args.files or sorted(str(p) for p in (DEPLOY_DIR / "kuberay").glob("*.yaml"))
    missing = [f for f in files if not Path(f).is_file()]
    if missing or not files:
        print(
            f"no manifest at {missing}: pass existing YAML files"
            if missing
            else f"no manifests in {DEPLOY_DIR / 'kuberay'}: pass YAML files to check",
            file=sys.stderr,
        )
        return 2
    registry = CrdRegistry(args.crds)
    errors = [e for f in files for e in validate_file(f, registry)]
    if errors:
        print("\n".join(errors), file=sys.stderr)
        print(f"{len(errors)} error(s) in {len(files)} file(s): fix each field named above", file=sys.stderr)
        return 1
    print(f"{len(files)} file(s) valid against {args.crds}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
