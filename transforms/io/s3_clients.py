"""One boto3 S3 client per process and configuration, shared by every call of Beam's S3 filesystem.

Beam's S3FileSystem builds a new S3IO, hence a new boto3 session and client, for each call
(exists, open, match, copy, delete, …); a new client parses botocore's S3 service model and
endpoint rules again, ~0.3 s of CPU per call (most of the time of a small file on s3://). The
boto3 docs call low-level clients thread-safe, so one client per configuration is reused here;
each Beam client still gets its own download state. The requests sent are the same; what is
shared is the connection pool and the credentials, resolved once per client (botocore refreshes
expiring ones itself; a credentials file edited while a process runs is not read again).

`share()` swaps Beam's client class for a subclass that does this (idempotent; nothing is done
when Beam's AWS module cannot be imported)."""

from __future__ import annotations

import functools
import os
import threading
from typing import Any

_LOCK = threading.Lock()
_FRESH: dict[tuple, dict[str, Any]] = {}  # key → a just-built client's attributes


@functools.cache
def _s3_option_names() -> tuple[str, ...]:
    from apache_beam.options.pipeline_options import PipelineOptions

    return tuple(sorted(k for k in PipelineOptions([]).get_all_options(drop_default=False)
                        if k.startswith("s3_")))


def _key(options: Any) -> tuple:
    """What a client depends on: the s3_* options, the AWS_* environment, the process."""
    if isinstance(options, dict):
        s3 = tuple(sorted((k, repr(v)) for k, v in options.items() if k.startswith("s3_")))
    else:
        from apache_beam.options.pipeline_options import S3Options

        view = options.view_as(S3Options)
        s3 = tuple((k, repr(getattr(view, k, None))) for k in _s3_option_names())
    env = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_")))
    return os.getpid(), s3, env


def share() -> None:
    try:
        from apache_beam.io.aws.clients.s3 import boto3_client
    except ImportError:  # pragma: no cover - Beam without its AWS module
        return
    base = boto3_client.Client
    if getattr(base, "shares_clients", False):
        return

    class SharedClient(base):  # type: ignore[misc, valid-type]
        shares_clients = True

        def __init__(self, options: Any) -> None:
            key = _key(options)
            with _LOCK:
                fresh = _FRESH.get(key)
            if fresh is not None:
                self.__dict__.update(fresh)  # the shared client, a fresh download state
                return
            super().__init__(options)
            with _LOCK:
                _FRESH.setdefault(key, dict(self.__dict__))

    boto3_client.Client = SharedClient
