"""cloudpipe.verify and ``cloudpipe verify``: an object compared with a source from what the
store keeps, never downloaded, for objects written every way a user writes them."""

from __future__ import annotations

import io
import json
import random
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3.s3.transfer
import pytest

import cloudpipe
from cloudpipe.stored import _assumed
from tests.conftest import PART, aws_env
from tests.faultproxy import FaultProxy, Rule
from tests.servers import make_client

COMMAND = [str(Path(sys.executable).with_name("cloudpipe")), "verify"]
DATA = random.Random(22).randbytes(3 * PART + 4321)  # parts 1-3 full, part 4 short
SMALL = b"a short object, sent in one PutObject"
SSE_C = {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": bytes(range(32)).hex()[:32]}


def by_cloudpipe(s3: Any, bucket: str, key: str, data: bytes, **extra: Any) -> None:
    with cloudpipe.S3MultipartWriter(
        bucket, key, client=s3, part_size=PART, extra_args=extra or None
    ) as writer:
        writer.write(data)


def by_put_object(s3: Any, bucket: str, key: str, data: bytes, **extra: Any) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=data, **extra)


def by_multipart_loop(s3: Any, bucket: str, key: str, data: bytes, **extra: Any) -> None:
    """The loop people write with boto3: parts of PART bytes, no checksum asked for."""
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key, **extra)["UploadId"]
    parts = []
    for number, start in enumerate(range(0, len(data), PART), 1):
        body = data[start : start + PART]
        answer = s3.upload_part(
            Bucket=bucket, Key=key, UploadId=upload, PartNumber=number, Body=body, **extra
        )
        parts.append({"PartNumber": number, "ETag": answer["ETag"]})
    s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": parts}
    )


def by_upload_fileobj(s3: Any, bucket: str, key: str, data: bytes, **extra: Any) -> None:
    config = boto3.s3.transfer.TransferConfig(multipart_threshold=PART, multipart_chunksize=PART)
    s3.upload_fileobj(io.BytesIO(data), bucket, key, Config=config, ExtraArgs=extra or None)


def by_resume(proxy: FaultProxy, s3: Any, bucket: str, key: str, data: bytes) -> None:
    """A journaled writer whose part 3 fails for good (its upload kept), then resumed."""
    journal = Path(f"/tmp/verify-{bucket}-{key}.journal")
    journal.unlink(missing_ok=True)
    proxy.respond(503, "SlowDown", method="PUT", path_contains="partNumber=3", times=1)
    client = make_client(proxy.endpoint_url)
    with pytest.raises(cloudpipe.UploadError):  # noqa: SIM117 - the with is what fails
        with cloudpipe.S3MultipartWriter(
            bucket, key, client=client, part_size=PART, max_attempts=1, journal=journal
        ) as writer:
            writer.write(data)
    resumed = cloudpipe.resume(journal, client=s3, source=io.BytesIO(data))
    assert resumed.tell() == 2 * PART
    resumed.write(data[resumed.tell() :])
    resumed.close()


WRITERS: dict[str, Callable[..., None]] = {
    "cloudpipe": by_cloudpipe,
    "put_object": by_put_object,
    "multipart loop": by_multipart_loop,
    "upload_fileobj": by_upload_fileobj,
}


def changed(data: bytes, at: int) -> bytes:
    flipped = bytearray(data)
    flipped[at] ^= 0x01
    return bytes(flipped)


