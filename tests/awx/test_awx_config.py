# -*- coding: utf-8 -*-
"""awx/configure.yml and awx/vars/main.yml: the playbook parses, every option it gives an awx.awx
module exists in that module's documented argument spec (suboptions of the workflow graph included),
the workflow is audit -> rollout -> verify, and every survey / extra variable of a job template is a
documented variable of the role or of the template's playbook, with a compatible type and default."""

from __future__ import annotations

import json
import os
import re
from typing import Any, Dict, List, Set

import pytest
import yaml

from conftest import REPO, load_vars, run, tool

CONFIGURE = os.path.join(REPO, "awx", "configure.yml")
ROLE_SPECS = os.path.join(REPO, "roles", "kdump", "meta", "argument_specs.yml")
# playbooks that apply the role (its argument spec documents their variables too)
PLAYBOOK_ROLES = {"playbooks/site.yml": ROLE_SPECS}
SURVEY_TYPES = {"text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect"}


def _env() -> Dict[str, str]:
    env = dict(os.environ)
    env.setdefault("ANSIBLE_COLLECTIONS_PATH", os.path.join(REPO, ".build", "collections"))
    env["ANSIBLE_NOCOLOR"] = "1"
    return env


@pytest.fixture(scope="module")
def awx_docs() -> Dict[str, Dict[str, Any]]:
    """ansible-doc --json of every awx.awx module configure.yml uses."""
    modules = sorted({t["module"] for t in _awx_tasks()})
    proc = run([tool("ansible-doc"), "--json", "-t", "module"] + ["awx.awx." + m for m in modules], env=_env())
    assert proc.returncode == 0, (
        "awx.awx is not installed (scripts/test awx installs it with scripts/lib/awx_collection.sh): "
        + proc.stderr[-2000:])
    docs = json.loads(proc.stdout)
    return {name.split(".")[-1]: value["doc"] for name, value in docs.items()}


def _awx_tasks() -> List[Dict[str, Any]]:
    with open(CONFIGURE, encoding="utf-8") as fh:
        plays = yaml.safe_load(fh)
    tasks = []
    for play in plays:
        for task in play.get("tasks", []):
            for key, args in task.items():
                if key.startswith("awx.awx."):
                    tasks.append({"name": task["name"], "module": key[len("awx.awx."):], "args": args})
    return tasks


def _check_against_spec(value: Any, options: Dict[str, Any], where: str, errors: List[str]) -> None:
    """Keys of `value` must be options (or aliases); recurse into documented suboptions."""
    names = {}
    for opt, spec in options.items():
        names[opt] = spec
        for alias in spec.get("aliases", []) or []:
            names[alias] = spec
    for key, sub in value.items():
        if key not in names:
            errors.append("%s: unknown option %r (known: %s)" % (where, key, ", ".join(sorted(options))))
            continue
        spec = names[key]
        if isinstance(sub, str) and "{{" in sub:
            continue  # templated at run time; its type is the module's to check
        if "choices" in spec and sub not in spec["choices"]:
            errors.append("%s.%s: %r not in %s" % (where, key, sub, spec["choices"]))
        subopts = spec.get("suboptions")
        if not subopts:
            continue
        if spec.get("type") == "list" and isinstance(sub, list):
            for i, elem in enumerate(sub):
                if isinstance(elem, dict):
                    _check_against_spec(elem, subopts, "%s.%s[%d]" % (where, key, i), errors)
        elif isinstance(sub, dict):
            _check_against_spec(sub, subopts, "%s.%s" % (where, key), errors)


