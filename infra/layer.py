"""The FFmpeg layer: built from its pinned sources, uploaded through S3, published as a LayerVersion.

The zip is about 58 MB, over Lambda's 50 MB limit for a direct upload, so it goes through a
private artifacts bucket. Its object key carries the zip's SHA-256: an unchanged layer keeps
its key and its ``source_code_hash``, so `pulumi up` neither uploads nor publishes it again,
and a changed one gets a new key (a new object, a new layer version) instead of an in-place
overwrite that a published version would not notice.
"""

from __future__ import annotations

from pathlib import Path

import pulumi
import pulumi_aws as aws

from infra.artifacts import Artifact, exclusive
from infra.config import Settings
from layers.ffmpeg import build as ffmpeg_build

RUNTIMES = ["python3.12"]
LOCK = Path(__file__).resolve().parent / "dist" / ".layer.lock"


def layer_zip() -> Artifact:
    """The layer zip, built first when missing or built from other pins than today's."""
    with exclusive(LOCK):
        return Artifact.of(ffmpeg_build.build())


def _artifacts_bucket(settings: Settings) -> aws.s3.Bucket:
    # Auto-named ("<name>-<random>"): bucket names are global across all AWS accounts.
    # force_destroy: it only ever holds artifacts rebuilt from this repository, and a
    # non-empty bucket would make `pulumi destroy` (the rollback) fail halfway.
    bucket = aws.s3.Bucket(f"{settings.project_name}-artifacts", force_destroy=True)
    aws.s3.BucketPublicAccessBlock(
        "artifacts-public-access-block",
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
    )
    aws.s3.BucketServerSideEncryptionConfiguration(
        "artifacts-encryption",
        bucket=bucket.id,
        rules=[aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
            apply_server_side_encryption_by_default=aws.s3.
            BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(sse_algorithm="AES256"),
        )],
    )
    return bucket


def declare(settings: Settings) -> aws.lambda_.LayerVersion:
    artifact = layer_zip()
    bucket = _artifacts_bucket(settings)
    upload = aws.s3.BucketObjectv2(
        "ffmpeg-layer-zip",
        bucket=bucket.id,
        key=f"layers/ffmpeg/{artifact.sha256}.zip",
        source=pulumi.FileAsset(str(artifact.path)),
    )
    return aws.lambda_.LayerVersion(
        "ffmpeg-layer",
        layer_name=f"{settings.project_name}-ffmpeg",
        description="Static ffmpeg 6.0 and ffprobe (with libass) and the caption fonts, under /opt/bin and /opt/fonts",
        license_info="GPL-3.0-or-later",
        s3_bucket=upload.bucket,
        s3_key=upload.key,
        source_code_hash=artifact.source_code_hash,
        compatible_runtimes=RUNTIMES,
        compatible_architectures=[settings.function.architecture],
    )
