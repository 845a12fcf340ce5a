"""Side-by-side benchmark: our runtime vs vLLM's own OpenAI server, same model, same flags, same load.

    .venv/bin/python bench/runtime_bench.py [--rounds 3] [--requests 384] [--concurrency 32]

Both servers start once; they run one at a time (two at once disturb each other on 2 cores): the
idle one is paused with SIGSTOP on its whole process group, so it uses no CPU. Loads alternate in
ABBA order over the rounds. Each run sends `--requests` streaming chat completions of `--max-tokens`
tokens (`ignore_eos`, so every answer has exactly that many) at `--concurrency`, after a short
warm-up, and measures:
- completion tokens per second (wall clock of the whole load),
- time to first token p50/p95 (time to the first SSE event, the same definition for both),
- server CPU seconds per 1,000 completion tokens (the server's whole process tree, from /proc),
- peak RSS of the server's process tree during the load,
- errors (non-200, or a stream without `[DONE]`),
- CPU steal: the share of the machine's CPU time the hypervisor took during the load (noise).
It prints each run, the medians per server and the ratios ours/vLLM. Run it with nothing else busy,
and more than once: this machine's noise is about ±10 %.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ENGINE_FLAGS = ["--dtype", "float32", "--max-model-len", "256", "--enforce-eager"]
SERVED_NAME = "bench"


@dataclass
class RunResult:
    server: str
    round: int
    tokens_per_s: float
    ttft_p50_ms: float
    ttft_p95_ms: float
    cpu_s_per_1k_tokens: float
    peak_rss_mb: float
    errors: int
    completion_tokens: int
    wall_s: float
    steal_pct: float


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_argv(kind: str, model_dir: Path, port: int) -> list[str]:
    common = ["--host", "127.0.0.1", "--port", str(port), "--served-model-name", SERVED_NAME, *ENGINE_FLAGS]
    if kind == "ours":
        return [str(BIN / "model-garden"), "serve-model", "--model-path", str(model_dir), *common]
    return [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir), *common]


def tree(process: psutil.Process) -> list[psutil.Process]:
    try:
        return [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def tree_cpu_seconds(process: psutil.Process) -> float:
    total = 0.0
    for member in tree(process):
        try:
            times = member.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def tree_rss_bytes(process: psutil.Process) -> int:
    total = 0
    for member in tree(process):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += member.memory_info().rss
    return total


class RssSampler(threading.Thread):
    def __init__(self, process: psutil.Process, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.process = process
        self.interval = interval
        self.peak = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max(self.peak, tree_rss_bytes(self.process))
            self._stop_event.wait(self.interval)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return self.peak


def wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} not healthy after {timeout} s")


async def one_request(
    client: httpx.AsyncClient, index: int, max_tokens: int
) -> tuple[float | None, int, bool]:
    """(time to first event, completion tokens, ok)."""
    body = {
        "model": SERVED_NAME,
        "messages": [{"role": "user", "content": f"Request {index}: tell me a story about a garden."}],
        "max_tokens": max_tokens,
        "ignore_eos": True,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    started = time.perf_counter()
    first: float | None = None
    tokens = 0
    done = False
    async with client.stream("POST", "/v1/chat/completions", json=body) as response:
        if response.status_code != 200:
            await response.aread()
            return None, 0, False
        # Split events on the blank line ourselves: generated text may hold U+2028 or U+0085, which
        # line-based readers (str.splitlines rules) take for line ends inside an event's JSON.
        buffer = b""
        async for piece in response.aiter_bytes():
            buffer += piece
            *events, buffer = buffer.split(b"\n\n")
            for event in events:
                if not event.startswith(b"data: "):
                    continue
                if first is None:
                    first = time.perf_counter() - started
                data = event[6:]
                if data == b"[DONE]":
                    done = True
                    continue
                # Parse only the usage chunk: the client shares the CPUs with the server it measures.
                if b'"usage":{' in data or b'"usage": {' in data:
                    tokens = json.loads(data)["usage"]["completion_tokens"]
    return first, tokens, done and tokens == max_tokens


async def run_load(
    url: str, requests: int, concurrency: int, max_tokens: int
) -> tuple[list[float], int, int, float]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    semaphore = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=300) as client:

        async def bounded(index: int) -> tuple[float | None, int, bool]:
            async with semaphore:
                try:
                    return await one_request(client, index, max_tokens)
                except httpx.HTTPError:
                    return None, 0, False

        started = time.perf_counter()
        results = await asyncio.gather(*(bounded(i) for i in range(requests)))
        wall = time.perf_counter() - started
    ttfts = [first for first, _, ok in results if ok and first is not None]
    tokens = sum(count for _, count, _ in results)
    errors = sum(1 for _, _, ok in results if not ok)
    return ttfts, tokens, errors, wall


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def cpu_steal_fraction_since(before: list[int]) -> float:
    """Share of CPU time the hypervisor took from this VM since `before` (a /proc/stat reading)."""
    now = proc_stat_cpu()
    delta = [b - a for a, b in zip(before, now, strict=True)]
    return delta[7] / sum(delta) if sum(delta) else 0.0


def proc_stat_cpu() -> list[int]:
    with open("/proc/stat") as handle:
        return [int(value) for value in handle.readline().split()[1:9]]


class Server:
    """One server process; paused (SIGSTOP on its whole process group) while the other one runs, so
    only one uses the CPUs at a time without paying a restart per round."""

    def __init__(self, kind: str, model_dir: Path, log_path: Path) -> None:
        self.kind = kind
        self.url = ""
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1")}
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            server_argv(kind, model_dir, port),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        wait_healthy(self.url, self.process)

    def pause(self) -> None:
        os.killpg(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.killpg(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGCONT)
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self._log.close()


def measure(server: Server, round_index: int, args: argparse.Namespace) -> RunResult:
    asyncio.run(run_load(server.url, 8, 8, args.max_tokens))  # warm-up, not measured
    process = psutil.Process(server.process.pid)
    sampler = RssSampler(process)
    sampler.start()
    cpu_before = tree_cpu_seconds(process)
    stat_before = proc_stat_cpu()
    ttfts, tokens, errors, wall = asyncio.run(
        run_load(server.url, args.requests, args.concurrency, args.max_tokens)
    )
    cpu_used = tree_cpu_seconds(process) - cpu_before
    steal = cpu_steal_fraction_since(stat_before)
    peak = sampler.stop()
    return RunResult(
        server=server.kind,
        round=round_index,
        tokens_per_s=tokens / wall if wall else 0.0,
        ttft_p50_ms=percentile(ttfts, 0.5) * 1000,
        ttft_p95_ms=percentile(ttfts, 0.95) * 1000,
        cpu_s_per_1k_tokens=cpu_used / tokens * 1000 if tokens else float("nan"),
        peak_rss_mb=peak / 2**20,
        errors=errors,
        completion_tokens=tokens,
        wall_s=wall,
        steal_pct=steal * 100,
    )


def abba_order(rounds: int) -> list[tuple[int, str]]:
    order = []
    for index in range(rounds):
        pair = ("ours", "vllm") if index % 2 == 0 else ("vllm", "ours")
        order.extend((index, kind) for kind in pair)
    return order


METRICS = ("tokens_per_s", "ttft_p50_ms", "ttft_p95_ms", "cpu_s_per_1k_tokens", "peak_rss_mb")


def summarize(results: list[RunResult]) -> dict[str, dict[str, float]]:
    summary: dict[str, dict[str, float]] = {}
    for kind in ("ours", "vllm"):
        runs = [r for r in results if r.server == kind]
        summary[kind] = {metric: statistics.median(getattr(r, metric) for r in runs) for metric in METRICS}
        summary[kind]["errors"] = sum(r.errors for r in runs)
    summary["ratio"] = {metric: summary["ours"][metric] / summary["vllm"][metric] for metric in METRICS}
    summary["ratio"]["rss_delta_mb"] = summary["ours"]["peak_rss_mb"] - summary["vllm"]["peak_rss_mb"]
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model-dir", type=Path, default=ROOT / ".cache" / "demo-model")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=384)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()

    if not (args.model_dir / "config.json").is_file():
        from model_garden.demo_model import create_demo_model

        create_demo_model(args.model_dir)
    args.output.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    log_dir = args.output / f"logs-{stamp}"
    log_dir.mkdir()

    results = []
    header = ("server", "round", "tok/s", "ttft50", "ttft95", "cpu/1k", "rssMB", "err", "steal%")
    print(f"{header[0]:6} " + " ".join(f"{h:>8}" for h in header[1:]))
    servers: dict[str, Server] = {}
    try:
        for kind in ("ours", "vllm"):
            servers[kind] = Server(kind, args.model_dir, log_dir / f"{kind}.log")
            servers[kind].pause()
        for round_index, kind in abba_order(args.rounds):
            servers[kind].resume()
            result = measure(servers[kind], round_index, args)
            servers[kind].pause()
            results.append(result)
            print(
                f"{kind:6} {round_index:8} {result.tokens_per_s:8.0f} {result.ttft_p50_ms:8.0f} "
                f"{result.ttft_p95_ms:8.0f} {result.cpu_s_per_1k_tokens:8.3f} {result.peak_rss_mb:8.0f} "
                f"{result.errors:8} {result.steal_pct:8.1f}",
                flush=True,
            )
    finally:
        for server in servers.values():
            server.stop()
    summary = summarize(results)
    print("\nmedians     tok/s   ttft50   ttft95   cpu/1k    rssMB  errors")
    for kind in ("ours", "vllm"):
        s = summary[kind]
        print(
            f"{kind:8} {s['tokens_per_s']:8.0f} {s['ttft_p50_ms']:8.0f} {s['ttft_p95_ms']:8.0f} "
            f"{s['cpu_s_per_1k_tokens']:8.3f} {s['peak_rss_mb']:8.0f} {s['errors']:7.0f}"
        )
    r = summary["ratio"]
    print(
        f"ratio    {r['tokens_per_s']:8.3f} {r['ttft_p50_ms']:8.3f} {r['ttft_p95_ms']:8.3f} "
        f"{r['cpu_s_per_1k_tokens']:8.3f} {r['peak_rss_mb']:8.3f}   (RSS delta {r['rss_delta_mb']:+.0f} MB)"
    )
    out = args.output / f"runtime-{stamp}.json"
    out.write_text(json.dumps({"runs": [asdict(x) for x in results], "summary": summary}, indent=2))
    print(f"\nwritten to {out}")
    errors = summary["ours"]["errors"] + summary["vllm"]["errors"]
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
