"""`make lab`'s JupyterLab, for real: it serves the chapters and runs them in this environment."""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from dpo_teach.course import REPO, load_chapters


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.status, r.read()


def test_jupyterlab_serves_the_chapters_with_this_environments_kernel(tmp_path):
    port, token = _free_port(), "dpo-teach-test"
    jupyter = Path(sys.executable).with_name("jupyter")
    env = {**os.environ, "JUPYTER_PREFER_ENV_PATH": "1", "JUPYTER_RUNTIME_DIR": str(tmp_path)}
    cmd = [str(jupyter), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           f"--ServerApp.token={token}", "--allow-root", str(REPO / "notebooks")]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):  # up to 60 s to start
            try:
                _get(f"{base}/api/status?token={token}")
                break
            except OSError:
                time.sleep(0.5)
        status, body = _get(f"{base}/api/contents/?token={token}")
        names = {item["name"] for item in json.loads(body)["content"]}
        assert {c.notebook.name for c in load_chapters(REPO)} <= names
        status, _ = _get(f"{base}/lab?token={token}")
        assert status == 200
        _, body = _get(f"{base}/api/kernelspecs?token={token}")
        spec = json.loads(body)["kernelspecs"]["python3"]["spec"]
        assert Path(spec["argv"][0]).absolute().parent == Path(sys.executable).absolute().parent  # the .venv
    finally:
        proc.terminate()
        proc.wait(timeout=30)
