"""Keep the MLflow Model Registry in step with SageMaker Model Registry approvals, and
deploy the approved model. Lambda entry point: `mlflow_bridge.handler.lambda_handler`."""
