"""The storage tests' view of the session's S3 server (tests/conftest.py `s3_server`): a key
prefix of their own (the server's objects outlive one test), the Beam options that reach it,
and one boto3 client for the tests' own set-up and checks."""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from typing import Any

import pytest


@dataclass
class S3:
    bucket: str
    endpoint: str
    prefix: str
    beam_args: list[str]

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}/{key}"

    @functools.cached_property
    def client(self) -> Any:
        """(Beam's S3 filesystem makes a new client, ~0.3 s, per call.)"""
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint)

    def _key(self, url: str) -> str:
        return url.removeprefix(f"s3://{self.bucket}/")

    def put(self, url: str, data: str | bytes) -> None:
        body = data.encode() if isinstance(data, str) else data
        self.client.put_object(Bucket=self.bucket, Key=self._key(url), Body=body)

    def get(self, url: str) -> str:
        return self.client.get_object(Bucket=self.bucket, Key=self._key(url))["Body"].read().decode()

    def keys(self, url: str) -> list[str]:
        """Sorted URLs of every object under `url/`."""
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self._key(url).rstrip("/") + "/")
        return sorted(f"s3://{self.bucket}/{o['Key']}" for p in pages for o in p.get("Contents", []))


@pytest.fixture
def s3(s3_server: dict[str, Any]) -> S3:
    from transforms.io.files import use_options

    use_options(s3_server["beam_args"])  # a run before may have left other options
    return S3(s3_server["bucket"], s3_server["endpoint"], uuid.uuid4().hex[:12],
              list(s3_server["beam_args"]))
