"""The `mlops` command line: the one face over the platform's infra, workloads and local loop."""
