"""Pulumi entry point: read the stack's typed config, build the platform, export what users need."""

import pulumi

from infra.config import load_config
from infra.platform import Platform

config = load_config()
platform = Platform("mlops", config)

pulumi.export("environment", config.environment)
pulumi.export("clusterName", platform.cluster.name)
pulumi.export("kubeconfig", platform.cluster.kubeconfig)
pulumi.export("buckets", {purpose: bucket.name for purpose, bucket in platform.buckets.items()})
pulumi.export("trackingDatabaseAddress", platform.tracking_database.address)
pulumi.export("trackingDatabaseSecretArn", platform.tracking_database.master_user_secret_arn)
pulumi.export("pipelinesDatabaseAddress", platform.pipelines_database.address)
pulumi.export("trackingUrl", platform.tracking.internal_url)
pulumi.export("trackingCredentialsSecret", platform.tracking.credentials_secret_name)
pulumi.export("pipelinesApiUrl", platform.pipelines.api_url)
pulumi.export("datasetsStore", platform.datasets_store)
# Subscribe the team to it (`aws sns subscribe --topic-arn ...`): model and drift alerts arrive there.
pulumi.export("alertsTopicArn", platform.alerts_topic.arn)
if platform.training_image is not None:
    pulumi.export("trainingImage", platform.training_image)
if platform.gpu_training_image is not None:
    pulumi.export("gpuTrainingImage", platform.gpu_training_image)
