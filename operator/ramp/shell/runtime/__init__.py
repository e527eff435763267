"""The process: start-up, leader election and shards, the metrics and probes server, logs."""
