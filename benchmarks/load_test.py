"""Bounded load test of the HTTP API (``hcr serve``) on loopback.

Starts ``hcr serve`` on a free 127.0.0.1 port in a subprocess (or targets ``--url``), warms it
up, then runs ``--clients`` concurrent clients for ``--seconds``, each sending one request
after another (closed loop, no think time) to ``POST /v1/predict`` over its own keep-alive
connection, and reports requests/s, latency percentiles and errors::

    python benchmarks/load_test.py                       # 20 clients, 30 s, model chars, a server process per CPU
    python benchmarks/load_test.py --seconds 10 --model digits --upload raw --json

The clients are a minimal asyncio HTTP/1.1 client (prebuilt request bytes, Content-Length
framed responses) so that, on a small machine where client and server share the cores, the
figures measure the server rather than a client library. Latency is measured from writing
the request to reading the whole response. Exit status 1 when there were errors or p99 is
over ``--p99-target`` (ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)  # seconds, successful requests
    errors: dict[str, int] = field(default_factory=dict)
    first_body: bytes = b""

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


def build_request(host: str, port: int, path: str, image: bytes, filename: str, upload: str) -> bytes:
    """One complete HTTP/1.1 POST (keep-alive) carrying the image."""
    if upload == "multipart":
        boundary = uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
                f"Content-Type: image/png\r\n\r\n").encode() + image + f"\r\n--{boundary}--\r\n".encode()
        ctype = f"multipart/form-data; boundary={boundary}"
    else:
        body, ctype = image, "image/png"
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: hcr-load-test\r\nAccept: application/json\r\n"
            f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n")
    return head.encode() + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    body = await reader.readexactly(length) if length else b""
    return status, body


async def client(host: str, port: int, request: bytes, until: float, stats: Stats | None) -> None:
    """One closed-loop client: request, wait for the answer, repeat until ``until``."""
    conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    while time.perf_counter() < until:
        t0 = time.perf_counter()
        try:
            if conn is None:
                conn = await asyncio.open_connection(host, port)
            reader, writer = conn
            writer.write(request)
            await writer.drain()
            status, body = await read_response(reader)
        except (OSError, asyncio.IncompleteReadError, ValueError) as e:
            if stats is not None:
                stats.error(type(e).__name__)
            if conn is not None:
                conn[1].close()
            conn = None
            await asyncio.sleep(0.01)
            continue
        dt = time.perf_counter() - t0
        if stats is None:
            continue
        if status == 200:
            stats.latencies.append(dt)
            if not stats.first_body:
                stats.first_body = body
        else:
            stats.error(f"HTTP {status}")
    if conn is not None:
        conn[1].close()


async def run_load(host: str, port: int, request: bytes, clients: int, seconds: float) -> tuple[Stats, float]:
    stats = Stats()
    t0 = time.perf_counter()
    await asyncio.gather(*(client(host, port, request, t0 + seconds, stats) for _ in range(clients)))
    return stats, time.perf_counter() - t0


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    i = min(len(sorted_values) - 1, max(0, round(q / 100 * (len(sorted_values) - 1))))
    return sorted_values[i]


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process and its descendants (Linux /proc; None elsewhere)."""
    stats: dict[int, tuple[int, float]] = {}  # pid -> (parent pid, CPU seconds)
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
        except (OSError, ValueError, IndexError):
            continue
    if pid not in stats:
        return None
    family, total = {pid}, 0.0
    for _ in range(4):  # a few generations: server, its worker processes, their helpers
        family |= {p for p, (parent, _) in stats.items() if parent in family}
    for p in family:
        total += stats[p][1]
    return total


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(port: int, args: argparse.Namespace) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "hcr.cli", "serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
           "--workers", str(args.workers), "--processes", str(args.processes), "--op-threads", str(args.op_threads), "-m", args.model] + (["--no-batch"] if args.no_batch else [])
    proc = subprocess.Popen(cmd, cwd=ROOT)
    deadline, ready = time.monotonic() + 180, set()
    while time.monotonic() < deadline:  # every process answering: clients connected earlier would all stay on the first
        if proc.poll() is not None:
            raise SystemExit(f"hcr serve exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                ready.add(json.loads(r.read())["pid"])
            if len(ready) >= args.processes:
                return proc
        except OSError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"hcr serve did not start within 180 s ({len(ready)} of {args.processes} processes answered)")


