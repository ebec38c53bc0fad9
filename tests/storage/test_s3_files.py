"""transforms/io/files.py on S3: a zero-byte file can be written (Beam's own S3 writer cannot:
it completes a multipart upload with no part, which S3 rejects), and writes need no directory."""

from __future__ import annotations

from transforms.io.files import read_bytes, write_bytes


def test_an_empty_file_round_trips(s3) -> None:
    for data in (b"", b"x"):
        path = s3.url(f"a/b/{len(data)}.jsonl")
        write_bytes(path, data)
        assert read_bytes(path) == data and s3.get(path) == data.decode()