def _documented_playbook_vars(playbook: str) -> Set[str]:
    """Variables named in a playbook's header comment (its user documentation)."""
    names: Set[str] = set()
    with open(os.path.join(REPO, playbook), encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("---"):
                continue
            if not line.startswith("#"):
                break
            names.update(re.findall(r"\bxenkdump_\w+", line))
    return names


def _role_options(path: str) -> Dict[str, Dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)["argument_specs"]["main"]["options"]


def test_configure_playbook_syntax_check():
    proc = run([tool("ansible-playbook"), "--syntax-check", CONFIGURE], env=_env())
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_awx_option_is_in_the_module_argument_spec(awx_docs, awx_vars):
    errors: List[str] = []
    tasks = _awx_tasks()
    assert {t["module"] for t in tasks} >= {"project", "inventory", "execution_environment", "job_template",
                                            "workflow_job_template"}
    for task in tasks:
        _check_against_spec(task["args"], awx_docs[task["module"]]["options"], task["name"], errors)
    # the values configure.yml feeds in from awx/vars/main.yml, checked against the same spec
    wjt = awx_docs["workflow_job_template"]["options"]
    _check_against_spec({"workflow_nodes": awx_vars["xenkdump_awx_workflow"]["nodes"]}, wjt, "workflow", errors)
    jt = awx_docs["job_template"]["options"]
    for tmpl in awx_vars["xenkdump_awx_job_templates"]:
        assert tmpl["job_type"] in jt["job_type"]["choices"], tmpl["name"]
    assert errors == []


def test_module_defaults_group_exists(awx_docs):
    with open(os.path.join(REPO, ".build", "collections", "ansible_collections", "awx", "awx", "meta",
                           "runtime.yml"), encoding="utf-8") as fh:
        group = yaml.safe_load(fh)["action_groups"]["controller"]
    for module in awx_docs:
        assert module in group, module


def test_workflow_is_audit_then_rollout_then_verify(awx_vars):
    templates = {t["name"]: t for t in awx_vars["xenkdump_awx_job_templates"]}
    nodes = {n["identifier"]: n for n in awx_vars["xenkdump_awx_workflow"]["nodes"]}
    edges = {ident: [s["identifier"] for s in n.get("related", {}).get("success_nodes", [])]
             for ident, n in nodes.items()}
    assert edges == {"audit": ["rollout"], "rollout": ["verify"], "verify": []}
    playbooks = {}
    for ident, node in nodes.items():
        ujt = node["unified_job_template"]
        assert ujt["type"] == "job_template"
        assert ujt["name"] in templates, ujt["name"]
        playbooks[ident] = templates[ujt["name"]]["playbook"]
    assert playbooks == {"audit": "playbooks/audit.yml", "rollout": "playbooks/site.yml",
                         "verify": "playbooks/audit.yml"}


def test_templates_cover_audit_rollout_fire_drill_and_slice_the_audit(awx_vars):
    by_playbook = {t["playbook"]: t for t in awx_vars["xenkdump_awx_job_templates"]}
    assert set(by_playbook) == {"playbooks/audit.yml", "playbooks/site.yml", "playbooks/fire_drill.yml"}
    for playbook in by_playbook:
        assert os.path.isfile(os.path.join(REPO, playbook)), playbook
    assert by_playbook["playbooks/audit.yml"]["job_slice_count"] == "{{ xenkdump_awx_audit_slices }}"
    assert int(awx_vars["xenkdump_awx_audit_slices"]) > 1
    # one canary per rollout, one crash per confirmation: those two are not sliced by default
    assert int(awx_vars["xenkdump_awx_rollout_slices"]) == 1
    assert by_playbook["playbooks/fire_drill.yml"]["job_slice_count"] == 1
    # the fire drill picks its hosts from the survey, never from a launch-time limit
    assert by_playbook["playbooks/fire_drill.yml"]["ask_limit_on_launch"] is False


def _check_survey_question(q: Dict[str, Any], where: str, errors: List[str]) -> None:
    for key in ("question_name", "variable", "type", "required"):
        if key not in q:
            errors.append("%s: missing %s" % (where, key))
    if q.get("type") not in SURVEY_TYPES:
        errors.append("%s: survey type %r" % (where, q.get("type")))
    default = q.get("default")
    if q.get("type") == "integer":
        if not isinstance(default, int):
            errors.append("%s: integer default %r" % (where, default))
        elif not q.get("min", default) <= default <= q.get("max", default):
            errors.append("%s: default %r outside [%s, %s]" % (where, default, q.get("min"), q.get("max")))
    if q.get("type") in ("multiplechoice", "multiselect"):
        if not q.get("choices") or default not in q["choices"]:
            errors.append("%s: default %r not among choices %r" % (where, default, q.get("choices")))
    if q.get("type") == "text" and default:
        if not q.get("min", 0) <= len(default) <= q.get("max", 1024):
            errors.append("%s: default %r violates the length limits" % (where, default))


def _compatible(q: Dict[str, Any], spec: Dict[str, Any]) -> bool:
    """Can AWX's answer (a string for text/choices, an int for integer) be the documented type?"""
    want = spec.get("type", "str")
    if q["type"] == "integer":
        return want in ("int", "raw")
    if q["type"] == "multiplechoice" and want == "bool":
        # AWX answers strings: "true"/"false" are what `| bool` and the argument spec accept
        return set(q["choices"]) <= {"true", "false", "yes", "no"}
    if q["type"] == "multiplechoice" and spec.get("choices"):
        return set(q["choices"]) <= set(spec["choices"])
    return want in ("str", "path", "raw")


def test_every_survey_and_extra_variable_is_documented(awx_vars):
    role = _role_options(ROLE_SPECS)
    errors: List[str] = []
    checked = 0
    for tmpl in awx_vars["xenkdump_awx_job_templates"]:
        playbook = tmpl["playbook"]
        documented = _documented_playbook_vars(playbook)
        role_vars = _role_options(PLAYBOOK_ROLES[playbook]) if playbook in PLAYBOOK_ROLES else {}
        seen = set()
        for i, q in enumerate(tmpl["survey"]):
            where = "%s survey[%d] %s" % (tmpl["name"], i, q.get("variable"))
            _check_survey_question(q, where, errors)
            var = q.get("variable")
            if var in seen:
                errors.append("%s: asked twice" % where)
            seen.add(var)
            checked += 1
            if var in role_vars:
                if not _compatible(q, role_vars[var]):
                    errors.append("%s: survey %s vs role type %s" % (where, q["type"], role_vars[var].get("type")))
                if q["type"] == "multiplechoice" and role_vars[var].get("type") == "bool":
                    if str(q["default"]).lower() != str(role_vars[var].get("default")).lower():
                        errors.append("%s: default %r, role default %r" % (where, q["default"],
                                                                           role_vars[var].get("default")))
            elif var not in documented:
                errors.append("%s: not documented in %s's header nor in %s" % (
                    where, playbook, os.path.relpath(ROLE_SPECS, REPO) if role_vars else "a role argument spec"))
        for var in tmpl.get("extra_vars", {}):
            checked += 1
            if var not in documented and var not in role_vars:
                errors.append("%s extra_vars %s: not documented in %s" % (tmpl["name"], var, playbook))
    assert checked >= 8
    assert role, "roles/kdump/meta/argument_specs.yml has no options"
    assert errors == []


def test_fire_drill_survey_asks_hosts_twice_without_defaults(awx_vars):
    drill = [t for t in awx_vars["xenkdump_awx_job_templates"] if t["playbook"] == "playbooks/fire_drill.yml"][0]
    questions = {q["variable"]: q for q in drill["survey"]}
    for var in ("xenkdump_fire_drill_hosts", "xenkdump_fire_drill_confirm"):
        assert questions[var]["required"] is True
        assert questions[var]["default"] == ""
        assert questions[var]["type"] == "text"


def test_rollout_survey_asks_batch_size_and_reboot(awx_vars):
    site = [t for t in awx_vars["xenkdump_awx_job_templates"] if t["playbook"] == "playbooks/site.yml"][0]
    questions = {q["variable"]: q for q in site["survey"]}
    assert {"xenkdump_batch", "xenkdump_canary", "xenkdump_reboot_ok"} <= set(questions)
    assert questions["xenkdump_reboot_ok"]["default"] == "false"


def test_vars_file_loads_like_ansible_does():
    """The !unsafe tag is Ansible's; a plain YAML load of the vars file must keep the string intact."""
    data = load_vars(os.path.join(REPO, "awx", "vars", "main.yml"))
    audit = [t for t in data["xenkdump_awx_job_templates"] if t["playbook"] == "playbooks/audit.yml"][0]
    assert "{{ awx_job_id" in audit["extra_vars"]["xenkdump_audit_dir"]
