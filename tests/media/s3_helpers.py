"""A real S3-compatible server for the tests: moto's server mode on 127.0.0.1, in a thread of
the test process (its HTTP API is the one boto3, MinIO clients and other nodes use)."""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from tests.server_helpers import free_port, until

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "gridflow-test", "AWS_SECRET_ACCESS_KEY": "gridflow-test-secret",
               "AWS_DEFAULT_REGION": "us-east-1"}


@contextmanager
def s3_server() -> Iterator[str]:
    """The endpoint URL of a running S3 server with a bucket `gridflow`, for the block."""
    import boto3
    from moto.server import ThreadedMotoServer

    saved = {k: os.environ.get(k) for k in CREDENTIALS}
    os.environ.update(CREDENTIALS)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        client = boto3.client("s3", endpoint_url=endpoint)
        until(lambda: client.create_bucket(Bucket="gridflow"), "the S3 server answers")
        yield endpoint
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def prefix() -> str:
    return f"run-{uuid.uuid4().hex[:8]}"
