# -*- coding: utf-8 -*-
"""Each job template's playbook, run by ansible-runner the way AWX runs a job: a private data dir with
project/ (the project's checkout), inventory/, env/extravars (the template's extra vars, the survey's
answers and AWX's own awx_* variables), env/envvars and env/cmdline (job type, become, forks), and the
collection installed from its tarball the way the execution environment carries it.

Against what: this machine is not a Xen dom0. The audit must report that, not fail; the rollout runs
in check mode (the job type AWX offers for a preview) with connection=local; the fire drill must refuse
without an exact confirmation, before it touches any host."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional

import ansible_runner
import pytest

from conftest import BIN, REPO

EXTRA = ("Refusing to crash anything",)


def _template(awx_vars, playbook: str) -> Dict[str, Any]:
    return [t for t in awx_vars["xenkdump_awx_job_templates"] if t["playbook"] == playbook][0]


def _checkout(dest: str) -> None:
    """What AWX's project update leaves in project/: the files of the repository."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True,
                           capture_output=True).stdout.decode().split("\0")
    for rel in files:
        if not rel or rel.startswith(("tests/", "lab/", "molecule/")):
            continue
        src = os.path.join(REPO, rel)
        if os.path.isfile(src):
            os.makedirs(os.path.dirname(os.path.join(dest, rel)), exist_ok=True)
            shutil.copy2(src, os.path.join(dest, rel))


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> str:
    dest = str(tmp_path_factory.mktemp("scm") / "project")
    _checkout(dest)
    return dest


def launch(tmp_path, project: str, ee_collections: str, template: Dict[str, Any],
           answers: Optional[Dict[str, Any]] = None, job_type: Optional[str] = None, job_id: int = 101,
           envvars: Optional[Dict[str, str]] = None, inventory: Optional[str] = None):
    """Launch `template` like AWX: JT extra vars < survey defaults < the user's answers; awx_* vars."""
    pdd = tmp_path / "pdd"
    (pdd / "env").mkdir(parents=True)
    (pdd / "inventory").mkdir()
    shutil.copytree(project, str(pdd / "project"), symlinks=True)
    # localhost as one member of the fleet; no sudo on this machine: root su's to root
    (pdd / "inventory" / "hosts").write_text(inventory or (
        "[xen]\nlocalhost ansible_connection=local ansible_python_interpreter=%s ansible_become_method=su\n"
        % sys.executable))
    extravars: Dict[str, Any] = dict(template.get("extra_vars") or {})
    for q in template.get("survey", []):
        extravars[q["variable"]] = q.get("default")
    extravars.update(answers or {})
    extravars.update({"awx_job_id": job_id, "awx_job_template_name": template["name"],
                      "awx_job_launch_type": "manual", "tower_job_id": job_id})
    (pdd / "env" / "extravars").write_text(json.dumps(extravars))
    env = {"ANSIBLE_COLLECTIONS_PATH": ee_collections, "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_FORCE_COLOR": "0", "PATH": BIN + os.pathsep + os.environ.get("PATH", "")}
    env.update(envvars or {})
    (pdd / "env" / "envvars").write_text(json.dumps(env))
    cmdline: List[str] = ["--forks", "50"]
    if (job_type or template["job_type"]) == "check":
        cmdline.append("--check")
    if template.get("become_enabled"):
        cmdline.append("--become")
    (pdd / "env" / "cmdline").write_text(" ".join(cmdline))
    old_path = os.environ.get("PATH", "")
    os.environ["PATH"] = env["PATH"]  # ansible-runner finds ansible-playbook on PATH
    try:
        result = ansible_runner.run(private_data_dir=str(pdd), playbook=template["playbook"], quiet=True,
                                    timeout=600)
    finally:
        os.environ["PATH"] = old_path
    stdout = result.stdout.read()
    return result, stdout, list(result.events)


def _task_names(events) -> List[str]:
    return [e["event_data"].get("task") for e in events if e.get("event") == "runner_on_ok"]


def test_audit_reports_a_non_dom0_and_succeeds(tmp_path, project, ee_collections, awx_vars):
    tmpl = _template(awx_vars, "playbooks/audit.yml")
    root = tmp_path / "reports"
    result, stdout, dummy = launch(tmp_path, project, ee_collections, tmpl, job_id=4242,
                                   envvars={"XENKDUMP_AUDIT_ROOT": str(root)})
    assert result.status == "successful" and result.rc == 0, stdout[-6000:]
    # the template's templated report directory: one per job (every slice has its own job id)
    report = root / "job-4242" / "xenkdump-audit.json"
    assert report.is_file(), stdout[-3000:]
    rows = json.loads(report.read_text())["hosts"]
    assert [r["host"] for r in rows] == ["localhost"]
    assert rows[0]["reachable"] is True and rows[0]["is_dom0"] is False, rows[0]
    assert (root / "job-4242" / "xenkdump-audit.html").is_file()
    assert result.stats["failures"] == {} and result.stats["dark"] == {}, result.stats


