"""deploy/: KubeRay manifests validated strictly against KubeRay's CRD schemas, and what they promise.

Strictness comes from deploy/validate.py (unknown fields, duplicated keys, wrong types are errors, as
with ``kubectl apply --validate=strict``). The CRDs (KubeRay feeaf72) are read from
``../shared/kuberay-crds`` relative to the repo root; the schema tests skip when that folder is absent, and fail
under CI.
The other tests check the manifests' promises: entrypoints naming existing jobs and expanding in the
submitter's shell, GPU workers, one pinned Ray version and image, non-root containers, /dev/shm for
the object store, object storage with credentials from Secrets, a reason beside every non-obvious value; and the
Dockerfile, the AWS cluster launcher YAML and the submit script.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import importlib.util
import json
import os
import re
import subprocess
import tomllib
from pathlib import Path

import jsonschema
import pytest
import yaml
from packaging.specifiers import SpecifierSet

from tests.job_module import run_scripts

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
KUBERAY = DEPLOY / "kuberay"
CRD_DIR = REPO / ".." / "shared" / "kuberay-crds"
JOBS = ("train", "sample", "evaluate", "train_classifier", "pipeline")
MANIFESTS = sorted(p.name for p in KUBERAY.glob("*.yaml"))
RAY_VERSION = importlib.metadata.version("ray")


def _load_validator_module():
    spec = importlib.util.spec_from_file_location("deploy_validate", DEPLOY / "validate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


V = _load_validator_module()


@functools.cache
def _docs(name: str) -> tuple:
    return tuple(V.load_documents((KUBERAY / name).read_text(encoding="utf-8")))


def docs(name: str) -> list[dict]:
    """The manifest's documents as fresh, unaliased copies (YAML anchors share objects)."""
    return json.loads(json.dumps(list(_docs(name))))


def rayjob(job: str) -> dict:
    (doc,) = docs(f"rayjob-{job}.yaml")
    return doc


def cluster_spec(doc: dict) -> dict:
    return doc["spec"] if doc["kind"] == "RayCluster" else doc["spec"]["rayClusterSpec"]


def ray_groups(doc: dict) -> list[tuple[str, dict]]:
    spec = cluster_spec(doc)
    return [("head", spec["headGroupSpec"])] + [(g["groupName"], g) for g in spec.get("workerGroupSpecs", [])]


def pod_specs(doc: dict) -> list[tuple[str, dict]]:
    pods = [(name, group["template"]["spec"]) for name, group in ray_groups(doc)]
    if doc["kind"] == "RayJob" and "submitterPodTemplate" in doc["spec"]:
        pods.append(("submitter", doc["spec"]["submitterPodTemplate"]["spec"]))
    return pods


def submitter_env(doc: dict) -> dict[str, str]:
    container = doc["spec"]["submitterPodTemplate"]["spec"]["containers"][0]
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


UNQUOTED_WORD = re.compile(r"^[A-Za-z0-9_./:=,+@%-]+$")  # what an entrypoint word may hold besides ${VARS}
SHELL_VAR = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}|\$[A-Za-z_][A-Za-z0-9_]*")


