"""Create the quickstart's "upstream": a tiny operator catalog and its images, pushed to a registry.

Everything is generated here, offline and deterministically (same bytes, same digests every run):
- `edgebuild-example/edge-hello-operator`: a runnable busybox image (the operator),
- `edgebuild-example/edge-hello-bundle`: two bundle images (v0.1.0 and v0.2.0, a CSV each),
- `edgebuild-example/hello-app`: a runnable busybox image with /etc/hello.txt (an additionalImage),
- `edgebuild-example/catalog:v1`: a file-based catalog image whose bundles reference the above by digest.
They are pushed with skopeo to the registry given as --upstream (it plays quay.io), and the
ImageSetConfiguration that selects them is written to --config.

The images are built with the same deterministic OCI layout writer the tests use (tests/ocibuild.py).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.ocibuild import CATALOG_LABEL, Entry, OciLayout  # noqa: E402

BUSYBOX = Path("/bin/busybox")
APPLETS = ("sh", "cat", "echo", "ls", "sleep", "id", "hostname", "true")
PACKAGE = "edge-hello"


def busybox_layer() -> list[Entry]:
    """/bin/busybox plus applet links: enough for `podman run IMAGE /bin/sh -c ...`."""
    if not BUSYBOX.exists():
        sys.exit("make_example: /bin/busybox is missing (apt-get install busybox-static)")
    entries = [Entry("bin/", type=tarfile.DIRTYPE, mode=0o755),
               Entry("bin/busybox", BUSYBOX.read_bytes(), mode=0o755)]
    entries += [Entry(f"bin/{name}", type=tarfile.SYMTYPE, linkname="busybox") for name in APPLETS]
    return entries


def csv(version: str, replaces: str | None, operator_image: str) -> bytes:
    spec = {
        "displayName": "Edge Hello",
        "version": version,
        "installModes": [{"type": "OwnNamespace", "supported": True},
                         {"type": "SingleNamespace", "supported": True},
                         {"type": "MultiNamespace", "supported": False},
                         {"type": "AllNamespaces", "supported": True}],
        "install": {"strategy": "deployment", "spec": {"deployments": [{
            "name": "edge-hello-operator",
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "edge-hello"}},
                     "template": {"metadata": {"labels": {"app": "edge-hello"}},
                                  "spec": {"containers": [{"name": "operator", "image": operator_image,
                                                           "command": ["/bin/sleep", "3600"]}]}}}}]}},
    }
    if replaces:
        spec["replaces"] = replaces
    return json.dumps({"apiVersion": "operators.coreos.com/v1alpha1", "kind": "ClusterServiceVersion",
                       "metadata": {"name": f"{PACKAGE}.v{version}"}, "spec": spec}, indent=2).encode()


def push(layout: Path, name: str, dest: str) -> None:
    subprocess.run(["skopeo", "copy", "--quiet", "--all", "--dest-tls-verify=false",
                    f"oci:{layout}:{name}", f"docker://{dest}"], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True, help="registry host:port that plays the upstream registry")
    parser.add_argument("--workdir", required=True, type=Path)
    parser.add_argument("--config", required=True, type=Path, help="where to write the ImageSetConfiguration")
    args = parser.parse_args()
    base = f"{args.upstream}/edgebuild-example"
    layout = OciLayout.create(args.workdir / "layout")

    def build(name: str, layers: list, labels: dict[str, str] | None = None) -> str:
        desc = layout.add_image(layers, labels=labels)
        layout.tag(desc, name)
        return desc["digest"]

    operator_digest = build("operator", [busybox_layer()])
    operator_image = f"{base}/edge-hello-operator@{operator_digest}"
    app_digest = build("app", [busybox_layer(), {"etc/hello.txt": b"hello from an offline image\n"}])

    versions = [("0.1.0", None), ("0.2.0", f"{PACKAGE}.v0.1.0")]
    bundles = []
    for version, replaces in versions:
        files = {f"manifests/{PACKAGE}.clusterserviceversion.yaml": csv(version, replaces, operator_image),
                 "metadata/annotations.yaml": (
                     "annotations:\n"
                     "  operators.operatorframework.io.bundle.mediatype.v1: registry+v1\n"
                     "  operators.operatorframework.io.bundle.manifests.v1: manifests/\n"
                     "  operators.operatorframework.io.bundle.metadata.v1: metadata/\n"
                     f"  operators.operatorframework.io.bundle.package.v1: {PACKAGE}\n"
                     "  operators.operatorframework.io.bundle.channels.v1: stable\n").encode()}
        digest = build(f"bundle-{version}", [files], labels={
            "operators.operatorframework.io.bundle.package.v1": PACKAGE})
        bundles.append((version, replaces, f"{base}/edge-hello-bundle@{digest}"))

    blobs = [{"schema": "olm.package", "name": PACKAGE, "defaultChannel": "stable",
              "description": "A tiny operator for the edgebuild quickstart"},
             {"schema": "olm.channel", "name": "stable", "package": PACKAGE,
              "entries": [{"name": f"{PACKAGE}.v{v}", **({"replaces": r} if r else {})} for v, r, _ in bundles]}]
    for version, _, image in bundles:
        blobs.append({
            "schema": "olm.bundle", "name": f"{PACKAGE}.v{version}", "package": PACKAGE, "image": image,
            "properties": [
                {"type": "olm.package", "value": {"packageName": PACKAGE, "version": version}},
                {"type": "olm.csv.metadata", "value": {"displayName": "Edge Hello", "installModes": [
                    {"type": "OwnNamespace", "supported": True}, {"type": "AllNamespaces", "supported": True}]}},
            ],
            "relatedImages": [{"name": "", "image": image}, {"name": "operator", "image": operator_image}],
        })
    fbc = "".join(json.dumps(b, indent=2) + "\n" for b in blobs).encode()
    build("catalog", [{f"configs/{PACKAGE}/catalog.json": fbc}], labels={CATALOG_LABEL: "/configs"})

    push(layout.root, "operator", f"{base}/edge-hello-operator:v0.2.0")
    push(layout.root, "app", f"{base}/hello-app:v1")
    for version, _, _ in bundles:
        push(layout.root, f"bundle-{version}", f"{base}/edge-hello-bundle:v{version}")
    push(layout.root, "catalog", f"{base}/catalog:v1")

    template = (Path(__file__).parent / "imageset-config.yaml.in").read_text()
    args.config.write_text(template.replace("@UPSTREAM@", args.upstream)
                           .replace("@APP_DIGEST@", app_digest))
    print(f"make_example: upstream images pushed to {args.upstream}/edgebuild-example, config in {args.config}")


if __name__ == "__main__":
    main()