def measure(host: str, port: int, request: bytes, args: argparse.Namespace, proc: subprocess.Popen[bytes] | None) -> tuple[Stats, float, float, float | None]:
    """Warm up, then load; returns the stats, the measured seconds, and the CPU seconds the
    client and (when started here) the server used while measured."""

    async def both() -> tuple[Stats, float, float, float | None]:
        if args.warmup > 0:
            end = time.perf_counter() + args.warmup
            await asyncio.gather(*(client(host, port, request, end, None) for _ in range(args.clients)))
        cpu0, srv0 = time.process_time(), cpu_seconds(proc.pid) if proc else None
        stats, elapsed = await run_load(host, port, request, args.clients, args.seconds)
        srv1 = cpu_seconds(proc.pid) if proc else None
        server = srv1 - srv0 if srv0 is not None and srv1 is not None else None
        return stats, elapsed, time.process_time() - cpu0, server

    return asyncio.run(both())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=30.0, help="measured duration (default 30)")
    ap.add_argument("--clients", type=int, default=20, help="concurrent clients (default 20)")
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds of unmeasured load first (default 3)")
    ap.add_argument("--model", default="chars", help="model to serve and query (default chars)")
    ap.add_argument("--image", type=Path, default=ROOT / "samples" / "digit_3_paper.png", help="the image sent (default samples/digit_3_paper.png)")
    ap.add_argument("--upload", choices=["multipart", "raw"], default="multipart", help="multipart form upload (default) or raw image body")
    ap.add_argument("--workers", type=int, default=4, help="hcr serve --workers (default 4)")
    ap.add_argument("--processes", type=int, default=os.cpu_count() or 1, help="hcr serve --processes (default: one per CPU)")
    ap.add_argument("--op-threads", type=int, default=1, help="hcr serve --op-threads (default 1)")
    ap.add_argument("--no-batch", action="store_true", help="hcr serve --no-batch: one forward pass per request")
    ap.add_argument("--url", help="load an already running server (e.g. http://127.0.0.1:8000) instead of starting one")
    ap.add_argument("--p99-target", type=float, default=100.0, help="p99 latency target in ms (default 100)")
    ap.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    args = ap.parse_args(argv)

    proc = None
    if args.url:
        parts = urlsplit(args.url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
    else:
        host, port = "127.0.0.1", free_port()
        proc = start_server(port, args)
    try:
        path = "/v1/predict?" + urlencode({"model": args.model, "top_k": 5})
        request = build_request(host, port, path, args.image.read_bytes(), args.image.name, args.upload)
        stats, elapsed, client_cpu, server_cpu = measure(host, port, request, args, proc)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)

    lat = sorted(stats.latencies)
    n, errors = len(lat), sum(stats.errors.values())
    ms = {q: percentile(lat, q) * 1000 for q in (50, 90, 99)}
    answer = json.loads(stats.first_body or b"{}")
    figures = {
        "requests": n, "errors": errors, "error_kinds": stats.errors, "seconds": round(elapsed, 2),
        "requests_per_s": round(n / elapsed, 1), "p50_ms": round(ms[50], 1), "p90_ms": round(ms[90], 1), "p99_ms": round(ms[99], 1),
        "max_ms": round(lat[-1] * 1000, 1) if lat else None, "clients": args.clients, "model": args.model, "image": args.image.name,
        "upload": args.upload, "workers": args.workers, "processes": args.processes, "batch": not args.no_batch, "op_threads": args.op_threads, "answer": answer.get("label"),
        "client_cpu_s": round(client_cpu, 1),
        "server_cpu_ms_per_request": round(server_cpu * 1000 / n, 2) if server_cpu is not None and n else None, "cpus": os.cpu_count(), "python": platform.python_version(),
    }
    ok = errors == 0 and n > 0 and ms[99] <= args.p99_target
    print(f"POST /v1/predict ({args.upload}, {args.image.name}, model {args.model}): {args.clients} clients for {elapsed:.1f} s "
          f"on {os.cpu_count()} CPUs (answer {answer.get('label')!r})")
    print(f"  requests {n}  ({n / elapsed:.1f}/s)   errors {errors}" + (f" {stats.errors}" if errors else ""))
    print(f"  latency  p50 {ms[50]:.1f} ms   p90 {ms[90]:.1f} ms   p99 {ms[99]:.1f} ms   max {figures['max_ms']} ms")
    if figures["server_cpu_ms_per_request"] is not None:
        print(f"  server CPU {figures['server_cpu_ms_per_request']} ms per request")
    print(f"  client CPU {client_cpu:.1f} s;  target: 0 errors and p99 <= {args.p99_target:g} ms: {'met' if ok else 'NOT met'}")
    if args.json:
        print(json.dumps(figures))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
