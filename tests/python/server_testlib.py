"""Helpers for the `tern serve` tests: start a server on a free port, talk HTTP to it."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import threading
import time

from tern_testlib import TERN


class Server:
    """`tern serve MODEL --port 0 ARGS...` as a subprocess; .port once it printed its line."""

    def __init__(self, model, *args, env=None):
        self.cmd = [str(TERN), "serve", str(model), "--port", "0", *map(str, args)]
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env)
        self.stderr_lines: list[str] = []
        self.port = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            self.stderr_lines.append(line)
            m = re.fullmatch(r"listening on http://127\.0\.0\.1:(\d+)\n", line)
            if m:
                self.port = int(m.group(1))
                break
        if self.port is None:
            self.proc.kill()
            raise AssertionError(f"{self.cmd} did not print its listening line:\n"
                                 + "".join(self.stderr_lines) + self.proc.stderr.read())
        self._drain = threading.Thread(target=self._read_stderr, daemon=True)
        self._drain.start()

    def _read_stderr(self):
        for line in self.proc.stderr:
            self.stderr_lines.append(line)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def alive(self):
        return self.proc.poll() is None

    def request(self, method, path, body=None, headers=None, timeout=120):
        """-> (status, parsed JSON or text). body: dict/list (JSON), bytes or str (raw)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            h = dict(headers or {})
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
                h.setdefault("Content-Type", "application/json")
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            data = r.read()
            ctype = r.getheader("Content-Type", "")
            return r.status, (json.loads(data) if "json" in ctype and data else data.decode())
        finally:
            conn.close()

    def post(self, path, body, **kw):
        return self.request("POST", path, body, **kw)

    def metrics(self, headers=None):
        status, text = self.request("GET", "/metrics", headers=headers)
        assert status == 200, text
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """Sends sig, returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("the server did not exit after " + sig.name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._drain.join(timeout=5)
        self.proc.stdout.close()
        self.proc.stderr.close()


def raw_exchange(port, data: bytes, timeout=10.0, pace=None) -> bytes:
    """Sends raw bytes (optionally one chunk per `pace` seconds), returns what comes back."""
    import socket
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        if pace is None:
            s.sendall(data)
        else:
            for i in range(len(data)):
                try:
                    s.sendall(data[i:i + 1])
                except OSError:
                    break
                time.sleep(pace)
        chunks = []
        while True:
            try:
                c = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                break
            if not c:
                break
            chunks.append(c)
        return b"".join(chunks)
    finally:
        s.close()


def status_of(raw: bytes) -> int:
    m = re.match(rb"HTTP/1\.[01] (\d{3})", raw)
    return int(m.group(1)) if m else 0


def free_env(**extra):
    env = dict(os.environ)
    env.update({k: str(v) for k, v in extra.items()})
    return env
