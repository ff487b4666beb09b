"""Measures `mxprobe serve` against `mxprobe lab` on loopback (docs/benchmarks.md).

    python3 benches/serve.py target/release/mxprobe

Starts the lab and the exporter (--max-targets 1000, --concurrency 64), then prints: the first
probe of good.test, 2,000 scrapes of it answered from the cache (one keep-alive connection,
then 8), and the exporter's RSS after 1,000, 5,000 and 20,000 distinct targets (names that do
not exist in the lab DNS), which the cache bounds at 1,000 results. Prints, asserts nothing
about time; stops both processes at the end.
"""
import http.client, os, re, subprocess, sys, threading, time

BIN = sys.argv[1]
lab = subprocess.Popen([BIN, "lab"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
exports = lab.stdout.read()
env = dict(os.environ)
for line in exports.splitlines():
    m = re.match(r"(?:export )?(MXPROBE_\w+)=(.*)", line)
    if m:
        env[m.group(1)] = m.group(2).strip("'")
env["MXPROBE_EHLO_NAME"] = "probe.mxprobe.test"
serve = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1:0", "--max-targets", "1000",
                          "--concurrency", "64"], env=env, stderr=subprocess.PIPE, text=True)
line = serve.stderr.readline()
host, port = re.search(r"http://([\d.]+):(\d+)/", line).groups()
port = int(port)

def rss_kib(pid):
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS:"):
            return int(l.split()[1])

def get(conn, path):
    conn.request("GET", path)
    r = conn.getresponse()
    body = r.read()
    return r.status, body

conn = http.client.HTTPConnection(host, port)
t = time.perf_counter(); s, b = get(conn, "/probe?target=good.test"); first = time.perf_counter() - t
assert s == 200 and b"probe_success 1" in b
N = 2000
t = time.perf_counter()
for _ in range(N):
    s, b = get(conn, "/probe?target=good.test")
    assert s == 200
seq = time.perf_counter() - t
print(f"first probe of good.test: {first*1000:.0f} ms")
print(f"{N} cached scrapes, one keep-alive connection: {seq:.2f} s = {N/seq:.0f}/s, {seq/N*1e6:.0f} us each")

def worker(n, out):
    c = http.client.HTTPConnection(host, port)
    for _ in range(n):
        s, _ = get(c, "/probe?target=good.test")
        assert s == 200
    out.append(1)
done = []
threads = [threading.Thread(target=worker, args=(N // 8, done)) for _ in range(8)]
t = time.perf_counter()
for th in threads: th.start()
for th in threads: th.join()
par = time.perf_counter() - t
print(f"{N} cached scrapes, 8 connections: {par:.2f} s = {N/par:.0f}/s")

print(f"RSS after the cached scrapes: {rss_kib(serve.pid)} KiB")
# Distinct targets (NXDOMAIN in the lab DNS): the cache holds at most --max-targets 1000.
def distinct(start, n):
    c = http.client.HTTPConnection(host, port)
    for i in range(start, start + n):
        s, _ = get(c, f"/probe?target=d{i}.nowhere.test")
        assert s == 200, s
for total in (1000, 5000, 20000):
    prev = getattr(distinct, "done", 0)
    n = total - prev
    ths = [threading.Thread(target=distinct, args=(prev + k * (n // 8), n // 8)) for k in range(8)]
    t = time.perf_counter()
    for th in ths: th.start()
    for th in ths: th.join()
    distinct.done = total
    dt = time.perf_counter() - t
    print(f"after {total} distinct targets ({n/dt:.0f} probes/s): RSS {rss_kib(serve.pid)} KiB")
c = http.client.HTTPConnection(host, port)
s, b = get(c, "/metrics")
print("\n".join(l for l in b.decode().splitlines() if not l.startswith("#") and "exporter_probes_total" in l))
serve.terminate(); serve.wait()
lab.terminate(); lab.wait()