def expanded_entrypoint(doc: dict) -> list[str]:
    """The argv KubeRay's submitter runs: its `bash -c` expands ${VARS} from the submitter's env."""
    entrypoint = doc["spec"]["entrypoint"].strip()
    unsafe = [w for w in SHELL_VAR.sub("", entrypoint).split() if not UNQUOTED_WORD.match(w)]
    assert not unsafe, f"entrypoint words {unsafe} hold shell syntax; it runs in the submitter's bash"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **submitter_env(doc)}
    proc = subprocess.run(["bash", "-uc", f"printf '%s\\0' {entrypoint}"], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"entrypoint does not expand with the submitter's env: {proc.stderr.strip()}"
    argv = proc.stdout.split("\0")[:-1]
    assert len(argv) == len(entrypoint.split()), f"an env value split or globbed into extra words: {argv}"
    return argv


def overrides(argv: list[str]) -> dict[str, str]:
    return {argv[i + 1].split("=", 1)[0]: argv[i + 1].split("=", 1)[1] for i, a in enumerate(argv) if a == "--set"}


def quantity(value: object) -> float:
    number, suffix = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(value)).groups()
    scale = {"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
    return float(number) * scale[suffix]


@pytest.fixture(scope="module")
def registry():
    if not CRD_DIR.is_dir():
        if os.environ.get("CI") == "true":  # CI always lays shared/ beside the clone: absence is a failure
            pytest.fail(f"KubeRay CRDs not found at {CRD_DIR} (../shared/kuberay-crds) under CI=true")
        pytest.skip(
            f"KubeRay CRDs not found at {CRD_DIR} (../shared/kuberay-crds from the repo root): "
            "strict schema validation needs ray.io_rayjobs.yaml and ray.io_rayclusters.yaml there"
        )
    return V.CrdRegistry(CRD_DIR)


# --- strict schema validation -------------------------------------------------------------------


def test_deploy_has_a_raycluster_and_one_rayjob_per_job():
    expected = {"raycluster.yaml": "RayCluster", **{f"rayjob-{job}.yaml": "RayJob" for job in JOBS}}
    assert set(expected) <= set(MANIFESTS), f"missing: {sorted(set(expected) - set(MANIFESTS))}"
    assert {name: [d["kind"] for d in docs(name)] for name in expected} == {n: [k] for n, k in expected.items()}
    assert [rayjob(job)["metadata"]["name"] for job in JOBS] == ["synthgen-" + job.replace("_", "-") for job in JOBS]


@pytest.mark.parametrize("name", MANIFESTS)
def test_manifest_is_valid_against_its_crd_schema(name, registry):
    errors = [e for doc in docs(name) for e in V.schema_errors(doc, registry)]
    assert not errors, f"{name}:\n" + "\n".join(errors)


@pytest.mark.parametrize("name", MANIFESTS)
def test_manifest_metadata_and_operator_rules_hold(name):
    errors = [e for doc in docs(name) for e in V.metadata_errors(doc) + V.operator_errors(doc)]
    assert not errors, f"{name}:\n" + "\n".join(errors)


def _head_container(d):
    return cluster_spec(d)["headGroupSpec"]["template"]["spec"]["containers"][0]


def _worker(d):
    return cluster_spec(d)["workerGroupSpecs"][0]


MUTATIONS = {  # id: (change to a valid RayJob, text the error must contain)
    "misspelled spec.entrypint": (
        lambda d: d["spec"].__setitem__("entrypint", d["spec"].pop("entrypoint")),
        "'entrypint' was unexpected",
    ),
    "misspelled pod field": (
        lambda d: _head_container(d)["securityContext"].__setitem__("runAsNonRot", True),
        "'runAsNonRot' was unexpected",
    ),
    "unknown top-level field": (lambda d: d.__setitem__("specs", {}), "'specs' was unexpected"),
    "string for an integer": (lambda d: _worker(d).__setitem__("replicas", "2"), "'2' is not of type 'integer'"),
    "missing required field": (lambda d: _worker(d).pop("groupName"), "'groupName' is a required property"),
    "value outside an enum": (
        lambda d: cluster_spec(d)["authOptions"].__setitem__("mode", "password"),
        "'password' is not one of",
    ),
    "malformed quantity": (
        lambda d: _head_container(d)["resources"]["limits"].__setitem__("cpu", "2 cores"),
        "does not match",
    ),
    "duplicate list-map key": (
        lambda d: _head_container(d)["ports"].append(dict(_head_container(d)["ports"][0])),
        "share the list-map key",
    ),
    "unserved apiVersion": (lambda d: d.__setitem__("apiVersion", "ray.io/v2"), "no served version"),
    "status in a manifest": (lambda d: d.__setitem__("status", {}), "written by the operator"),
}


@pytest.mark.parametrize("mutation", MUTATIONS)
def test_strict_validator_rejects_what_kubectl_strict_rejects(mutation, registry):
    doc = rayjob("train")
    assert V.schema_errors(doc, registry) == []
    change, expected = MUTATIONS[mutation]
    change(doc)
    errors = V.schema_errors(doc, registry)
    assert any(expected in e for e in errors), errors


@pytest.mark.parametrize("cpu, valid", [(2, True), ("2", True), ("500m", True), ([2], False), (True, False)])
def test_int_or_string_quantities_accept_integers_and_strings_only(cpu, valid, registry):
    doc = rayjob("train")
    _head_container(doc)["resources"]["requests"]["cpu"] = cpu
    assert (V.schema_errors(doc, registry) == []) is valid


def test_duplicate_yaml_keys_are_rejected():
    with pytest.raises(yaml.YAMLError, match="duplicate key 'entrypoint'"):
        V.load_documents("spec:\n  entrypoint: a\n  entrypoint: b\n")


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"name": "synthgen_train"}, "not a DNS-1035 label"),
        ({"name": "synthgen-" + "x" * 40}, "longer than 47"),
        ({"labels": {"replicas": 2}}, "2 is not of type 'string'"),
        ({"name": None}, "None is not of type 'string'"),
        ({"nmae": "typo"}, "'nmae' was unexpected"),
    ],
)
def test_metadata_validation_rejects_bad_metadata(change, expected):
    doc = rayjob("train")
    doc["metadata"].update(change)
    assert any(expected in e for e in V.metadata_errors(doc)), V.metadata_errors(doc)


