"""Shared helpers of the render tests: a real local registry, tiny OCI images, and plans built by hand.

Not a test module of its own (it holds no tests); the render and convert tests import from it.
"""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from pathlib import Path

from edgebuild.catalog.model import Bundle, Catalog, Channel, ChannelEntry, Package, RelatedImage
from edgebuild.catalog.selection import SelectedPackage, Selection
from edgebuild.config import OperatorSpec, PackageSpec
from edgebuild.plan import CatalogPlan, Plan, PlanImage
from edgebuild.reference import MirrorTarget
from tests.ocibuild import OciLayout

API_V1 = "mirror.openshift.io/v1alpha2"
API_V2 = "mirror.openshift.io/v2alpha1"


def fake_digest(seed: str) -> str:
    return "sha256:" + hashlib.sha256(seed.encode()).hexdigest()


# --------------------------------------------------------------------------------------------------
# Registry and images


def push(registry_host: str, layout: Path, ref_name: str, repository: str, tag: str) -> str:
    """Copy oci:layout:ref_name to registry_host/repository:tag with skopeo; return the manifest digest."""
    subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"oci:{layout}:{ref_name}",
                    f"docker://{registry_host}/{repository}:{tag}"], check=True, capture_output=True, timeout=60)
    out = subprocess.run(["skopeo", "inspect", "--tls-verify=false", "-n", "--format", "{{.Digest}}",
                          f"docker://{registry_host}/{repository}:{tag}"],
                         check=True, capture_output=True, text=True, timeout=60)
    return out.stdout.strip()


def write_oci_image(layout: Path, ref_name: str, payload: str) -> str:
    """Add a one-layer image (a text file) to an OCI layout; return its manifest digest.

    Layers are gzip with mtime 0 (tests/ocibuild.py), so the digest survives a push unchanged.
    """
    oci = OciLayout.open(layout)
    desc = oci.add_image([{"payload.txt": payload.encode()}])
    oci.tag(desc, ref_name)
    return desc["digest"]