@pytest.mark.parametrize("writer", [*WRITERS, "cloudpipe, one PutObject", "cloudpipe, resumed"])
def test_an_object_written_any_way_verifies_identical_and_a_changed_byte_does_not(
    server: Any, s3: Any, bucket: str, proxy: FaultProxy, writer: str
) -> None:
    data = SMALL if "PutObject" in writer else DATA
    if writer == "cloudpipe, resumed":
        by_resume(proxy, s3, bucket, "k", data)
    else:
        WRITERS.get(writer, by_cloudpipe)(s3, bucket, "k", data)

    def check(source: bytes) -> cloudpipe.Verification:
        # the part size is what Ceph RGW 16 needs, which gives no part sizes: elsewhere unused
        return cloudpipe.verify(bucket, "k", source=io.BytesIO(source), client=s3, part_size=PART)

    same = check(data)
    assert same.verdict is cloudpipe.Verdict.IDENTICAL, str(same)
    assert same.identical
    assert same.source_bytes == same.object_bytes == len(data)
    # Ceph RGW 16 keeps no checksum, nor does any store for a loop that asked for none
    kept = "ETag" if server.name == "ceph" or writer == "multipart loop" else "CRC32"
    assert kept in same.compared, same.compared

    at = 2 * PART + 7 if data is DATA else 3  # in part 3
    other = check(changed(data, at))
    multipart = writer not in ("put_object", "cloudpipe, one PutObject")
    if server.name == "ceph" and multipart:  # an ETag with part sizes assumed proves no difference
        assert other.verdict is cloudpipe.Verdict.UNKNOWN, str(other)
        assert "assumed" in other.detail
        return
    assert other.verdict is cloudpipe.Verdict.DIFFERENT, str(other)
    assert not other.identical
    if other.part is not None:  # where the store keeps each part's digest
        assert (other.part, other.byte_range) == (3, (2 * PART, 3 * PART - 1))
        assert other.source_bytes == 3 * PART  # no further than the part that differs
        assert f"part 3 (bytes {2 * PART} to {3 * PART - 1}) differs" in str(other)
    if server.name == "moto" and writer == "multipart loop":
        assert other.part == 3  # moto answers a HeadObject of a part with its MD5


@pytest.mark.parametrize(
    ("source", "words"),
    [
        (DATA[:-1], f"the source ends after {len(DATA) - 1} bytes, the object has {len(DATA)}"),
        (DATA + b"!", f"the source is longer than the object's {len(DATA)} bytes"),
        (b"", f"the source ends after 0 bytes, the object has {len(DATA)}"),
    ],
    ids=["shorter", "longer", "empty"],
)
def test_a_source_of_another_length_differs_by_its_size(
    s3: Any, bucket: str, source: bytes, words: str
) -> None:
    by_cloudpipe(s3, bucket, "k", DATA)
    found = cloudpipe.verify(bucket, "k", source=io.BytesIO(source), client=s3)
    assert (found.verdict, found.compared, found.detail) == (
        cloudpipe.Verdict.DIFFERENT,
        "the size",
        words,
    )
    assert found.source_bytes <= len(DATA) + 1  # a longer source is not read to its end


def test_a_file_of_another_size_differs_before_it_is_read(
    s3: Any, bucket: str, tmp_path: Path
) -> None:
    by_cloudpipe(s3, bucket, "k", DATA)
    path = tmp_path / "f"
    path.write_bytes(DATA[:PART])
    found = cloudpipe.verify(bucket, "k", source=path, client=s3)
    assert found.detail == f"the source has {PART} bytes, the object {len(DATA)}"
    assert found.source_bytes == 0


def test_no_object_at_the_key_differs_and_no_bucket_raises(s3: Any, bucket: str) -> None:
    found = cloudpipe.verify(bucket, "nothing-here", source=io.BytesIO(b"x"), client=s3)
    assert found.verdict is cloudpipe.Verdict.DIFFERENT
    assert found.object_bytes is None
    assert str(found) == f"s3://{bucket}/nothing-here: different: the store holds no object"
    with pytest.raises(cloudpipe.UploadError, match="no such bucket 'no-such-bucket-here'"):
        cloudpipe.verify("no-such-bucket-here", "k", source=io.BytesIO(b"x"), client=s3)


def test_sse_c_objects_take_their_key(server: Any, s3: Any, bucket: str) -> None:
    if server.name == "moto":
        pytest.skip("moto's server stores SSE-C objects without asking for the key back")
    by_cloudpipe(s3, bucket, "k", DATA, **SSE_C)
    found = cloudpipe.verify(bucket, "k", source=io.BytesIO(DATA), client=s3, extra_args=SSE_C)
    key_only = {"SSECustomerKey": SSE_C["SSECustomerKey"]}  # the algorithm is AES256
    other = cloudpipe.verify(
        bucket, "k", source=io.BytesIO(changed(DATA, 5)), client=s3, extra_args=key_only
    )
    if server.name == "ceph":  # no checksum, and an SSE-C object's ETag is no MD5: the size only
        assert (found.verdict, other.verdict) == (cloudpipe.Verdict.UNKNOWN,) * 2
        assert "only the size could be compared, and it matches" in found.detail
    else:
        assert found.identical, str(found)
        assert other.verdict is cloudpipe.Verdict.DIFFERENT
    with pytest.raises(cloudpipe.UploadError, match="HeadObject failed") as caught:
        cloudpipe.verify(bucket, "k", source=io.BytesIO(DATA), client=s3)
    assert str(caught.value).endswith(
        "; if the object is SSE-C encrypted, pass its key: extra_args SSECustomerKey"
    )