# --- RayJob entrypoints ---------------------------------------------------------------------------


@pytest.mark.parametrize("job", JOBS)
def test_rayjob_entrypoint_expands_in_the_submitter_shell(job):
    argv = expanded_entrypoint(rayjob(job))
    assert argv[:2] == ["python", f"jobs/{job}.py"] and argv[2] == "--config", argv
    empty = [a for a in argv if a.endswith("=") or a == ""] + [k for k, v in overrides(argv).items() if not v]
    assert not empty, f"{job}: empty values after expansion (unset env var?): {empty}"


@pytest.mark.parametrize("job", JOBS)
def test_rayjob_entrypoint_names_existing_job_and_config_files(job):
    argv = expanded_entrypoint(rayjob(job))
    config = argv[argv.index("--config") + 1]
    missing = [path for path in (argv[1], config) if not (REPO / path).is_file()]
    assert not missing, (
        f"deploy/kuberay/rayjob-{job}.yaml runs `{' '.join(argv[:4])}` but {missing} "
        "does not exist: write it or fix the manifest's entrypoint"
    )


@pytest.fixture(scope="module")
def entrypoint_dry_runs() -> dict[str, tuple[int, str, str]]:
    """(exit code, stdout, stderr) of each RayJob entrypoint with ``--dry-run``, all in one interpreter."""
    runs = [[job, *expanded_entrypoint(rayjob(job))[1:], "--dry-run"] for job in JOBS]
    return run_scripts([r for r in runs if (REPO / r[1]).is_file()], dict(os.environ))


@pytest.mark.parametrize("job", JOBS)
def test_rayjob_entrypoint_overrides_pass_the_jobs_dry_run(job, entrypoint_dry_runs):
    argv = expanded_entrypoint(rayjob(job))
    if not (REPO / argv[1]).is_file():
        pytest.skip(f"{argv[1]} does not exist yet (test_rayjob_entrypoint_names_existing_job_and_config_files fails)")
    code, _, err = entrypoint_dry_runs[job]
    if code == 2 and re.search(r"unrecognized arguments: --dry-run\s*$", err):
        pytest.skip(f"{argv[1]} has no --dry-run, so its overrides cannot be checked without running it")
    assert code == 0, f"{' '.join(argv)} --dry-run failed:\n{err[-3000:]}"


STAGE_CONFIGS = {"train": ("synthgen.config", "ExperimentConfig"), "sample": ("synthgen.sample.config", "SampleConfig")}