def skopeo_inspect(reference: str, registries_conf: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`skopeo inspect -n docker://REF` with an optional --registries-conf; never raises on failure."""
    cmd = ["skopeo"]
    if registries_conf is not None:
        cmd += ["--registries-conf", str(registries_conf)]
    cmd += ["inspect", "-n", "--format", "{{.Digest}}", f"docker://{reference}"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


# --------------------------------------------------------------------------------------------------
# Plans built from data


ALL_NAMESPACES = {"OwnNamespace": True, "SingleNamespace": True, "MultiNamespace": False, "AllNamespaces": True}
OWN_NAMESPACE_ONLY = {"OwnNamespace": True, "SingleNamespace": True, "MultiNamespace": False, "AllNamespaces": False}


@dataclass
class ImageDigests:
    """Digests of the images of the sample plan (real ones when they were pushed to a registry)."""

    catalog: str = fake_digest("catalog")
    broker_bundle: str = fake_digest("broker-bundle-7.11.1")
    broker_old_bundle: str = fake_digest("broker-bundle-7.11.0")
    broker: str = fake_digest("broker")
    local_bundle: str = fake_digest("local-bundle")
    local_operator: str = fake_digest("local-operator")
    hello: str = fake_digest("hello")


CATALOG = "registry.example.com/redhat/redhat-operator-index:v4.15"
BROKER_BUNDLE_REPO = "registry.example.com/amq7/amq-broker-operator-bundle"
BROKER_REPO = "registry.example.com/amq7/amq-broker-rhel8"
LOCAL_BUNDLE_REPO = "registry.example.com/storage/local-storage-bundle"
LOCAL_OPERATOR_REPO = "registry.example.com/storage/local-storage-operator"
HELLO = "quay.io/edgebuild/hello:1.0"


def sample_catalog(d: ImageDigests) -> Catalog:
    """Two packages: amq-broker-rhel8 (AllNamespaces, two bundles) and local-storage (OwnNamespace only)."""
    broker = Package("amq-broker-rhel8", "7.11.x")
    broker.channels["7.11.x"] = Channel("7.11.x", "amq-broker-rhel8", [
        ChannelEntry("amq-broker-operator.v7.11.0"),
        ChannelEntry("amq-broker-operator.v7.11.1", replaces="amq-broker-operator.v7.11.0"),
    ])
    broker.bundles["amq-broker-operator.v7.11.0"] = Bundle(
        "amq-broker-operator.v7.11.0", "amq-broker-rhel8", f"{BROKER_BUNDLE_REPO}@{d.broker_old_bundle}", "7.11.0",
        related_images=[RelatedImage("broker", f"{BROKER_REPO}@{d.broker}")], install_modes=dict(ALL_NAMESPACES))
    broker.bundles["amq-broker-operator.v7.11.1"] = Bundle(
        "amq-broker-operator.v7.11.1", "amq-broker-rhel8", f"{BROKER_BUNDLE_REPO}@{d.broker_bundle}", "7.11.1",
        related_images=[RelatedImage("broker", f"{BROKER_REPO}@{d.broker}"),
                        RelatedImage("", f"{BROKER_BUNDLE_REPO}@{d.broker_bundle}")],
        install_modes=dict(ALL_NAMESPACES))
    local = Package("local-storage-operator", "stable")
    local.channels["stable"] = Channel("stable", "local-storage-operator",
                                       [ChannelEntry("local-storage-operator.v4.15.0")])
    local.bundles["local-storage-operator.v4.15.0"] = Bundle(
        "local-storage-operator.v4.15.0", "local-storage-operator", f"{LOCAL_BUNDLE_REPO}@{d.local_bundle}", "4.15.0",
        related_images=[RelatedImage("operator", f"{LOCAL_OPERATOR_REPO}@{d.local_operator}")],
        install_modes=dict(OWN_NAMESPACE_ONLY))
    return Catalog(packages={"amq-broker-rhel8": broker, "local-storage-operator": local}, source="sample")


def sample_selection(catalog: Catalog) -> Selection:
    broker = catalog.packages["amq-broker-rhel8"]
    local = catalog.packages["local-storage-operator"]
    return Selection(catalog, {
        "amq-broker-rhel8": SelectedPackage("amq-broker-rhel8", "7.11.x",
                                            {"7.11.x": list(broker.channels["7.11.x"].entries)}),
        "local-storage-operator": SelectedPackage("local-storage-operator", "stable",
                                                  {"stable": list(local.channels["stable"].entries)}),
    })


def sample_plan(mirror: MirrorTarget, digests: ImageDigests | None = None, api_version: str = API_V1) -> Plan:
    """A mirrored plan (every image has its digest) for CATALOG with both packages and one additional image."""
    from edgebuild.plan import catalog_destination, image_destination
    from edgebuild.reference import ImageReference

    d = digests or ImageDigests()
    semantics = "v1" if api_version == API_V1 else "v2"
    spec = OperatorSpec(CATALOG, packages=[PackageSpec("amq-broker-rhel8"), PackageSpec("local-storage-operator")])
    catalog = sample_catalog(d)
    cplan = CatalogPlan(spec, sample_selection(catalog), catalog_destination(spec, semantics, mirror))
    images = [PlanImage(CATALOG, "catalog", cplan.destination, ImageReference.parse(cplan.destination).tag,
                        d.catalog, [f"catalog {CATALOG}"])]
    for source, kind in [(f"{BROKER_BUNDLE_REPO}@{d.broker_bundle}", "bundle"),
                         (f"{BROKER_BUNDLE_REPO}@{d.broker_old_bundle}", "bundle"),
                         (f"{BROKER_REPO}@{d.broker}", "related"),
                         (f"{LOCAL_BUNDLE_REPO}@{d.local_bundle}", "bundle"),
                         (f"{LOCAL_OPERATOR_REPO}@{d.local_operator}", "related"),
                         (HELLO, "additional")]:
        ref = ImageReference.parse(source)
        destination, tag = image_destination(ref, semantics, mirror)
        digest = ref.digest or d.hello
        images.append(PlanImage(source, kind, destination, tag, digest))  # type: ignore[arg-type]
    images.sort(key=lambda i: i.source)
    return Plan(api_version=api_version, operators=[cplan], images=images, mirror=mirror)


def sample_config(api_version: str = API_V1):  # -> ImageSetConfig
    from edgebuild.config import AdditionalImage, ImageSetConfig
    return ImageSetConfig(path="<test>", api_version=api_version,
                          operators=[OperatorSpec(CATALOG)], additional_images=[AdditionalImage(HELLO)])
