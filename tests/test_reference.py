"""Image reference parsing and oc-mirror destination naming."""

from __future__ import annotations

import pytest

from edgebuild.reference import ImageReference, MirrorTarget, ReferenceError, v1_tag, v2_tag

D = "sha256:" + "ab" * 32


@pytest.mark.parametrize("text, registry, repo, tag, digest", [
    ("busybox", "docker.io", "library/busybox", None, None),
    ("team/app:1", "docker.io", "team/app", "1", None),
    ("localhost/app", "localhost", "app", None, None),
    ("127.0.0.1:5000/ns/app:v1", "127.0.0.1:5000", "ns/app", "v1", None),
    (f"registry.redhat.io/amq7/amq-broker-rhel8@{D}", "registry.redhat.io", "amq7/amq-broker-rhel8", None, D),
    (f"quay.io/a/b:1.0@{D}", "quay.io", "a/b", "1.0", D),
])
def test_parse(text, registry, repo, tag, digest):
    ref = ImageReference.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repo, tag, digest)


@pytest.mark.parametrize("text, words", [
    ("", "empty"), ("quay.io/a/b@sha256:12", "bad digest"), ("quay.io/A/b", "lowercase"),
    ("docker://quay.io/a/b", "transport"), ("quay.io/a/b:-bad", "bad tag"),
])
def test_parse_errors(text, words):
    with pytest.raises(ReferenceError, match=words):
        ImageReference.parse(text)


def test_destination_tags():
    assert v1_tag(ImageReference.parse(f"quay.io/a/b@{D}")) == "ababab"
    assert v2_tag(ImageReference.parse(f"quay.io/a/b@{D}")) == "sha256-" + "ab" * 32
    assert v1_tag(ImageReference.parse("quay.io/a/b:1.2")) == v2_tag(ImageReference.parse("quay.io/a/b:1.2")) == "1.2"


def test_mirror_target():
    target = MirrorTarget.parse("docker://127.0.0.1:5000/edge/mirror")
    assert (target.registry, target.namespace) == ("127.0.0.1:5000", "edge/mirror")
    assert target.repository_for("amq7/broker") == "edge/mirror/amq7/broker"
    assert MirrorTarget.parse("mirror.example.com").repository_for("a/b") == "a/b"
    with pytest.raises(ReferenceError):
        MirrorTarget.parse("docker://")
