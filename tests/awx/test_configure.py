# -*- coding: utf-8 -*-
"""awx/configure.yml run for real (the awx.awx modules and their HTTP calls) against a stand-in of the
controller's REST API on 127.0.0.1 (tests/awx/fake_controller.py): what it creates, with which fields,
surveys, associations and workflow edges, and that a second run changes nothing."""

from __future__ import annotations

import json
import os
import re

import pytest

from conftest import REPO, run, tool
from fake_controller import FakeController

CONFIGURE = os.path.join(REPO, "awx", "configure.yml")


def _play(fc: FakeController, extra: dict) -> tuple:
    env = dict(os.environ)
    env.setdefault("ANSIBLE_COLLECTIONS_PATH", os.path.join(REPO, ".build", "collections"))
    env.update({"CONTROLLER_HOST": fc.url, "CONTROLLER_USERNAME": "admin", "CONTROLLER_PASSWORD": "secret",
                "CONTROLLER_VERIFY_SSL": "false", "ANSIBLE_NOCOLOR": "1", "ANSIBLE_LOCALHOST_WARNING": "false",
                "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false"})
    proc = run([tool("ansible-playbook"), CONFIGURE, "-e", json.dumps(extra)], env=env)
    recap = re.search(r"localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", proc.stdout)
    return proc, recap


@pytest.fixture(scope="module")
def configured():
    with FakeController() as fc:
        st = fc.store
        st.add("organizations", {"name": "Default"})
        org = st.add("organizations", {"name": "Infrastructure"})
        cred = st.add("credentials", {"name": "xen-root-ssh", "organization": org["id"]})
        group = st.add("instance_groups", {"name": "xen-dc1"})
        extra = {"xenkdump_awx_organization": "Infrastructure",
                 "xenkdump_awx_credentials": ["xen-root-ssh"],
                 "xenkdump_awx_instance_groups": ["xen-dc1"],
                 "xenkdump_awx_inventory_source_path": "inventories/xen.ini",
                 "xenkdump_awx_audit_slices": 8}
        first, recap1 = _play(fc, extra)
        assert first.returncode == 0, first.stdout[-6000:] + first.stderr[-3000:]
        snapshot = {c: dict(items) for c, items in st.items.items()}
        second, recap2 = _play(fc, extra)
        assert second.returncode == 0, second.stdout[-6000:] + second.stderr[-3000:]
        yield {"store": st, "org": org, "cred": cred, "group": group, "recap1": recap1, "recap2": recap2,
               "snapshot": snapshot, "second": second}


def _one(st, coll, name):
    obj = st.find(coll, name)
    assert obj is not None, "%s %r not created: %s" % (coll, name, [o.get("name") for o in st.items[coll].values()])
    return obj


def test_creates_project_inventory_source_and_ee(configured):
    st, org = configured["store"], configured["org"]
    ee = _one(st, "execution_environments", "xenkdump.fleet EE")
    assert ee["image"].endswith("fleet-ee:0.1.0") and ee["pull"] == "missing" and ee["organization"] == org["id"]
    project = _one(st, "projects", "xenkdump.fleet")
    assert project["organization"] == org["id"] and project["scm_type"] == "git"
    assert project["scm_update_on_launch"] is True and project["default_environment"] == ee["id"]
    inv = _one(st, "inventories", "Xen fleet")
    assert inv["organization"] == org["id"]
    src = _one(st, "inventory_sources", "Xen fleet from xenkdump.fleet")
    assert (src["inventory"], src["source"], src["source_project"], src["source_path"]) == (
        inv["id"], "scm", project["id"], "inventories/xen.ini")


def test_job_templates_fields_surveys_and_associations(configured):
    st, cred, group = configured["store"], configured["cred"], configured["group"]
    project = _one(st, "projects", "xenkdump.fleet")
    ee = _one(st, "execution_environments", "xenkdump.fleet EE")
    inv = _one(st, "inventories", "Xen fleet")
    expect = {"xenkdump audit": ("playbooks/audit.yml", 8),
              "xenkdump rollout": ("playbooks/site.yml", 1),
              "xenkdump fire drill": ("playbooks/fire_drill.yml", 1)}
    for name, (playbook, slices) in expect.items():
        jt = _one(st, "job_templates", name)
        assert (jt["playbook"], jt["job_slice_count"], jt["project"], jt["inventory"], jt["execution_environment"]) == (
            playbook, slices, project["id"], inv["id"], ee["id"]), jt
        assert jt["become_enabled"] is True and jt["forks"] == 50
        assert st.links[("job_templates", jt["id"], "credentials")] == [cred["id"]]
        assert st.links[("job_templates", jt["id"], "instance_groups")] == [group["id"]]
    audit = _one(st, "job_templates", "xenkdump audit")
    extra = json.loads(audit["extra_vars"]) if isinstance(audit["extra_vars"], str) else audit["extra_vars"]
    # the audit's report directory reaches the controller untemplated: Ansible templates it in the job
    assert "{{ awx_job_id" in extra["xenkdump_audit_dir"]
    rollout = _one(st, "job_templates", "xenkdump rollout")
    assert rollout["survey_enabled"] is True and rollout["ask_job_type_on_launch"] is True
    spec = st.surveys[("job_templates", rollout["id"])]
    assert [q["variable"] for q in spec["spec"]] == ["xenkdump_canary", "xenkdump_batch",
                                                     "xenkdump_max_fail_percentage", "xenkdump_reboot_ok"]
    drill = _one(st, "job_templates", "xenkdump fire drill")
    assert drill["survey_enabled"] is True and drill["ask_limit_on_launch"] is False
    questions = {q["variable"]: q for q in st.surveys[("job_templates", drill["id"])]["spec"]}
    assert questions["xenkdump_fire_drill_confirm"]["required"] is True
    assert ("job_templates", audit["id"]) not in st.surveys and not audit.get("survey_enabled")


def test_workflow_graph_in_the_controller(configured):
    st = configured["store"]
    wf = _one(st, "workflow_job_templates", "xenkdump audit, rollout, verify")
    nodes = {n["identifier"]: n for n in st.items["workflow_job_template_nodes"].values()
             if n.get("workflow_job_template") == wf["id"]}
    assert set(nodes) == {"audit", "rollout", "verify"}
    jts = {o["id"]: o["name"] for o in st.items["job_templates"].values()}
    assert {i: jts[n["unified_job_template"]] for i, n in nodes.items()} == {
        "audit": "xenkdump audit", "rollout": "xenkdump rollout", "verify": "xenkdump audit"}
    by_id = {n["id"]: i for i, n in nodes.items()}
    edges = {i: [by_id[m] for m in st.links.get(("workflow_job_template_nodes", n["id"], "success_nodes"), [])]
             for i, n in nodes.items()}
    assert edges == {"audit": ["rollout"], "rollout": ["verify"], "verify": []}


def test_second_run_changes_nothing(configured):
    recap1, recap2 = configured["recap1"], configured["recap2"]
    assert recap1 and int(recap1.group(2)) > 0
    assert recap2 and int(recap2.group(2)) == 0 and int(recap2.group(4)) == 0, configured["second"].stdout[-4000:]
    st = configured["store"]
    assert {c: sorted(items) for c, items in st.items.items()} == {
        c: sorted(items) for c, items in configured["snapshot"].items()}