SITE_IMAGE = os.environ.get("XENKDUMP_AWX_SITE_IMAGE", "localhost/xenkdump-bookworm:latest")
SNAPSHOT = ("find /etc /usr /var/lib/dpkg /boot /var/crash -xdev -type f -print0 2>/dev/null | sort -z"
            " | xargs -0 -r sha256sum; find /etc /usr /var/lib/dpkg /boot /var/crash -xdev"
            " -printf '%p %m %u %y %l\\n' 2>/dev/null | sort")


def _podman(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["podman"] + list(argv), capture_output=True, text=True, check=check)


@pytest.fixture()
def debian_host():
    """A Debian 12 host running systemd (podman, the molecule image built by molecule/images/build.sh):
    not a Xen dom0, like most of what a fleet inventory may catch by mistake."""
    if shutil.which("podman") is None or _podman("image", "exists", SITE_IMAGE, check=False).returncode != 0:
        pytest.fail("podman image %s missing: scripts/test awx builds it with molecule/images/build.sh bookworm"
                    % SITE_IMAGE)
    name = "xenkdump-awx-site-%d" % os.getpid()
    _podman("rm", "-f", name, check=False)
    _podman("run", "-d", "--name", name, "--hostname", name, "--runtime", "runc", "--systemd=always",
            "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096", "--tmpfs", "/tmp:rw,exec",
            SITE_IMAGE, "/sbin/init")
    try:
        state = ""
        for dummy in range(60):  # the bus appears a moment after the container starts
            state = _podman("exec", name, "systemctl", "is-system-running", "--wait", check=False).stdout.strip()
            if state in ("running", "degraded"):
                break
            time.sleep(0.5)
        assert state in ("running", "degraded"), state
        yield name
    finally:
        _podman("rm", "-f", name, check=False)


def test_rollout_in_check_mode_on_a_non_dom0_changes_nothing(tmp_path, project, ee_collections, awx_vars, debian_host):
    tmpl = _template(awx_vars, "playbooks/site.yml")
    inventory = ("[xen]\n%s ansible_connection=containers.podman.podman ansible_python_interpreter=/usr/bin/python3"
                 " ansible_pipelining=true\n" % debian_host)
    before = _podman("exec", debian_host, "sh", "-c", SNAPSHOT).stdout
    result, stdout, events = launch(tmp_path, project, ee_collections, tmpl, job_type="check", inventory=inventory,
                                    answers={"xenkdump_batch": "50%", "xenkdump_reboot_ok": "false"})
    assert result.status == "successful" and result.rc == 0, stdout[-8000:]
    assert "%s: not a dom0" % debian_host in stdout, stdout[-3000:]
    assert result.stats["failures"] == {} and result.stats["dark"] == {}, result.stats
    after = _podman("exec", debian_host, "sh", "-c", SNAPSHOT).stdout
    assert before and after == before, "check mode changed files on the host"


@pytest.mark.parametrize("answers", [
    {},                                                                        # survey defaults: empty
    {"xenkdump_fire_drill_hosts": "localhost", "xenkdump_fire_drill_confirm": ""},
    {"xenkdump_fire_drill_hosts": "localhost", "xenkdump_fire_drill_confirm": "localhost,otherhost"},
    {"xenkdump_fire_drill_hosts": "localhost,otherhost", "xenkdump_fire_drill_confirm": "localhost"},
], ids=["defaults", "no-confirmation", "confirm-more", "confirm-fewer"])
def test_fire_drill_refuses_without_exact_confirmation(tmp_path, project, ee_collections, awx_vars, answers):
    tmpl = _template(awx_vars, "playbooks/fire_drill.yml")
    result, stdout, events = launch(tmp_path, project, ee_collections, tmpl, answers=answers)
    assert result.status == "failed" and result.rc != 0, stdout[-4000:]
    assert "Refusing to crash anything" in stdout, stdout[-4000:]
    # nothing ran against any host: no Xen facts, no crash scheduled
    hosts_touched = {e["event_data"].get("host") for e in events
                     if e.get("event", "").startswith("runner_on_") and e["event_data"].get("play", "").startswith(
                         "Fire drill | crash")}
    assert hosts_touched == set(), hosts_touched
    assert not any("debug-keys" in (e.get("stdout") or "") for e in events)
