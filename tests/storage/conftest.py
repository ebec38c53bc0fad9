"""An S3-compatible server on 127.0.0.1 for the storage tests (moto's server mode), with the
Beam options that reach it."""

from __future__ import annotations

import functools
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest


@dataclass
class S3:
    bucket: str
    endpoint: str
    prefix: str  # unique per test: the server's objects outlive one test

    @property
    def beam_args(self) -> list[str]:
        return [f"--s3_endpoint_url={self.endpoint}", "--s3_region_name=us-east-1"]

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}/{key}"

    @functools.cached_property
    def client(self) -> Any:
        """One boto3 client for the tests' own set-up and checks (Beam's S3 filesystem makes
        a new client, ~0.3 s, per call)."""
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint)

    def _key(self, url: str) -> str:
        return url.removeprefix(f"s3://{self.bucket}/")

    def put(self, url: str, text: str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(url), Body=text.encode())

    def get(self, url: str) -> str:
        return self.client.get_object(Bucket=self.bucket, Key=self._key(url))["Body"].read().decode()

    def keys(self, url: str) -> list[str]:
        """Sorted URLs of every object under `url/`."""
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self._key(url).rstrip("/") + "/")
        return sorted(f"s3://{self.bucket}/{o['Key']}" for p in pages for o in p.get("Contents", []))


@pytest.fixture
def moto_s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3]:
    moto_server = pytest.importorskip("moto.server")
    boto3 = pytest.importorskip("boto3")
    for key, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                       ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="refinery")
    s3 = S3("refinery", endpoint, uuid.uuid4().hex[:12])
    from transforms.io.files import use_options

    use_options(s3.beam_args)
    try:
        yield s3
    finally:
        server.stop()
