"""Ops views on the worker's Faust web server: the dashboard, the JSON API under ``/api/v1``, ``/metrics``,
``/health`` and ``/ready``. Importing :mod:`agents.web.views` registers them (``app.worker`` does)."""
