"""Prometheus metrics, one registry per app (tests build several apps in one process).

Inside a Ray Serve replica the same observations also go to Ray's metrics agent
(`ray.util.metrics`), so one scrape of each node's Ray metrics port covers every replica."""

from __future__ import annotations

import sys
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "wanimage_requests", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "wanimage_request_seconds",
            "HTTP request latency",
            ["route"],
            buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
            registry=self.registry,
        )
        self.queue_depth = Gauge("wanimage_queue_depth", "PENDING tasks", registry=self.registry)
        self.running = Gauge("wanimage_tasks_running", "RUNNING tasks", registry=self.registry)
        self.images = Gauge("wanimage_images_generated", "images made since start", registry=self.registry)
        self.workers = Gauge("wanimage_workers", "generation workers in this process", registry=self.registry)
        self.phases = Histogram(
            "wanimage_task_phase_seconds",
            "time tasks spend in each phase (queued, planning, generating, encoding, storing)",
            ["phase"],
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
            registry=self.registry,
        )

        self.ray = RayMetrics.if_running()

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(route).observe(seconds)
        if self.ray:
            self.ray.observe_request(method, route, status, seconds)

    def observe_phase(self, phase: str, seconds: float) -> None:
        self.phases.labels(phase).observe(seconds)
        if self.ray:
            self.ray.phases.observe(seconds, tags={"phase": phase})

    def count_images(self, count: int) -> None:
        """Images made (the local gauge reads the service's own count)."""
        if self.ray:
            self.ray.images.inc(count)

    def bind(
        self,
        queue_depth: Callable[[], float],
        running: Callable[[], float],
        images: Callable[[], float],
        workers: Callable[[], float] = lambda: 0,
    ) -> None:
        """Engine utilisation = rate(wanimage_task_phase_seconds_sum{phase="generating"}) / wanimage_workers."""
        self.workers.set_function(workers)
        self.queue_depth.set_function(queue_depth)
        self.running.set_function(running)
        self.images.set_function(images)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class RayMetrics:
    """The cluster-wide twin of `Metrics`, through Ray's metrics agent (names get a `ray_` prefix)."""

    def __init__(self) -> None:
        from ray.util.metrics import Counter as RayCounter
        from ray.util.metrics import Histogram as RayHistogram

        self.requests = RayCounter("wanimage_requests", "HTTP requests", tag_keys=("method", "route", "status"))
        self.latency = RayHistogram("wanimage_request_seconds", "HTTP request latency",
                                    boundaries=[0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300], tag_keys=("route",))
        self.phases = RayHistogram("wanimage_task_phase_seconds", "time per task phase",
                                   boundaries=[0.001, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 60, 300], tag_keys=("phase",))
        self.images = RayCounter("wanimage_images", "images made")

    @classmethod
    def if_running(cls) -> RayMetrics | None:
        ray = sys.modules.get("ray")  # only when this process already runs under Ray: no import cost
        return cls() if ray is not None and ray.is_initialized() else None

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.inc(1, tags={"method": method, "route": route, "status": str(status)})
        self.latency.observe(seconds, tags={"route": route})