@pytest.mark.parametrize("job", STAGE_CONFIGS)
def test_rayjob_overrides_load_into_the_stage_config(job):
    from synthgen.config import load_config

    argv = expanded_entrypoint(rayjob(job))
    if not (REPO / argv[argv.index("--config") + 1]).is_file():
        pytest.skip("config file missing (test_rayjob_entrypoint_names_existing_job_and_config_files fails)")
    module, name = STAGE_CONFIGS[job]
    sets = [argv[i + 1] for i, a in enumerate(argv) if a == "--set"]
    cfg = load_config(getattr(importlib.import_module(module), name), REPO / argv[argv.index("--config") + 1], sets)
    resolved = {k: functools.reduce(getattr, k.split("."), cfg) for k in overrides(argv)}
    assert resolved == {k: yaml.safe_load(v) for k, v in overrides(argv).items()}


def test_rayjob_working_dir_is_the_images_workdir():
    workdir = re.search(r"^WORKDIR\s+(\S+)", (DEPLOY / "Dockerfile").read_text(), re.M).group(1)
    dirs = {job: yaml.safe_load(rayjob(job)["spec"]["runtimeEnvYAML"])["working_dir"] for job in JOBS}
    assert dirs == {job: workdir for job in JOBS}


# --- cluster shape ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", MANIFESTS)
def test_gpu_workers_request_gpus_and_tolerate_the_gpu_taint(name):
    for doc in docs(name):
        (_, head), *workers = ray_groups(doc)
        assert workers, f"{name}: no worker group"
        assert "nvidia.com/gpu" not in str(head["template"]["spec"]["containers"][0].get("resources")), (
            "head is CPU-only"
        )
        for group_name, group in workers:
            pod = group["template"]["spec"]
            res = pod["containers"][0]["resources"]
            assert (
                int(res["requests"]["nvidia.com/gpu"]) >= 1
                and res["requests"]["nvidia.com/gpu"] == res["limits"]["nvidia.com/gpu"]
            )
            assert any(
                t.get("key") == "nvidia.com/gpu"
                and t.get("operator") in ("Exists", "Equal")
                and t.get("effect") in (None, "NoSchedule")
                for t in pod.get("tolerations", [])
            ), group_name


@pytest.mark.parametrize("name", MANIFESTS)
def test_ray_containers_set_cpu_and_memory_requests_and_limits(name):
    for doc in docs(name):
        for group_name, group in ray_groups(doc):
            res = group["template"]["spec"]["containers"][0]["resources"]
            for kind in ("cpu", "memory"):
                assert quantity(res["requests"][kind]) <= quantity(res["limits"][kind]), (group_name, kind)


@pytest.mark.parametrize("job", JOBS)
def test_rayjob_cluster_has_the_gpus_its_job_asks_for(job):
    doc = rayjob(job)
    sets = overrides(expanded_entrypoint(doc))
    needed = 1
    for key, value in sets.items():
        prefix, _, leaf = key.rpartition(".")
        if leaf in ("num_workers", "num_actors") and sets.get(f"{prefix}.use_gpu" if prefix else "use_gpu") == "true":
            needed = max(needed, int(value))
    gpus = sum(
        g["replicas"] * int(g["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"])
        for _, g in ray_groups(doc)[1:]
    )
    assert gpus >= needed, (
        f"{job} asks for {needed} GPU workers/actors but its cluster has {gpus} GPUs: it would wait forever"
    )


@pytest.mark.parametrize("name", MANIFESTS)
def test_every_container_runs_as_non_root(name):
    for doc in docs(name):
        checked = []
        for pod_name, pod in pod_specs(doc):
            pod_sc = pod.get("securityContext", {})
            assert pod_sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", pod_name
            containers = pod["containers"] + pod.get("initContainers", [])
            if pod_name == "head" and cluster_spec(doc).get("enableInTreeAutoscaling"):
                containers.append({"name": "autoscaler", **cluster_spec(doc).get("autoscalerOptions", {})})
            for c in containers:
                sc = {**pod_sc, **c.get("securityContext", {})}
                assert sc.get("runAsNonRoot") is True and sc.get("runAsUser") == 1000, (pod_name, c["name"])
                assert sc.get("allowPrivilegeEscalation") is False, (pod_name, c["name"])
                assert "ALL" in sc.get("capabilities", {}).get("drop", []), (pod_name, c["name"])
                checked.append(c["name"])
        assert checked


