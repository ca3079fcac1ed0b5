# -*- coding: utf-8 -*-
"""`ansible-builder create` on execution-environment.yml makes a build context that carries what the
jobs need: the collection tarball that was tested, pyelftools, ansible-core/ansible-runner, the bindep
entries, and the collection's Galaxy dependencies. No container engine here: create only, never build."""

from __future__ import annotations

import os
import re
import shutil
import tarfile
import json

import pytest
import yaml

from bindep.depends import Depends

from conftest import REPO, run, tool


@pytest.fixture(scope="module")
def ee_context(tmp_path_factory, collection_tarball):
    """Run `ansible-builder create` the way CI does, on a copy laid out like the checkout after tier_build."""
    work = tmp_path_factory.mktemp("ee")
    for name in ("execution-environment.yml", "bindep.txt"):
        shutil.copy(os.path.join(REPO, name), str(work / name))
    dist = work / ".build" / "dist"
    dist.mkdir(parents=True)
    shutil.copy(collection_tarball, str(dist))
    ctx = work / "context"
    proc = run([tool("ansible-builder"), "create", "-f", str(work / "execution-environment.yml"),
                "--context", str(ctx), "-v", "3"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No matches" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    with open(str(ctx / "Containerfile"), encoding="utf-8") as fh:
        containerfile = fh.read()
    return ctx, containerfile


def _stage(containerfile, name):
    """Lines of one build stage (FROM ... AS name up to the next FROM)."""
    m = re.search(r"^FROM \S+ AS %s\n(.*?)(?=^FROM |\Z)" % name, containerfile, re.S | re.M)
    assert m, "no %s stage in the Containerfile" % name
    return m.group(1)


def _pins(path):
    pins = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.split("#", 1)[0].strip()
            m = re.match(r"^([A-Za-z0-9_.-]+)\s*==\s*(\S+)$", line)
            if m:
                pins[m.group(1).lower()] = m.group(2)
    return pins


def test_collection_tarball_is_in_the_context_and_installed_in_the_galaxy_stage(ee_context, galaxy):
    ctx, containerfile = ee_context
    name = "xenkdump-fleet-%s.tar.gz" % galaxy["version"]
    path = ctx / "_build" / "collections" / name
    assert path.is_file(), sorted(str(p) for p in ctx.rglob("*"))
    with tarfile.open(str(path)) as tf:
        manifest = json.load(tf.extractfile("MANIFEST.json"))
        members = set(tf.getnames())
    info = manifest["collection_info"]
    assert (info["namespace"], info["name"], info["version"]) == ("xenkdump", "fleet", galaxy["version"])
    for module in sorted(os.listdir(os.path.join(REPO, "plugins", "modules"))):
        if module.endswith(".py"):
            assert "plugins/modules/" + module in members, module
    assert "roles/kdump/tasks/main.yml" in members
    for playbook in ("playbooks/site.yml", "playbooks/audit.yml", "playbooks/fire_drill.yml"):
        assert playbook in members, playbook

    galaxy_stage = _stage(containerfile, "galaxy")
    assert "COPY _build/collections/ /tmp/xenkdump-collections/" in galaxy_stage
    install = [line for line in galaxy_stage.splitlines() if "xenkdump-fleet-" in line]
    assert install and "ansible-galaxy collection install" in install[0], galaxy_stage
    assert "-p /usr/share/ansible/collections" in install[0]
    # ... after the dependencies, and the final image gets /usr/share/ansible from that stage
    assert galaxy_stage.index("-r requirements.yml --collections-path") < galaxy_stage.index(install[0])
    assert "COPY --from=galaxy /usr/share/ansible /usr/share/ansible" in _stage(containerfile, "final")
    assert "ansible-doc -t module xenkdump.fleet.xen_facts" in _stage(containerfile, "final")


def test_galaxy_dependencies_match_galaxy_yml(ee_context, galaxy):
    ctx = ee_context[0]
    with open(str(ctx / "_build" / "requirements.yml"), encoding="utf-8") as fh:
        reqs = yaml.safe_load(fh)
    got = {c["name"]: c.get("version", "*") for c in reqs["collections"]}
    assert got == dict(galaxy["dependencies"])


def test_python_requirements_carry_pyelftools_pinned_like_the_controller(ee_context):
    ctx, containerfile = ee_context
    ee_pins = _pins(str(ctx / "_build" / "requirements.txt"))
    repo_pins = _pins(os.path.join(REPO, "requirements.txt"))
    assert ee_pins["pyelftools"] == repo_pins["pyelftools"]
    refs = re.search(r'^ARG ANSIBLE_INSTALL_REFS="([^"]*)"', containerfile, re.M).group(1)
    assert "ansible-core>=2.19" in refs and "<2.22" in refs, refs
    assert "ansible-runner==%s" % repo_pins["ansible-runner"] in refs, refs
    assert 'ARG PYCMD="/usr/bin/python3.12"' in containerfile
    # the builder stage introspects them into the wheels the final stage installs
    assert "--user-pip=requirements.txt" in _stage(containerfile, "builder")


def test_bindep_entries_are_in_the_context_and_resolve_per_platform(ee_context):
    ctx, containerfile = ee_context
    with open(str(ctx / "_build" / "bindep.txt"), encoding="utf-8") as fh:
        text = fh.read()
    with open(os.path.join(REPO, "bindep.txt"), encoding="utf-8") as fh:
        assert fh.read() == text
    assert "--user-bindep=bindep.txt" in _stage(containerfile, "builder")
    assert "install-from-bindep" in _stage(containerfile, "final")

    depends = Depends(text)  # raises on a syntax error
    rules = depends.active_rules(["platform:rpm", "platform:redhat", "platform:centos"])
    rpm = {r[0] for r in rules}
    rules = depends.active_rules(["platform:dpkg", "platform:debian"])
    dpkg = {r[0] for r in rules}
    assert {"openssh-clients", "git-core"} <= rpm, rpm
    assert {"openssh-client", "git"} <= dpkg, dpkg
    assert "openssh-client" not in rpm and "openssh-clients" not in dpkg
