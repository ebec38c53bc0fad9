"""transforms/io/files.py on S3: a zero-byte file can be written (Beam's own S3 writer cannot:
it completes a multipart upload with no part, which S3 rejects), and writes need no directory."""

from __future__ import annotations

from transforms.io.files import CHUNK, copy_file, read_bytes, write_bytes


def test_an_empty_file_round_trips(s3) -> None:
    for data in (b"", b"x"):
        path = s3.url(f"a/b/{len(data)}.jsonl")
        write_bytes(path, data)
        assert read_bytes(path) == data and s3.get(path) == data.decode()


def test_copy_file_across_filesystems_streams_every_byte(s3, tmp_path) -> None:
    """Local → S3 → local, empty and larger than one streamed chunk, into new directories."""
    for data in (b"", bytes(range(256)) * (CHUNK // 256 * 2 + 3)):
        src = str(tmp_path / f"src{len(data)}.bin")
        write_bytes(src, data)
        up = s3.url(f"c/{len(data)}.bin")
        copy_file(src, up)
        back = str(tmp_path / "back" / "deeper" / f"{len(data)}.bin")
        copy_file(up, back)
        assert read_bytes(up) == data and read_bytes(back) == data
