"""AWS CDK app: a private, authenticated MLflow on Fargate, the bridge Lambda, and roles."""
