"""Centralino metrics: the call event log, the tender's KPIs, Prometheus and reports.

- `metrics.events`: `CallEvent`, the stable event record and its JSON (docs/events.md)
- `metrics.store`: `EventStore`, the append-only SQLite log with batched commits
- `metrics.kpi`: `KpiEngine`, Tm, P, Q and social Tm, incremental (docs/kpi.md)
- `metrics.prometheus`: `Exporter`, the `centralino_*` metrics on a private registry
- `metrics.report` and `metrics.render`: monthly SLA reports (table, CSV, JSON, XLSX)
- `metrics.queue_log`: export in Asterisk `queue_log` form
"""
