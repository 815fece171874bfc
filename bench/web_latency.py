"""Latency and throughput of sends through chorus-web (HTTP/1.1 keep-alive over TLS, one
connection per caller), for docs/BENCHMARKS.md. Usage:
  python3 bench/web_latency.py https://127.0.0.1:8080 data/certs/ca.pem [sends] [callers]"""

import http.client
import json
import ssl
import statistics
import sys
import threading
import time
import uuid
from urllib.parse import urlparse

url, ca = sys.argv[1], sys.argv[2]
sends = int(sys.argv[3]) if len(sys.argv) > 3 else 500
callers_list = [int(x) for x in (sys.argv[4] if len(sys.argv) > 4 else "1,16").split(",")]
target = urlparse(url)
context = ssl.create_default_context(cafile=ca)


def connection():
    return http.client.HTTPSConnection(target.hostname, target.port, context=context)


def call(conn, method, path, body=None, cookie=None):
    headers = {"Content-Type": "application/json"}
    if cookie:
        headers["Cookie"] = cookie
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    response = conn.getresponse()
    data = response.read()
    return response.status, data, response.getheader("Set-Cookie")


def register(name):
    status, _, cookie = call(connection(), "POST", "/api/accounts", {"name": name, "password": "password-1"})
    assert status == 201, status
    return cookie.split(";")[0]


peer = "bench" + uuid.uuid4().hex[:6]
register(peer)
for callers in callers_list:
    cookies = [register(f"w{uuid.uuid4().hex[:8]}") for _ in range(callers)]
    latencies = []
    lock = threading.Lock()

    def worker(cookie):
        conn = connection()
        mine = []
        for i in range(sends // callers):
            start = time.perf_counter()
            status, _, _ = call(conn, "POST", f"/api/conversations/{peer}", {"body": f"m{i}"}, cookie)
            mine.append(time.perf_counter() - start)
            assert status == 200, status
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(c,)) for c in cookies]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    latencies.sort()
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000
    print(f"{callers:>3} callers: {len(latencies) / elapsed:7.0f} sends/s  p50 {p(0.5):6.2f} ms  p99 {p(0.99):6.2f} ms  ({len(latencies)} sends)")
