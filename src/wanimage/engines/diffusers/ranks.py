"""The ranks of a context-parallel model (ulysses_degree x ring_degree > 1), launched the way
diffusers' context parallelism needs: torch.distributed initialised with one process per device,
and every rank running the same pipeline call (same inputs, same seed) on its share of the
sequence. Only rank 0's output is used.

Rank 0 is the engine in the server process (ParallelEngine). It spawns the other ranks itself
(torch.multiprocessing, "spawn"), they join one process group (nccl on CUDA, gloo on CPU, through
a TCPStore on loopback), and each builds the same DiffusersEngine on its device. Rank 0 sends
every load and pipeline call to the followers over a pipe before running it itself; a step
callback on every rank broadcasts rank 0's cancel flag, so all ranks skip the same steps. The
control messages go over pipes rather than collectives because a follower waits for the next
request for as long as the server is idle, and a collective would time out; the process group
carries only the pipeline's own collectives, under `parallel_timeout_seconds`.

A follower that fails or dies ends the call on rank 0 with ParallelRankFailed naming the rank and
its error (a task failure, not a hang); the group is then taken down and started afresh on the
next request. `close()` (EngineRegistry.close at app shutdown) stops the followers."""

from __future__ import annotations

import logging
import os
import traceback
from dataclasses import replace
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from . import tiny
from .engine import DiffusersEngine
from .families import FAMILIES

log = logging.getLogger(__name__)
START_SECONDS = 300.0  # followers import torch and diffusers and build their engine


class ParallelRankFailed(ConnectionError):
    """A rank of a context-parallel model failed or exited: the message names it and why. An
    OSError, so a model whose ranks cannot start is listed unavailable with it (registry.py)."""


def _backend(device: str) -> str:
    return "nccl" if device.startswith("cuda") else "gloo"


def _join(rank: int, world: int, port: int, device: str, timeout: float, master: bool = False):
    store = dist.TCPStore("127.0.0.1", port, world, is_master=master, timeout=timedelta(seconds=START_SECONDS))
    kwargs = {"device_id": torch.device(device)} if device.startswith("cuda") else {}
    if device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device))
    dist.init_process_group(_backend(device), store=store, rank=rank, world_size=world,
                            timeout=timedelta(seconds=timeout), **kwargs)
    return store


class StepSync:
    """`callback_on_step_end` on every rank: rank 0's own callback (progress, previews, cancel)
    runs first, then its interrupt flag is broadcast, so every rank skips the same steps."""

    def __init__(self, inner, device: str):
        self.inner, self.device = inner, device

    def __call__(self, pipe, step, timestep, callback_kwargs: dict) -> dict:
        if self.inner is not None:
            callback_kwargs = self.inner(pipe, step, timestep, callback_kwargs)
        flag = torch.tensor([1 if getattr(pipe, "_interrupt", False) else 0], device=self.device)
        dist.broadcast(flag, src=0)
        pipe._interrupt = bool(flag.item())
        return callback_kwargs


def portable(args: dict) -> dict:
    """A pipeline call's arguments as a follower can rebuild them: generators by their state (taken
    before rank 0 draws from them), without rank 0's callback."""
    def one(value):
        if isinstance(value, torch.Generator):
            return ("generator", value.device.type, value.get_state())
        return value

    out = {k: [one(g) for g in v] if isinstance(v, list) else one(v) for k, v in args.items()}
    out.pop("callback_on_step_end", None)
    return out


def restored(args: dict) -> dict:
    def one(value):
        if isinstance(value, tuple) and len(value) == 3 and value[0] == "generator":
            return torch.Generator(value[1]).set_state(value[2])
        return value

    return {k: [one(g) for g in v] if isinstance(v, list) else one(v) for k, v in args.items()}


def follower_main(rank: int, world: int, port: int, model: str, cfg, family: str, devices: list[str],
                  conn, threads: int, preset: str | None, tiny_speedups: bool = False, build=None) -> None:
    """A rank > 0: join the group, build the same engine, then do what rank 0 sends until "stop"
    (or until rank 0 is gone). On an error it reports and exits: the group is out of step."""
    conn.send(("joining", None))  # imports done: rank 0 opens the group, its timeout then counts
    device = devices[rank]
    torch.set_num_threads(threads)
    try:
        _join(rank, world, port, device, cfg.parallel_timeout_seconds)
        if tiny_speedups:  # rank 0 runs under tiny_cpu_speedups (tests): the same patched sizes here
            speedups = tiny.tiny_cpu_speedups()  # kept referenced: a collected context manager restores the sizes
            speedups.__enter__()
        engine = DiffusersEngine(model, replace(cfg, preload=False, device=device), FAMILIES[family], device,
                                 preset=preset, devices=devices)
        if build is not None:
            engine.loader.load = lambda cls, ckpt, role: build(device, engine.dtype)
        conn.send(("ready", None))
    except BaseException as exc:
        conn.send(("error", _error_text(exc)))
        os._exit(1)
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # rank 0 is gone
            os._exit(0)
        kind = message[0]
        if kind == "stop":
            break
        try:
            if kind == "load":
                engine.pipeline(message[1])
            elif kind == "unload":
                engine.unload()
            elif kind == "call":
                args = {**restored(message[2]), "callback_on_step_end": StepSync(None, device)}
                engine.pipeline(message[1])(**args)
            conn.send(("ok", None))
        except BaseException as exc:
            conn.send(("error", _error_text(exc)))
            os._exit(1)
    conn.send(("stopped", None))
    dist.destroy_process_group()


