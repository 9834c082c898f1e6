"""Prometheus metrics of one service (docs/architecture.md §9), in a registry of its own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class ServiceMetrics:
    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = {"service": service}
        r = self.registry
        self.http_requests = Counter(
            "careloop_http_requests_total",
            "HTTP requests",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_latency = Histogram(
            "careloop_http_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.events_consumed = Counter(
            "careloop_events_consumed_total",
            "Events taken from Kafka by outcome",
            ["consumer", "type", "outcome"],
            registry=r,
        )
        self.consumer_lag = Gauge(
            "careloop_consumer_lag",
            "Records behind the partition's end",
            ["consumer", "topic", "partition"],
            registry=r,
        )
        self.dead_letters = Gauge(
            "careloop_dead_letters", "Dead letters waiting for an operator", registry=r
        )
        self.outbox_backlog = Gauge(
            "careloop_outbox_backlog", "Outbox entries not yet published", registry=r
        )
        self.outbox_published = Counter(
            "careloop_outbox_published_total", "Outbox entries published", registry=r
        )
        self.jobs_run = Counter(
            "careloop_jobs_total", "Timed jobs run by outcome", ["kind", "outcome"], registry=r
        )
        self.info = Gauge("careloop_service_info", "Service identity", ["service"], registry=r)
        self.info.labels(**labels).set(1)