def test_the_object_is_never_downloaded(
    s3: Any, bucket: str, proxy: FaultProxy, proxied: Any
) -> None:
    for key, write in WRITERS.items():
        write(s3, bucket, key, DATA)
    since = len(proxy.requests())
    for key in WRITERS:
        for source in (DATA, changed(DATA, PART + 1)):
            cloudpipe.verify(bucket, key, source=io.BytesIO(source), client=proxied)
    asked = proxy.requests()[since:]
    assert asked, "the proxy saw the requests"
    reads = [entry.path for entry in asked if entry.method not in ("HEAD",)]
    assert all("attributes" in path for path in reads), reads  # GetObjectAttributes only


def test_an_answer_no_s3_store_gives_is_an_error_not_a_verdict(
    s3: Any, bucket: str, proxy: FaultProxy, proxied: Any
) -> None:
    """A HeadObject answered 200 without an ETag (not an S3 server, or one that misbehaves):
    nothing to compare with, so an error, never "different" from a guess."""
    by_cloudpipe(s3, bucket, "k", SMALL)
    proxy.add(Rule("respond", method="HEAD", status=200, body=b"", headers={}, times=99))
    with pytest.raises(cloudpipe.UploadError) as caught:
        cloudpipe.verify(bucket, "k", source=io.BytesIO(SMALL), client=proxied)
    assert str(caught.value) == (
        f"s3://{bucket}/k: HeadObject answered without ETag: is {proxy.endpoint_url} an S3 "
        "endpoint?"
    )


def test_part_sizes_the_store_does_not_give_are_assumed_and_never_prove_a_difference(
    s3: Any, bucket: str, proxy: FaultProxy, proxied: Any
) -> None:
    """A store that keeps no checksum and gives no part sizes (Ceph 16): the ETag of a
    multipart upload is checked with part sizes assumed, which can prove the source
    identical but not different (another part size makes another ETag)."""
    by_multipart_loop(s3, bucket, "k", DATA)
    proxy.respond(501, "NotImplemented", method="GET", path_contains="attributes", times=99)
    proxy.respond(400, "InvalidArgument", method="HEAD", path_contains="partNumber=", times=99)

    def check(data: bytes, part_size: int | None) -> cloudpipe.Verification:
        source = io.BytesIO(data)
        return cloudpipe.verify(bucket, "k", source=source, client=proxied, part_size=part_size)

    hinted = check(DATA, PART)
    assert hinted.identical, str(hinted)
    assert "parts of 5MiB (the part size given)" in hinted.detail
    unsure = check(changed(DATA, 9), PART)
    assert unsure.verdict is cloudpipe.Verdict.UNKNOWN, str(unsure)
    assert "assumed" in unsure.detail
    assert "--part-size" in unsure.detail
    default = check(DATA, None)  # 8 MiB parts would make 2, not 4
    assert default.verdict is cloudpipe.Verdict.UNKNOWN
    assert "no part size tried makes that many" in default.detail
    shorter = check(DATA[:-5], None)
    assert shorter.verdict is cloudpipe.Verdict.DIFFERENT  # the size is always known


def test_assumed_sizes_follow_cloudpipes_growing_schedule_past_1250_parts() -> None:
    mib = 2**20
    size = 1250 * 8 * mib + 3 * 16 * mib + 5
    layout = _assumed(1254, size, None)
    assert layout is not None
    assert layout.assumed is not None
    assert "growing" in layout.assumed
    assert [part.size for part in layout.parts[1249:]] == [8 * mib, 16 * mib, 16 * mib, 16 * mib, 5]
    uniform = _assumed(1257, size, None)  # 8 MiB parts throughout make 1257
    assert uniform is not None
    assert "growing" not in str(uniform.assumed)
    assert _assumed(7, size, None) is None


