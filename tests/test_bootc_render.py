"""Image mode rendering on data alone: Containerfile, boot-time unit and script, config.toml, image list."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from edgebuild.cli import main
from edgebuild.errors import UsageError
from edgebuild.render.bootc import (
    BootcOptions,
    default_base_image,
    image_list_text,
    render_boot_files,
    render_builder_config,
    render_containerfile,
    store_entries,
)


def test_containerfile_installs_pinned_packages_and_copies_the_store_once():
    text = render_containerfile("registry.redhat.io/rhel9/rhel-bootc:9.6", "4.18.1")
    assert "ARG BASE_IMAGE=registry.redhat.io/rhel9/rhel-bootc:9.6\nFROM ${BASE_IMAGE}" in text
    assert "ARG MICROSHIFT_VERSION=4.18.1" in text
    assert "microshift-release-info${MICROSHIFT_VERSION:+-${MICROSHIFT_VERSION}}" in text
    assert text.count("COPY images/ /usr/lib/containers/edgebuild-images/") == 1
    assert "firewall-offline-cmd --zone=public --add-port=6443/tcp" in text
    assert text.rstrip().endswith("RUN bootc container lint")


def test_containerfile_refuses_a_bad_base_and_a_bad_pin():
    with pytest.raises(UsageError, match="--base-image"):
        render_containerfile("not a reference", None)
    with pytest.raises(Exception, match="package version"):
        render_containerfile("quay.io/x/y:1", "4.18; rm -rf /")


def test_default_base_follows_the_distro():
    assert default_base_image("rhel-96") == ("registry.redhat.io/rhel9/rhel-bootc:9.6", None)
    assert default_base_image("rhel-100")[0] == "registry.redhat.io/rhel10/rhel-bootc:10.0"
    base, warning = default_base_image("rhel-94")
    assert base.endswith(":9.6") and "9.6 or later" in warning


def test_unit_runs_before_crio_and_microshift_and_is_required_by_microshift():
    files = render_boot_files()
    unit = files["bootc/edgebuild-embedded-images.service"]
    assert "Before=crio.service microshift.service" in unit and "RequiredBy=microshift.service" in unit
    assert "Type=oneshot" in unit and "RemainAfterExit=yes" in unit
    script = files["bootc/edgebuild-copy-embedded-images"]
    assert 'skopeo copy --quiet --preserve-digests "dir:$STORE/$dir" "containers-storage:$ref"' in script
    assert '[ "$failed" -eq 0 ]' in script.splitlines()[-1]


def test_image_list_names_every_reference_of_one_copy():
    entries = store_entries([
        {"pullFrom": "m/app@sha256:" + "a" * 64, "deviceReference": "q.io/app@sha256:" + "a" * 64},
        {"pullFrom": "m/app@sha256:" + "a" * 64, "deviceReference": "q.io/app:1"},
        {"pullFrom": "m/x@sha256:" + "b" * 64, "deviceReference": "q.io/x", "embedded": False}])
    assert len(entries) == 1 and len(entries[0].subdir) == 64
    lines = image_list_text(entries).splitlines()[1:]
    assert lines == [f"q.io/app:1 {entries[0].subdir}", f"q.io/app@sha256:{'a' * 64} {entries[0].subdir}"]


def test_builder_config_users_keys_filesystems_kickstart(tmp_path: Path):
    key = tmp_path / "id.pub"
    key.write_text("ssh-ed25519 AAAAC3Nza test@host\n")
    ks = tmp_path / "ks.cfg"
    ks.write_text("lang en_US.UTF-8\n")
    doc = tomllib.loads(render_builder_config(BootcOptions(users=["core"], ssh_keys=[key], kickstart=ks,
                                                           filesystems=["/=20 GiB", "/var/lib/containers=40 GiB"])))
    assert doc["customizations"]["user"] == [{"name": "core", "groups": ["wheel"],
                                              "key": "ssh-ed25519 AAAAC3Nza test@host"}]
    assert doc["customizations"]["filesystem"][1] == {"mountpoint": "/var/lib/containers", "minsize": "40 GiB"}
    assert doc["customizations"]["installer"]["kickstart"]["contents"] == "lang en_US.UTF-8\n"


@pytest.mark.parametrize("options, message", [
    (BootcOptions(filesystems=["var=10G"]), "MOUNTPOINT=SIZE"),
    (BootcOptions(users=["Root User"]), "not a valid user name"),
])
def test_builder_config_errors_name_the_option(options: BootcOptions, message: str):
    with pytest.raises(UsageError, match=message):
        render_builder_config(options)


def test_a_private_key_is_refused_and_not_printed(tmp_path: Path, capsys):
    key = tmp_path / "id"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nsecretbytes\n-----END OPENSSH PRIVATE KEY-----\n")
    with pytest.raises(UsageError, match="not an SSH public key") as info:
        render_builder_config(BootcOptions(users=["core"], ssh_keys=[key]))
    assert "secretbytes" not in str(info.value)


def test_verify_without_outdir_or_image_is_bad_usage(capsys):
    assert main(["verify"]) == 2
    assert "--image" in capsys.readouterr().err


def test_compose_prints_podman_build_and_bootc_image_builder(tmp_path: Path, capsys):
    (tmp_path / "Containerfile").write_text(render_containerfile("registry.redhat.io/rhel10/rhel-bootc:10.0", None))
    assert main(["compose", str(tmp_path), "--type", "qcow2", "--print-only", "--tag", "localhost/x:1",
                 "--build-arg", "DNF_OPTS=--enablerepo=rhocp"]) == 0
    build, disk = capsys.readouterr().out.splitlines()
    assert build.startswith("podman build -t localhost/x:1 -f") and "--build-arg DNF_OPTS=--enablerepo=rhocp" in build
    assert ("registry.redhat.io/rhel10/bootc-image-builder:latest --type qcow2 --config /config.toml "
            "localhost/x:1") in disk
