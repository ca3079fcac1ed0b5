# -*- coding: utf-8 -*-
"""A small stand-in for the AWX REST API (/api/v2/), enough for awx.awx's modules to run for real.

Generic REST semantics over an in-memory store: list with field filters (and ``or__`` filters), create,
read, patch, delete; association sub-lists (POST {"id": N[, "disassociate": true]}); survey_spec;
workflow nodes; unified_job_templates as a read-only union; OAuth token create/delete; the product
headers. Objects carry ``url``, ``type``, ``related`` and ``summary_fields`` like the real API.
It records every request, so a test can check what configure.yml asked the controller to do.
It listens on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import parse_qsl, urlsplit

TYPES = {
    "organizations": "organization", "projects": "project", "inventories": "inventory",
    "inventory_sources": "inventory_source", "execution_environments": "execution_environment",
    "job_templates": "job_template", "workflow_job_templates": "workflow_job_template",
    "workflow_job_template_nodes": "workflow_job_template_node", "credentials": "credential",
    "instance_groups": "instance_group", "labels": "label", "project_updates": "project_update",
    "notification_templates": "notification_template",
}
# association sub-lists and the collection their members live in
ASSOCIATIONS = {
    "credentials": "credentials", "instance_groups": "instance_groups", "labels": "labels",
    "notification_templates_started": "notification_templates",
    "notification_templates_success": "notification_templates",
    "notification_templates_error": "notification_templates",
    "notification_templates_approvals": "notification_templates",
    "success_nodes": "workflow_job_template_nodes", "failure_nodes": "workflow_job_template_nodes",
    "always_nodes": "workflow_job_template_nodes", "galaxy_credentials": "credentials",
}
UNIFIED = ("job_templates", "workflow_job_templates", "projects", "inventory_sources")


class Store:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.next_id = 1
        self.items: Dict[str, Dict[int, Dict[str, Any]]] = {c: {} for c in TYPES}
        self.links: Dict[Tuple[str, int, str], List[int]] = {}
        self.surveys: Dict[Tuple[str, int], Dict[str, Any]] = {}
        self.requests: List[Tuple[str, str, Any]] = []

    def add(self, coll: str, fields: Dict[str, Any]) -> Dict[str, Any]:
        oid = self.next_id
        self.next_id += 1
        obj = dict(fields)
        obj.update(id=oid, url="/api/v2/%s/%d/" % (coll, oid), type=TYPES[coll])
        if coll == "projects":
            obj.setdefault("scm_revision", "0123abcd")
            update = self.add("project_updates", {"name": obj.get("name"), "status": "successful",
                                                  "scm_revision": "0123abcd"})
            obj["_current_update"] = update["id"]
        self.items[coll][oid] = obj
        return obj

    def find(self, coll: str, name: str) -> Optional[Dict[str, Any]]:
        for obj in self.items[coll].values():
            if obj.get("name") == name:
                return obj
        return None

    def render(self, coll: str, obj: Dict[str, Any]) -> Dict[str, Any]:
        out = {k: v for k, v in obj.items() if not k.startswith("_")}
        base = obj["url"]
        related = {name: "%s%s/" % (base, name) for name in ASSOCIATIONS}
        related.update(survey_spec=base + "survey_spec/", workflow_nodes=base + "workflow_nodes/",
                       update=base + "update/")
        if coll == "workflow_job_template_nodes" and obj.get("unified_job_template"):
            ujt = obj["unified_job_template"]
            for ucoll in UNIFIED:
                if ujt in self.items[ucoll]:
                    related["unified_job_template"] = "/api/v2/%s/%d/" % (ucoll, ujt)
        out["related"] = related
        out["summary_fields"] = {}
        if "_current_update" in obj:
            out["summary_fields"]["current_update"] = {"id": obj["_current_update"]}
        return out


def _matches(obj: Dict[str, Any], query: Dict[str, str]) -> bool:
    ors = {k[4:]: v for k, v in query.items() if k.startswith("or__")}
    if ors and not any(str(obj.get(k)) == v for k, v in ors.items()):
        return False
    for key, value in query.items():
        if key.startswith("or__") or key in ("page", "page_size", "order_by"):
            continue
        have = obj.get(key)
        if have is None and value in ("", "None", "null"):
            continue
        if str(have) != value:
            return False
    return True


class Handler(BaseHTTPRequestHandler):
    store: Store = None  # type: ignore[assignment]

    def log_message(self, format, *args):  # noqa: A002 - http.server's signature
        pass

    def _send(self, code: int, body: Any = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-API-Product-Name", "AWX")
        self.send_header("X-API-Product-Version", "24.6.1")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return json.loads(raw) if raw else {}

    def _route(self, method: str) -> None:
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        segs = [s for s in parts.path.split("/") if s]
        body = self._body() if method in ("POST", "PATCH", "PUT") else None
        st = self.store
        with st.lock:
            st.requests.append((method, parts.path, body))
            if segs[:2] != ["api", "v2"]:
                return self._send(404, {"detail": "Not found."})
            segs = segs[2:]
            if segs == ["tokens"] and method == "POST":
                return self._send(201, {"id": 4242, "token": "fake-token"})
            if segs[:1] == ["tokens"] and method == "DELETE":
                return self._send(204)
            if segs in (["ping"], ["config"], ["me"]):
                return self._send(200, {"version": "24.6.1", "results": [{"id": 1, "username": "admin"}]})
            coll = segs[0]
            if coll == "unified_job_templates" and method == "GET":
                results = []
                for ucoll in UNIFIED:
                    for obj in st.items[ucoll].values():
                        if _matches(obj, query):
                            results.append(st.render(ucoll, obj))
                return self._send(200, {"count": len(results), "results": results, "next": None})
            if coll not in TYPES:
                return self._send(404, {"detail": "Not found: %s" % coll})
            if len(segs) == 1:
                if method == "GET":
                    results = [st.render(coll, o) for o in st.items[coll].values() if _matches(o, query)]
                    return self._send(200, {"count": len(results), "results": results, "next": None})
                if method == "POST":
                    if "name" in body and coll != "workflow_job_template_nodes" and any(
                            o.get("name") == body["name"] and o.get("organization") == body.get("organization")
                            for o in st.items[coll].values()):
                        return self._send(400, {"__all__": ["%s with this name already exists." % coll]})
                    return self._send(201, st.render(coll, st.add(coll, body)))
                return self._send(405)
            oid = int(segs[1])
            obj = st.items[coll].get(oid)
            if obj is None:
                return self._send(404, {"detail": "Not found."})
            if len(segs) == 2:
                if method == "GET":
                    return self._send(200, st.render(coll, obj))
                if method in ("PATCH", "PUT"):
                    obj.update(body)
                    return self._send(200, st.render(coll, obj))
                if method == "DELETE":
                    del st.items[coll][oid]
                    return self._send(204)
                return self._send(405)
            sub = segs[2]
            if sub == "survey_spec":
                if method == "GET":
                    return self._send(200, st.surveys.get((coll, oid), {}))
                if method == "POST":
                    if not body.get("spec"):  # as the controller's survey validation does
                        return self._send(400, {"error": "'spec' doesn't contain any items."})
                    st.surveys[(coll, oid)] = body
                    return self._send(200, body)
                if method == "DELETE":
                    st.surveys.pop((coll, oid), None)
                    return self._send(204)
            if sub == "workflow_nodes" and coll == "workflow_job_templates":
                nodes = st.items["workflow_job_template_nodes"]
                if method == "GET":
                    q = dict(query, workflow_job_template=str(oid))
                    results = [st.render("workflow_job_template_nodes", n) for n in nodes.values() if _matches(n, q)]
                    return self._send(200, {"count": len(results), "results": results, "next": None})
                if method == "POST":
                    body["workflow_job_template"] = oid
                    return self._send(201, st.render("workflow_job_template_nodes",
                                                     st.add("workflow_job_template_nodes", body)))
            if sub == "update" and coll == "projects" and method == "POST":
                update = st.add("project_updates", {"name": obj.get("name"), "status": "successful",
                                                    "scm_revision": obj.get("scm_revision")})
                return self._send(202, {"id": update["id"], "url": update["url"]})
            if sub in ASSOCIATIONS:
                key = (coll, oid, sub)
                members = st.links.setdefault(key, [])
                if method == "GET":
                    target = ASSOCIATIONS[sub]
                    results = [st.render(target, st.items[target][m]) for m in members if m in st.items[target]]
                    return self._send(200, {"count": len(results), "results": results, "next": None})
                if method == "POST":
                    if body.get("disassociate"):
                        if body["id"] in members:
                            members.remove(body["id"])
                    elif body["id"] not in members:
                        members.append(body["id"])
                    return self._send(204)
            return self._send(404, {"detail": "Not found: %s" % self.path})

    def do_GET(self):  # noqa: N802 - http.server's names
        self._route("GET")

    def do_POST(self):  # noqa: N802
        self._route("POST")

    def do_PATCH(self):  # noqa: N802
        self._route("PATCH")

    def do_PUT(self):  # noqa: N802
        self._route("PUT")

    def do_DELETE(self):  # noqa: N802
        self._route("DELETE")

    def do_HEAD(self):  # noqa: N802
        self._send(200)


class FakeController:
    """with FakeController() as fc: fc.url, fc.store"""

    def __init__(self) -> None:
        self.store = Store()
        handler = type("BoundHandler", (Handler,), {"store": self.store})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "FakeController":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