def test_bad_arguments_are_one_line_errors(s3: Any, tmp_path: Path) -> None:
    source = io.BytesIO(b"x")
    with pytest.raises(TypeError, match="bucket must be a str, not int"):
        cloudpipe.verify(7, "k", source=source, client=s3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="s3://"):
        cloudpipe.verify("not-a-url", source=source, client=s3)
    with pytest.raises(
        ValueError, match="part_size=1024 is out of range: it must be 5 MiB to 5 GiB"
    ):
        cloudpipe.verify("b-1", "k", source=source, client=s3, part_size=1024)
    with pytest.raises(ValueError, match="extra_args 'ContentType': verify reads the object"):
        cloudpipe.verify("b-1", "k", source=source, client=s3, extra_args={"ContentType": "x"})
    with pytest.raises(TypeError, match="source must be a binary file or a path, not bytes"):
        cloudpipe.verify("b-1", "k", source=b"data", client=s3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="max_attempts must be an int, not str"):
        cloudpipe.verify("b-1", "k", source=source, client=s3, max_attempts="3")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="key must not be empty"):
        cloudpipe.verify("b-1", "", source=source, client=s3)
    with pytest.raises(FileNotFoundError):
        cloudpipe.verify("b-1", "k", source=tmp_path / "missing", client=s3)


def test_a_text_source_is_refused(s3: Any, bucket: str) -> None:
    by_cloudpipe(s3, bucket, "k", SMALL)
    with pytest.raises(TypeError, match="source must be a binary file, not one that reads str"):
        cloudpipe.verify(bucket, "k", source=io.StringIO("text"), client=s3)


# -- the command: its plumbing, the same on every store (the comparisons are tested above) --


def run(
    args: list[str], env: dict[str, str], data: bytes = b""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        COMMAND + args,
        input=data.decode("latin-1"),
        env=env,
        capture_output=True,
        text=True,
        encoding="latin-1",
        timeout=120,
    )


