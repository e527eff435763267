"""Real-Prometheus test fixture: Debian's prometheus scraping a controllable exporter."""
