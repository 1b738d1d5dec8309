"""TOML blueprint -> Cloud API `Blueprint` conversion, checked with jsonschema against the OpenAPI document.

The schema is osbuild-composer's internal/cloudapi/v2/openapi.v2.yml, trimmed to the parts used into
tests/data/composer-cloudapi.trimmed.yml; the validators are the stand-in's (tests/composer_standin.py).
"""

from __future__ import annotations

import tomllib

import pytest

from edgebuild.compose import BlueprintConversionError, CloudBlueprint, blueprint_to_cloud, compose_request
from tests.composer_standin import SAMPLE_BLUEPRINT, SPEC, Spec

RICH_BLUEPRINT = """\
name = "rich"
description = "every customization the Cloud API carries"
version = "1.2.3"
distro = "rhel-94"
architecture = "x86_64"
modules = []
groups = [{name = "container-management"}]
enabled_modules = [{name = "nodejs", stream = "22"}]

[[packages]]
name = "microshift"
version = "*"

[[containers]]
source = "quay.io/example/app@sha256:3333333333333333333333333333333333333333333333333333333333333333"
name = "quay.io/example/app:v1"
tls-verify = true

[customizations]
hostname = "edge-01"
fips = false
installation_device = "/dev/vda"
partitioning_mode = "lvm"

[customizations.kernel]
name = "kernel-rt"
append = "nosmt"

[[customizations.sshkey]]
user = "core"
key = "ssh-ed25519 AAAAexample"

[[customizations.user]]
name = "admin"
description = "administrator"
password = "$6$salt$hash"
key = "ssh-ed25519 AAAAexample"
home = "/var/home/admin"
shell = "/bin/bash"
groups = ["wheel"]
uid = 1001
gid = 1001

[[customizations.group]]
name = "edge"
gid = 2001

[customizations.timezone]
timezone = "Europe/Berlin"
ntpservers = ["0.pool.ntp.org"]

[customizations.locale]
languages = ["en_US.UTF-8"]
keyboard = "us"

[customizations.firewall]
ports = ["22:tcp"]

[customizations.firewall.services]
enabled = ["ssh"]
disabled = ["telnet"]

[customizations.services]
enabled = ["microshift", "crio"]
disabled = []
masked = []

[[customizations.filesystem]]
mountpoint = "/var"
minsize = 2147483648

[[customizations.filesystem]]
mountpoint = "/var/log"
minsize = "1 GiB"

[[customizations.directories]]
path = "/etc/edge"
mode = "0755"
user = "root"
group = 0
ensure_parents = true

[[customizations.files]]
path = "/etc/edge/config"
mode = "0600"
user = 0
group = "root"
data = "x = 1\\n"

[[customizations.repositories]]
id = "rhocp"
name = "rhocp"
baseurls = ["https://mirror.example/rhocp/"]
gpgcheck = false
enabled = true

[customizations.fdo]
manufacturing_server_url = "http://fdo.example:8080"
diun_pub_key_insecure = "true"

[customizations.installer]
unattended = true
sudo-nopasswd = ["admin"]

[customizations.cacerts]
pem_certs = ["-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----"]

[customizations.ignition.firstboot]
url = "http://ignition.example/config.ign"

[customizations.openscap]
profile_id = "xccdf_org.ssgproject.content_profile_cis"
"""


@pytest.fixture(scope="module")
def spec() -> Spec:
    return Spec(str(SPEC))


def convert(text: str) -> CloudBlueprint:
    return blueprint_to_cloud(tomllib.loads(text), "bp.toml")


def test_rendered_blueprint_converts_to_a_valid_cloud_blueprint(spec: Spec) -> None:
    converted = convert(SAMPLE_BLUEPRINT)
    assert spec.errors("Blueprint", converted.blueprint) == []
    containers = converted.blueprint["containers"]
    assert containers[1] == {"source": tomllib.loads(SAMPLE_BLUEPRINT)["containers"][1]["source"],
                             "tls_verify": False}
    assert "tls_verify" not in containers[0], "an absent tls-verify stays absent (composer default: verify)"
    files = converted.blueprint["customizations"]["files"]
    assert files[0]["data"].startswith("\n[[registry]]") or files[0]["data"].startswith("[[registry]]")
    assert converted.blueprint["customizations"]["directories"] == [
        {"path": "/etc/microshift/manifests.d/050-redhat-operators", "ensure_parents": True}]
    assert converted.warnings == [] and converted.distro == "rhel-94"


