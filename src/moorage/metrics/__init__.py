"""Prometheus metrics: what each process counts (``instruments``), the HTTP middleware that counts requests
(``http``), values read from the database on a timer (``usage``), and the ``/metrics`` endpoint (``endpoint``)."""