def _error_text(exc: BaseException) -> str:
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" (at {last[0].filename.rsplit('/', 1)[-1]}:{last[0].lineno})" if last else ""
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}{where}"


class RankGroup:
    """Rank 0's side: the follower processes, their pipes, and the process group."""

    def __init__(self, model: str, cfg, family: str, devices: list[str], preset: str | None, build=None):
        self.model, self.cfg, self.family, self.devices, self.preset = model, cfg, family, devices, preset
        self.build = build
        self.processes: list = []
        self.conns: list = []
        self.store = None

    @property
    def started(self) -> bool:
        return bool(self.processes)

    def start(self) -> None:
        if dist.is_available() and dist.is_initialized():
            raise ParallelRankFailed(f"{self.model}: this process already belongs to a torch.distributed group; one "
                                     "context-parallel model per server process (serve another from a second server)")
        world = len(self.devices)
        store = dist.TCPStore("127.0.0.1", 0, world, is_master=True, wait_for_workers=False,
                              timeout=timedelta(seconds=START_SECONDS))
        ctx = mp.get_context("spawn")
        for rank in range(1, world):
            ours, theirs = ctx.Pipe()
            process = ctx.Process(target=follower_main, name=f"wanimage-rank{rank}", daemon=True,
                                  args=(rank, world, store.port, self.model, self.cfg, self.family, self.devices,
                                        theirs, torch.get_num_threads(), self.preset, bool(tiny.SPEEDUPS),
                                        self.build))
            process.start()
            theirs.close()
            self.processes.append(process)
            self.conns.append(ours)
        self.store = store
        try:
            self.collect("starting the ranks", START_SECONDS, "joining")
            kwargs = {"device_id": torch.device(self.devices[0])} if self.devices[0].startswith("cuda") else {}
            dist.init_process_group(_backend(self.devices[0]), store=store, rank=0, world_size=world,
                                    timeout=timedelta(seconds=self.cfg.parallel_timeout_seconds), **kwargs)
            self.collect("starting the ranks", max(START_SECONDS, self.cfg.parallel_timeout_seconds), "ready")
        except BaseException as exc:
            raise self.failed(exc, "starting the ranks") from exc
        log.info("%s: %d context-parallel ranks on %s (ulysses %d x ring %d)", self.model, world,
                 ",".join(self.devices), self.cfg.ulysses_degree, self.cfg.ring_degree)

    def send(self, message: tuple) -> None:
        for rank, conn in enumerate(self.conns, start=1):
            try:
                conn.send(message)
            except (OSError, EOFError) as exc:
                raise self.failed(exc, f"sending {message[0]} to rank {rank}") from exc

    def collect(self, doing: str, timeout: float | None = None, expected: str = "ok") -> None:
        """Each follower's answer to the last message; ParallelRankFailed for an error, an exit or
        no answer within `timeout` (the process group's timeout by default)."""
        limit = self.cfg.parallel_timeout_seconds if timeout is None else timeout
        for rank, conn in enumerate(self.conns, start=1):
            reason = self._answer(rank, conn, limit, expected)
            if reason:
                raise self.failed(None, doing, reason)

    def _answer(self, rank: int, conn, limit: float, expected: str) -> str | None:
        try:
            if not conn.poll(limit):
                return f"rank {rank} ({self.devices[rank]}) gave no answer within {limit:.0f}s"
            kind, detail = conn.recv()
        except (EOFError, OSError):
            code = self.processes[rank - 1].exitcode
            return f"rank {rank} ({self.devices[rank]}) exited{f' with code {code}' if code is not None else ''}"
        if kind == "error":
            return f"rank {rank} ({self.devices[rank]}) failed: {detail}"
        return None if kind == expected else f"rank {rank} answered {kind}, not {expected}"

    def failed(self, exc: BaseException | None, doing: str = "the pipeline call",
               reason: str | None = None) -> ParallelRankFailed:
        """The error to raise after a failure, naming the follower that caused it when one did;
        the group is taken down (the next request starts it again)."""
        reasons = [reason] if reason else [
            r for rank, conn in enumerate(self.conns, start=1) if (r := self._pending_error(rank, conn))]
        own = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}" if exc else ""
        silent = [f"{rank} ({self.devices[rank]})" for rank, p in enumerate(self.processes, start=1) if p.is_alive()]
        if not reasons and own and silent:  # e.g. a collective timed out: a follower hung or was stopped
            own += f" (ranks still running but not answering: {', '.join(silent)})"
        detail = "; ".join(reasons) or own or "unknown"
        self.stop(graceful=False)
        return ParallelRankFailed(f"{self.model}: context parallelism over {len(self.devices)} ranks failed during "
                                  f"{doing}: {detail}. The ranks are started again on the next request")

    def _pending_error(self, rank: int, conn) -> str | None:
        try:
            if conn.poll(1.0):
                kind, detail = conn.recv()
                return f"rank {rank} ({self.devices[rank]}) failed: {detail}" if kind == "error" else None
        except (EOFError, OSError):
            pass
        process = self.processes[rank - 1] if rank - 1 < len(self.processes) else None
        if process is not None and not process.is_alive() and process.exitcode not in (None, 0):
            return f"rank {rank} ({self.devices[rank]}) exited with code {process.exitcode}"
        return None

    def stop(self, graceful: bool = True) -> None:
        """Followers stopped (asked to, then terminated), the process group destroyed."""
        if graceful:
            for conn in self.conns:
                try:
                    conn.send(("stop", None))
                except (OSError, EOFError):
                    pass
        for process in self.processes:
            process.join(timeout=10 if graceful else 0.5)
            if process.is_alive():
                process.terminate()
                process.join(timeout=2)
            if process.is_alive():  # e.g. stopped (SIGSTOP): SIGTERM waits, SIGKILL does not
                process.kill()
                process.join(timeout=5)
        for conn in self.conns:
            conn.close()
        self.processes, self.conns = [], []
        if dist.is_available() and dist.is_initialized():
            try:
                dist.destroy_process_group()
            except Exception as exc:  # a broken group may not tear down cleanly; it is gone either way
                log.warning("%s: destroying the process group: %s", self.model, exc)
        self.store = None