def test_the_raw_toml_shape_is_not_a_cloud_blueprint(spec: Spec) -> None:
    """Why a conversion is needed: the TOML as parsed breaks the schema (architecture, services lists...)."""
    raw = tomllib.loads(RICH_BLUEPRINT)
    errors = spec.errors("Blueprint", raw)
    assert any("'architecture' was unexpected" in e for e in errors)
    assert any("services/disabled: [] should be non-empty" in e for e in errors), "empty services lists break minItems"
    assert any("2147483648 is not of type 'string'" in e for e in errors)


def test_every_customization_the_api_carries_converts_and_validates(spec: Spec) -> None:
    converted = convert(RICH_BLUEPRINT)
    bp = converted.blueprint
    assert spec.errors("Blueprint", bp) == []
    assert converted.architecture == "x86_64" and "architecture" not in bp
    assert bp["containers"][0]["tls_verify"] is True and bp["containers"][0]["name"] == "quay.io/example/app:v1"
    assert bp["customizations"]["services"] == {"enabled": ["microshift", "crio"]}
    assert [f["minsize"] for f in bp["customizations"]["filesystem"]] == ["2147483648", "1 GiB"]
    assert bp["customizations"]["installer"] == {"unattended": True, "sudo-nopasswd": ["admin"]}
    assert bp["customizations"]["user"][0]["uid"] == 1001
    request = compose_request(converted, "edge-commit", distribution="rhel-94", architecture="x86_64",
                              ref="rhel/9/x86_64/edge", parent="rhel/9/x86_64/edge", url="http://h/repo/",
                              repositories=[{"baseurl": "https://mirror.example/rhocp/", "rhsm": False}])
    assert spec.errors("ComposeRequest", request) == []


@pytest.mark.parametrize("image_type", ["edge-commit", "edge-container", "edge-installer"])
def test_compose_request_for_each_edge_type_validates(spec: Spec, image_type: str) -> None:
    installer = 'name = "inst"\nversion = "0.0.1"\ndistro = "rhel-94"\npackages = []\n'
    converted = convert(installer if image_type == "edge-installer" else SAMPLE_BLUEPRINT)
    request = compose_request(converted, image_type, distribution="rhel-94", architecture="aarch64",
                              ref="rhel/9/aarch64/edge", url="http://h:8080/repo/")
    assert spec.errors("ComposeRequest", request) == []
    assert request["image_request"]["upload_targets"] == [{"type": "local", "upload_options": {}}]


def test_fields_that_have_no_effect_are_dropped_with_a_warning(spec: Spec) -> None:
    text = SAMPLE_BLUEPRINT.replace('tls-verify = false', 'tls-verify = false\nlocal-storage = true') + \
        '\n[[customizations.files]]\npath = "/etc/x"\ndata = "y"\nensure_parents = true\n'
    converted = convert(text)
    assert spec.errors("Blueprint", converted.blueprint) == []
    assert "local-storage" not in str(converted.blueprint) and "ensure_parents" not in str(
        converted.blueprint["customizations"]["files"])
    assert any("containers[1].local-storage dropped" in w for w in converted.warnings)
    assert any("customizations.files[1].ensure_parents dropped" in w for w in converted.warnings)


def test_what_the_api_cannot_carry_is_an_error_that_lists_every_key() -> None:
    text = """\
name = "x"
colour = "blue"

[[customizations.user]]
name = "a"
expiredate = 12345

[[customizations.files]]
path = "/etc/motd"
uri = "file:///srv/motd"

[customizations.installer]
kickstart = {contents = "text"}

[customizations.sshd.config]
PasswordAuthentication = false

[customizations.containers-storage]
destination-path = "/usr/share/containers/storage"
"""
    with pytest.raises(BlueprintConversionError) as caught:
        convert(text)
    message = str(caught.value)
    for needle in ("colour: the Cloud API blueprint has no such field",
                   "customizations.user[0].expiredate", "customizations.files[0].uri", "inline the contents as data",
                   "customizations.installer.kickstart", "customizations.sshd:", "customizations.containers-storage:",
                   "compose through the Weldr API (--socket)"):
        assert needle in message
    assert caught.value.exit_code == 2
