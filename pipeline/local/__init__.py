"""Local mode: execute the rendered definition JSON on this machine, no AWS, no Docker.

The same JSON `upsert` sends to SageMaker is interpreted step by step: S3 URIs map to a
workspace folder, jobs run as subprocesses under the SageMaker container contract, the
model registry is a moto server, tracking is a real MLflow server.
"""