class ParallelEngine(DiffusersEngine):
    """A DiffusersEngine whose denoiser spreads each image over `devices` (rank 0 here). `build`
    (device, dtype) -> pipeline, picklable, replaces loading on every rank (bench/gpu_e2e.py's
    random-weight pipelines; with preload off)."""

    def __init__(self, model: str, cfg, family, devices: list[str], pool=None, preset: str | None = None,
                 build=None):
        self.devices = devices
        self.ranks = RankGroup(model, cfg, family.name, devices, preset, build)
        self.ranks.start()
        try:
            super().__init__(model, replace(cfg, device=devices[0]), family, devices[0], pool, preset,
                             devices=devices)
        except BaseException:
            self.ranks.stop(graceful=False)
            raise
        if build is not None:
            self.loader.load = lambda cls, ckpt, role: build(devices[0], self.dtype)

    def pipeline(self, role: str):
        """Loading is a collective (diffusers builds the device mesh): every rank loads together."""
        self._ensure_started()
        ckpt = self.cfg.roles.get(role)
        if ckpt is None or self.pool.peek(self._key(role, ckpt)[1]) is not None:
            return super().pipeline(role)
        self.ranks.send(("load", role))
        try:
            pipe = super().pipeline(role)
        except Exception as exc:
            raise self.ranks.failed(exc, f"loading {role}") from exc
        # a rank's load (weights from disk) may take longer than one collective: START_SECONDS at least
        self.ranks.collect(f"loading {role}", max(START_SECONDS, self.cfg.parallel_timeout_seconds))
        return pipe

    def _invoke(self, role: str, args: dict):
        pipe = self.pipeline(role)
        self.ranks.send(("call", role, portable(args)))
        try:
            result = pipe(**{**args, "callback_on_step_end": StepSync(args.get("callback_on_step_end"),
                                                                       self.devices[0])})
        except Exception as exc:
            raise self.ranks.failed(exc) from exc
        self.ranks.collect("the pipeline call")
        return result

    def _ensure_started(self) -> None:
        if not self.ranks.started:
            super().unload()  # pipelines of the old group carry its device mesh
            self.ranks.start()

    def unload(self) -> None:
        with self.pool.lock:  # the pipes carry one exchange at a time (a job holds the lock)
            if self.ranks.started:
                self.ranks.send(("unload", None))
                self.ranks.collect("unloading")
            super().unload()

    def close(self) -> None:
        locked = self.pool.lock.acquire(timeout=30)  # a running job ends first, or its ranks are cut off
        try:
            if self.ranks.started:
                self.ranks.stop(graceful=locked)
        finally:
            if locked:
                self.pool.lock.release()

    def describe(self) -> dict:
        return {**super().describe(), "device": ",".join(self.devices), "devices": list(self.devices),
                "context_parallel": {"ulysses_degree": self.cfg.ulysses_degree, "ring_degree": self.cfg.ring_degree,
                                     "ranks": len(self.devices), "running": self.ranks.started}}
