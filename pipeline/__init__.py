"""YAML config to SageMaker Pipeline: schema, builder, CLI and the job scripts."""
