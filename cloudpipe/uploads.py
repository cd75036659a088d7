"""Pending multipart uploads: the parts a crashed writer left stored (and billed), and the
lifecycle rule that would remove them."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from cloudpipe.errors import error_code

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@dataclass(frozen=True)
class PendingUpload:
    key: str
    upload_id: str
    initiated: datetime.datetime

    def age(self, now: datetime.datetime) -> datetime.timedelta:
        return now - self.initiated


def pending_uploads(
    client: S3Client,
    bucket: str,
    prefix: str = "",
    older_than: datetime.timedelta = datetime.timedelta(0),
) -> list[PendingUpload]:
    """Multipart uploads under ``prefix`` started more than ``older_than`` ago, oldest first."""
    now = datetime.datetime.now(datetime.UTC)
    found = []
    for page in client.get_paginator("list_multipart_uploads").paginate(
        Bucket=bucket, Prefix=prefix
    ):
        for upload in page.get("Uploads", []):
            pending = PendingUpload(upload["Key"], upload["UploadId"], upload["Initiated"])
            if pending.age(now) >= older_than:
                found.append(pending)
    return sorted(found, key=lambda upload: upload.initiated)


def abort_rule(client: S3Client, bucket: str) -> str:
    """One line saying whether an AbortIncompleteMultipartUpload rule cleans the bucket."""
    try:
        rules = client.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    except ClientError as error:
        code = error_code(error)
        if code == "NoSuchLifecycleConfiguration":
            rules = []
        else:
            return f"lifecycle: could not read the bucket's lifecycle rules ({code})"
    for rule in rules:
        days = rule.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation")
        if rule.get("Status") == "Enabled" and days is not None:
            where = rule.get("Filter", {}).get("Prefix") or rule.get("Prefix") or ""
            scope = f"under {where!r}" if where else "in the whole bucket"
            return (
                f"lifecycle: rule {rule.get('ID', '(no id)')!r} aborts incomplete uploads "
                f"{scope} {days} day(s) after they start"
            )
    return (
        "lifecycle: no AbortIncompleteMultipartUpload rule: parts of crashed uploads stay "
        "billable until aborted (see the FAQ, 'Incomplete uploads')"
    )