@pytest.mark.parametrize("name", MANIFESTS)
def test_object_store_gets_a_memory_backed_dev_shm(name):
    for doc in docs(name):
        for group_name, group in ray_groups(doc):
            pod = group["template"]["spec"]
            container = pod["containers"][0]
            (mount,) = [m for m in container.get("volumeMounts", []) if m["mountPath"] == "/dev/shm"]
            (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
            assert volume["emptyDir"]["medium"] == "Memory", group_name
            shm, memory = (
                quantity(volume["emptyDir"]["sizeLimit"]),
                quantity(container["resources"]["limits"]["memory"]),
            )
            # Ray's object store defaults to 30% of the memory limit and must fit in /dev/shm.
            assert 0.3 * memory <= shm < memory, (group_name, shm, memory)


def _all_containers(doc: dict) -> list[dict]:
    return [c for _, pod in pod_specs(doc) for c in pod["containers"] + pod.get("initContainers", [])]


@pytest.mark.parametrize("name", MANIFESTS)
def test_storage_is_object_storage_with_credentials_from_secrets(name):
    for doc in docs(name):
        for group_name, group in ray_groups(doc):
            env = {e["name"]: e for e in group["template"]["spec"]["containers"][0].get("env", [])}
            for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
                assert "secretKeyRef" in env[key]["valueFrom"], (group_name, key)
            assert env["AWS_DEFAULT_REGION"]["value"], group_name
        paths = [
            e["value"] for c in _all_containers(doc) for e in c.get("env", []) if e["name"] == "SYNTHGEN_STORAGE_PATH"
        ]
        assert paths and all(p.startswith(("s3://", "gs://")) for p in paths), paths


@pytest.mark.parametrize("name", MANIFESTS)
def test_no_literal_secrets_in_manifests(name):
    for doc in docs(name):
        literal = [
            e["name"]
            for c in _all_containers(doc)
            for e in c.get("env", [])
            if re.search(r"SECRET|TOKEN|PASSWORD|ACCESS_KEY", e["name"]) and "value" in e
        ]
        assert not literal, f"{name}: put {literal} in a Secret and use valueFrom.secretKeyRef"


# --- pinned versions and images --------------------------------------------------------------------


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", MANIFESTS)
def test_ray_version_is_pinned_to_pyproject_and_the_installed_ray(name):
    (ray_req,) = [r for r in _pyproject()["project"]["dependencies"] if re.match(r"ray\b", r)]
    specifier = SpecifierSet(re.sub(r"^ray(\[[^\]]*\])?", "", ray_req))
    for doc in docs(name):
        version = cluster_spec(doc)["rayVersion"]
        assert version == RAY_VERSION and version in specifier, (version, RAY_VERSION, ray_req)


def test_one_pinned_image_runs_every_container():
    images = {c["image"] for name in MANIFESTS for doc in docs(name) for c in _all_containers(doc)}
    assert len(images) == 1, f"Ray needs the same Ray and Python on every pod; found {sorted(images)}"
    (image,) = images
    repository, _, tag = image.rpartition(":")
    assert "/" in repository and f"ray{RAY_VERSION}" in tag and tag != "latest", image


def test_dockerfile_pins_the_same_ray_and_runs_as_non_root():
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    minimum = re.search(r"(\d+)\.(\d+)", _pyproject()["project"]["requires-python"]).groups()
    assert re.findall(r"^FROM\s+(\S+)", text, re.M) == [f"rayproject/ray:{RAY_VERSION}-py{''.join(minimum)}-gpu"]
    assert f"ray.__version__ == '{RAY_VERSION}'" in text  # the build fails if pip swapped Ray
    users = re.findall(r"^USER\s+(\d+)", text, re.M)
    assert users and users[-1] != "0"
    assert re.search(r"^RUN pip install --no-cache-dir \. ", text, re.M)


# --- cluster launcher, comments, submit script -----------------------------------------------------


def _launcher() -> dict:
    return yaml.safe_load((DEPLOY / "cluster-aws.yaml").read_text(encoding="utf-8"))


def test_cluster_launcher_yaml_is_valid_for_rays_launcher():
    import ray

    schema = json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())
    jsonschema.validate(_launcher(), schema)  # Ray's own schema: unknown top-level keys are errors


