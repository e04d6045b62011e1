#!/usr/bin/python3
"""Authorization plugin of the seat's own Docker daemon (docker-in-seat).

The candidate drives this daemon over tcp://dind:2375. Without this plugin a `docker run
--privileged`, a bind mount of the sidecar's root or an added capability would hand a nested
container every power the sidecar holds. dockerd asks this plugin before every API request and
refuses what no exam task needs; if the plugin is down, dockerd refuses everything (fail closed).

Protocol: https://docs.docker.com/engine/extend/plugins_authorization/ (POST /Plugin.Activate,
/AuthZPlugin.AuthZReq, /AuthZPlugin.AuthZRes; JSON; the URI comes as RequestUri, RequestBody is
base64 and present for JSON bodies only).
"""
import base64
import json
import os
import re
import socketserver
import sys
from http.server import BaseHTTPRequestHandler

SOCKET = sys.argv[1] if len(sys.argv) > 1 else "/run/docker/plugins/deploylab-seat.sock"
PREFIX = "deploylab: refused by the exam seat's policy (考位策略拒绝)"

# Host namespaces and other ways around the nested container's confinement.
HOST_MODES = ("PidMode", "IpcMode", "UTSMode", "UsernsMode", "CgroupnsMode", "NetworkMode")
EMPTY_OK = ("CapAdd", "Devices", "DeviceRequests", "DeviceCgroupRules", "Sysctls", "SecurityOpt")
STRING_UNSET = ("Runtime", "CgroupParent", "VolumeDriver")


def host_config_problems(hc):
    out = []
    if not isinstance(hc, dict):
        return out
    if hc.get("Privileged"):
        out.append("privileged containers")
    for key in EMPTY_OK:
        v = hc.get(key)
        if v:
            # no-new-privileges only ever takes power away.
            if key == "SecurityOpt" and all(re.fullmatch(r"no-new-privileges(:true|=true)?", str(s)) for s in v):
                continue
            out.append(f"{key} {json.dumps(v)[:80]}")
    for key in HOST_MODES:
        if str(hc.get(key) or "").lower() == "host":
            out.append(f"{key}=host")
    for key in STRING_UNSET:
        v = hc.get(key)
        if v and not (key == "Runtime" and v == "runc"):
            out.append(f"{key} {v}")
    # Present even as an empty list, these unmask /proc and /sys paths.
    for key in ("MaskedPaths", "ReadonlyPaths"):
        if hc.get(key) is not None:
            out.append(key)
    for b in hc.get("Binds") or []:
        if str(b).startswith("/"):
            out.append(f"bind mount {str(b).split(':')[0]}")
    for m in hc.get("Mounts") or []:
        t = (m or {}).get("Type")
        if t == "bind":
            out.append(f"bind mount {m.get('Source')}")
        if t == "volume" and ((m.get("VolumeOptions") or {}).get("DriverConfig") or {}).get("Options"):
            out.append("volume driver options")
    return out


def judge(req):
    method = req.get("RequestMethod", "")
    uri = req.get("RequestUri") or req.get("RequestURI") or ""
    path = re.sub(r"^/v[0-9.]+", "", uri.split("?", 1)[0])
    raw = req.get("RequestBody")
    body = None
    if raw:
        try:
            body = json.loads(base64.b64decode(raw))
        except ValueError:
            body = None
    problems = []
    if method == "POST" and path == "/containers/create":
        if not isinstance(body, dict):
            problems.append("a container create request the policy cannot read")
        else:
            problems += host_config_problems(body.get("HostConfig"))
    elif method == "POST" and re.fullmatch(r"/containers/[^/]+/exec", path):
        if not isinstance(body, dict) or body.get("Privileged"):
            problems.append("privileged exec")
    elif method == "POST" and path == "/volumes/create":
        if not isinstance(body, dict) or body.get("DriverOpts") or (body.get("Driver") or "local") != "local":
            problems.append("volumes with driver options (a bind of the daemon's file system)")
    elif method == "POST" and path == "/networks/create":
        if isinstance(body, dict) and (body.get("Driver") or "bridge") not in ("bridge", "null"):
            problems.append(f"network driver {body.get('Driver')}")
    elif method in ("POST", "DELETE") and (path.startswith("/plugins") or path.startswith("/swarm") or path.startswith("/services")):
        problems.append("plugins and swarm")
    if problems:
        return {"Allow": False, "Msg": f"{PREFIX}: {', '.join(problems)}"}
    return {"Allow": True}


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        try:
            req = json.loads(self.rfile.read(n) or b"{}")
        except ValueError:
            req = {}
        if self.path == "/Plugin.Activate":
            out = {"Implements": ["authz"]}
        elif self.path == "/AuthZPlugin.AuthZReq":
            out = judge(req)
            if not out["Allow"]:
                sys.stderr.write(json.dumps({"refused": req.get("RequestUri"), "why": out["Msg"]}) + "\n")
        elif self.path == "/AuthZPlugin.AuthZRes":
            out = {"Allow": True}
        else:
            out = {"Err": f"unknown call {self.path}"}
        data = json.dumps(out).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.docker.plugins.v1+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


if __name__ == "__main__":
    os.makedirs(os.path.dirname(SOCKET), exist_ok=True)
    if os.path.exists(SOCKET):
        os.unlink(SOCKET)
    srv = Server(SOCKET, Handler)
    # BaseHTTPRequestHandler wants a client address; a unix socket has none.
    srv.get_request = lambda: (srv.socket.accept()[0], ("unix", 0))
    srv.serve_forever()
