"""The reporting stage: reads MLflow runs (through ``bench.tracking`` only) and writes tables and figures."""