def test_cluster_launcher_names_gpu_workers_and_pins_ray():
    config = _launcher()
    types = config["available_node_types"]
    assert config["provider"]["type"] == "aws" and config["head_node_type"] in types
    assert types[config["head_node_type"]]["resources"].get("GPU", 0) == 0
    gpu_types = {n: t for n, t in types.items() if t["resources"].get("GPU", 0) >= 1}
    assert gpu_types and all(t["node_config"]["InstanceType"].startswith("g5.") for t in gpu_types.values())
    assert config["max_workers"] >= sum(t["max_workers"] for t in gpu_types.values())
    assert config["docker"]["image"].startswith(f"rayproject/ray:{RAY_VERSION}-")
    setup = "\n".join(config["setup_commands"])
    assert any(f"pip install --no-cache-dir {dst}" in setup for dst in config["file_mounts"]) and RAY_VERSION in setup


# Comments say why a value is what it is; restating the field name is noise. These choices are the
# non-obvious ones a reader would otherwise change and break, so each must keep its reason.
EXPLAINED = (
    r"rayVersion:",
    r"num-cpus: \"0\"",
    r"sizeLimit:",
    r"backoffLimit:",
    r"activeDeadlineSeconds:",
    r"shutdownAfterJobFinishes:",
    r"authOptions:",
)


def _field_lines_without_reason(text: str, pattern: str) -> list[str]:
    lines = text.splitlines()
    return [
        f"{i + 1}: {line.strip()}"
        for i, line in enumerate(lines)
        if re.search(rf"^\s*(- )?{pattern}", line)
        and "#" not in line
        and not (i and lines[i - 1].strip().startswith("#"))
    ]


@pytest.mark.parametrize("name", [f"kuberay/{n}" for n in MANIFESTS])
def test_non_obvious_fields_keep_their_reason(name):
    text = (DEPLOY / name).read_text(encoding="utf-8")
    found = [p for p in EXPLAINED if re.search(rf"^\s*(- )?{p}", text, re.M)]
    assert len(found) >= 4, f"deploy/{name} lost the fields this test looks for: {found}"
    missing = [line for p in found for line in _field_lines_without_reason(text, p)]
    assert not missing, f"deploy/{name}: say why for each of these:\n" + "\n".join(missing)


@pytest.mark.parametrize("name", [f"kuberay/{n}" for n in MANIFESTS] + ["cluster-aws.yaml"])
def test_comments_do_not_restate_the_field(name):
    restating = (
        "# same as the request",
        "# the application",
        "# what the scheduler reserves",
        "# pod labels",
        "# hard caps",
        "# identity of the object",
        "# the head pod",
        "# the worker pod",
    )
    text = (DEPLOY / name).read_text(encoding="utf-8")
    assert [c for c in restating if re.search(re.escape(c) + "$", text, re.M)] == []


def test_reason_checker_flags_a_bare_field():
    text = "a:\n  backoffLimit: 0\n  # why\n  sizeLimit: 3Gi\n  activeDeadlineSeconds: 1  # why\n"
    assert _field_lines_without_reason(text, "backoffLimit:") == ["2: backoffLimit: 0"]
    assert _field_lines_without_reason(text, "sizeLimit:") == []
    assert _field_lines_without_reason(text, "activeDeadlineSeconds:") == []


def test_submit_script_parses_shows_usage_and_targets_the_raycluster():
    script = DEPLOY / "ray-submit.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    proc = subprocess.run(["bash", str(script)], capture_output=True, text=True)
    assert proc.returncode == 2 and "usage:" in proc.stderr
    (cluster,) = docs("raycluster.yaml")
    text = script.read_text(encoding="utf-8")
    assert f"RAY_CLUSTER:-{cluster['metadata']['name']}}}" in text
    assert f"TOKEN_SECRET:-{cluster['spec']['authOptions']['secretName']}}}" in text
    assert "RAY_AUTH_MODE=token" in text and "RAY_AUTH_TOKEN" in text
