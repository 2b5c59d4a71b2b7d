"""Node state (one DynamoDB table, single-table design) and large outputs (S3)."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra import constants as c


class StepdagStorage(Construct):
    """The table and bucket every node runner shares.

    ``retain_data`` keeps both (and the access-log bucket) when the stack is deleted or a
    resource is replaced: run history and outputs outlive a bad deploy by default.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        retain_data: bool = True,
        output_retention_days: int = c.DEFAULT_OUTPUT_RETENTION_DAYS,
    ) -> None:
        super().__init__(scope, construct_id)
        removal = RemovalPolicy.RETAIN if retain_data else RemovalPolicy.DESTROY
        string = dynamodb.AttributeType.STRING

        self.table = dynamodb.Table(
            self,
            c.TABLE_ID,
            partition_key=dynamodb.Attribute(name=c.TABLE_PARTITION_KEY, type=string),
            sort_key=dynamodb.Attribute(name=c.TABLE_SORT_KEY, type=string),
            # On-demand: workflow traffic is bursty (a Map fans out to hundreds of nodes).
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            # KMS with the AWS-managed key: encrypted and auditable in CloudTrail, with no
            # key policy to keep in sync with the node-runner roles.
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            time_to_live_attribute=c.TABLE_TTL_ATTRIBUTE,
            deletion_protection=retain_data,
            removal_policy=removal,
        )
        for index_name, pk, sk in c.TABLE_GSIS:
            self.table.add_global_secondary_index(
                index_name=index_name,
                partition_key=dynamodb.Attribute(name=pk, type=string),
                sort_key=dynamodb.Attribute(name=sk, type=string),
                projection_type=dynamodb.ProjectionType.ALL,
            )

        self.access_logs_bucket = s3.Bucket(
            self,
            c.ACCESS_LOGS_BUCKET_ID,
            # S3 server access logging can only deliver to SSE-S3 buckets.
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-access-logs",
                    expiration=Duration.days(c.ACCESS_LOG_RETENTION_DAYS),
                )
            ],
            removal_policy=removal,
        )
        # No access logging on the log bucket itself (cdk-nag S1 exempts log targets).

        # The node runner gives table items the same lifetime as the outputs they point to.
        self.retention_days = output_retention_days
        self.bucket = s3.Bucket(
            self,
            c.BUCKET_ID,
            # SSE-S3 rather than KMS: large node outputs would pay a KMS request per
            # object read/write, and no cross-account reader needs a key grant.
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs_bucket,
            server_access_logs_prefix="outputs-bucket/",
            lifecycle_rules=[
                # Offloaded outputs are only read while their run (and its DynamoDB
                # records, which expire by TTL) is inspectable; keep them as long.
                s3.LifecycleRule(
                    id="expire-offloaded-outputs",
                    expiration=Duration.days(output_retention_days),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
            removal_policy=removal,
        )

    def grant_store(
        self,
        grantee: iam.IGrantable,
        *,
        update_executions: bool = False,
        list_executions: bool = False,
    ) -> None:
        """What a stepdag function needs of the store, and no more: item reads and puts on
        the table, object reads and puts on the bucket; ``update_executions`` adds
        UpdateItem (execution records), ``list_executions`` a Query on the indexes.

        Written out instead of ``grant_read_write_data``: that grant adds deletes,
        ``index/*`` and table-describe actions no stepdag code uses.
        """
        table_arn = self.table.table_arn
        actions = [*c.TABLE_DATA_ACTIONS, *(c.TABLE_UPDATE_ACTIONS if update_executions else ())]
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(actions=sorted(actions), resources=[table_arn])
        )
        if list_executions:
            grantee.grant_principal.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=list(c.TABLE_INDEX_ACTIONS),
                    resources=[f"{table_arn}/index/{name}" for name, _, _ in c.TABLE_GSIS],
                )
            )
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=list(c.BUCKET_OBJECT_ACTIONS),
                resources=[self.bucket.arn_for_objects("*")],
            )
        )
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(actions=list(c.BUCKET_ACTIONS), resources=[self.bucket.bucket_arn])
        )