@pytest.mark.one_server
def test_the_command_says_identical_or_where_it_differs(
    server: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    by_multipart_loop(s3, bucket, "k", DATA)
    env = aws_env(server.endpoint_url, tmp_path)
    url = f"s3://{bucket}/k"
    path = tmp_path / "data"
    path.write_bytes(DATA)
    url_size = [url, "--part-size", "5MiB"]  # the parts' size, which Ceph RGW 16 does not give
    for args, data in (
        ([*url_size, "--input", str(path)], b""),
        ([*url_size, "-"], DATA),
        (["-", *url_size], DATA),
    ):
        done = run(args, env, data)
        assert (done.returncode, done.stderr) == (0, ""), done.stderr
        assert done.stdout.startswith(f"{url}: identical: the "), done.stdout
    with open("/dev/full", "w") as full:  # standard output that takes nothing: the status
        gone = subprocess.run(
            [*COMMAND, *url_size, "-"], input=DATA, env=env, stdout=full, stderr=subprocess.PIPE
        )
    assert (gone.returncode, gone.stderr) == (0, b"")
    shown = run([*url_size, "--progress", "--quiet"], env, DATA)
    assert (shown.returncode, shown.stdout) == (0, "")
    assert f"verify s3://{bucket}/k: 15.0 MiB, " in shown.stderr, shown.stderr
    assert "parts=" not in shown.stderr
    done = run([*url_size, "--json"], env, changed(DATA, PART + 3))
    assert done.returncode == 1, done.stderr
    result = json.loads(done.stdout)
    assert result["verdict"] == ("unknown" if server.name == "ceph" else "different")
    assert result["identical"] is False
    assert result["object_bytes"] == len(DATA)
    assert result["seconds"] >= 0
    assert result["part"] == (2 if server.name == "moto" else None)  # moto: part MD5s
    done = run([f"s3://{bucket}/missing"], env, DATA)
    assert (done.returncode, done.stdout) == (
        1,
        f"s3://{bucket}/missing: different: the store holds no object\n",
    )


@pytest.mark.one_server
def test_a_producer_that_fails_is_never_identical(
    server: Any, s3: Any, bucket: str, tmp_path: Path
) -> None:
    by_cloudpipe(s3, bucket, "k", DATA)
    env = aws_env(server.endpoint_url, tmp_path)
    path = tmp_path / "data"
    path.write_bytes(DATA)
    url = f"s3://{bucket}/k"
    good = run([url, "--part-size", "5MiB", "--", "cat", str(path)], env)
    assert (good.returncode, good.stderr) == (0, ""), good.stderr
    failing = run([url, "--", "sh", "-c", f"cat {path}; exit 3"], env)  # all its output, then 3
    assert failing.returncode == 1
    assert failing.stdout == ""
    assert failing.stderr.startswith("cloudpipe verify: the producer ")
    assert failing.stderr.endswith(
        "exited with status 3: its output is not the stream; not verified\n"
    )
    cut = run([url, "--", "sh", "-c", f"head -c 100 {path}; exit 4"], env)
    assert cut.returncode == 1
    assert "exited with status 4" in cut.stderr


def test_the_command_refuses_bad_usage_with_status_2(tmp_path: Path) -> None:
    env = aws_env("http://127.0.0.1:1", tmp_path)
    for args, words in (
        (["s3://b-1/k", "--input", "f", "-"], "the input is one of '-'"),
        (["s3://b-1/k", "--part-size", "1MiB"], "--part-size 1048576 bytes is out of range"),
        (["s3://b-1/k", "s3://b-1/j"], "one s3://BUCKET/KEY and at most '-'"),
        (["s3://b-1/k", "--extra-arg", "ContentType=x"], "verify reads the object"),
        (["s3://b-1/k", "--input", str(tmp_path / "none")], "cannot read --input"),
        (["s3://b-1/k", "--", "no-such-command-here"], "command not found"),
    ):
        done = run(args, env)
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr.count("\n") == 1, done.stderr
        assert words in done.stderr, done.stderr


def test_the_command_takes_an_sse_c_key(server: Any, s3: Any, bucket: str, tmp_path: Path) -> None:
    if server.name == "moto":
        pytest.skip("moto's server stores SSE-C objects without asking for the key back")
    by_cloudpipe(s3, bucket, "k", DATA, **SSE_C)
    env = aws_env(server.endpoint_url, tmp_path)
    key = f"SSECustomerKey={SSE_C['SSECustomerKey']}"
    done = run([f"s3://{bucket}/k", "--extra-arg", key], env, DATA)
    assert done.returncode == (1 if server.name == "ceph" else 0), done.stderr  # Ceph: unknown
    assert done.stderr == ""
    assert done.stdout.startswith(f"s3://{bucket}/k: ")
    refused = run([f"s3://{bucket}/k"], env, DATA)
    assert refused.returncode == 1
    assert refused.stderr.startswith("cloudpipe verify: s3://")
    assert refused.stderr.endswith("pass its key: --extra-arg SSECustomerKey\n")


@pytest.mark.one_server
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_a_signal_stops_the_producer_and_says_nothing_was_verified(
    server: Any, s3: Any, bucket: str, tmp_path: Path, signum: signal.Signals
) -> None:
    by_cloudpipe(s3, bucket, "k", DATA)
    marker = tmp_path / "producer-got"
    producer = (
        f"trap 'echo TERM > {marker}; exit 143' TERM; trap 'echo INT > {marker}; exit 130' INT; "
        f"head -c {PART} /dev/zero; while :; do sleep 0.1; done"
    )
    process = subprocess.Popen(
        [*COMMAND, f"s3://{bucket}/k", "--progress", "--", "sh", "-c", producer],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=aws_env(server.endpoint_url, tmp_path),
    )
    assert process.stderr is not None
    seen = b""
    while b"5.0 MiB" not in seen:  # the bar shows the producer's first 5 MiB read
        got = process.stderr.read1(4096)  # type: ignore[attr-defined]
        assert got, "verify ended before the producer's output was read"
        seen += got
    process.send_signal(signum)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 130
    assert out == b""
    assert (
        err.decode()
        .splitlines()[-1]
        .endswith(f"cloudpipe verify: interrupted by {signum.name}: not verified")
    )
    assert marker.read_text().strip() == signum.name.removeprefix("SIG"), "the producer never heard"
