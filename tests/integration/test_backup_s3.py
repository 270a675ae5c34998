"""Backups through S3, against moto's S3 server on loopback (a real HTTP S3 endpoint)."""

import contextlib
import gzip
import os
from pathlib import Path

import boto3
import pytest

from phrases import line_with


def kit_files(directory):
    """What a directory of backups holds, but the .gitignore that keeps it out of git."""
    return [path for path in directory.iterdir() if path.name != ".gitignore"]


pytestmark = pytest.mark.docker

BUCKET = "devkit-backups"


@pytest.fixture
def s3(s3_endpoint, monkeypatch, tmp_path):
    creds = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    for key, value in creds.items():
        monkeypatch.setenv(key, value)
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket=BUCKET)
    env = {
        **creds,
        "INVOKE_DEVKIT_S3_BUCKET": BUCKET,
        "INVOKE_DEVKIT_S3_ENDPOINT_URL": s3_endpoint,
        "INVOKE_DEVKIT_BACKUP_DIR": str(tmp_path / "local"),
    }
    yield client, env
    for obj in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=obj["Key"])
    client.delete_bucket(Bucket=BUCKET)


def make_backup(stack, env):
    made = stack.invoke("db.backup", extra_env=env)
    assert made.returncode == 0, made.stderr
    return made.stdout.strip().splitlines()[-1]


def test_upload_list_download_round_trip(stack, s3, tmp_path):
    client, env = s3
    path = make_backup(stack, env)
    name = os.path.basename(path)
    up = stack.invoke("db.upload", path, extra_env=env)
    assert up.returncode == 0, up.stderr
    assert f"s3://{BUCKET}/backups/{name}" in up.stdout
    head = client.head_object(Bucket=BUCKET, Key=f"backups/{name}")
    assert len(head["Metadata"]["sha256"]) == 64
    listed = stack.invoke("db.list-remote", extra_env=env)
    assert name in listed.stdout
    elsewhere = tmp_path / "elsewhere"
    down = stack.invoke("db.download", name, "--output-dir", str(elsewhere), extra_env=env)
    assert down.returncode == 0, down.stderr
    assert (elsewhere / name).read_bytes() == Path(path).read_bytes()
    assert oct((elsewhere / name).stat().st_mode & 0o777) == "0o600"


def test_a_changed_object_is_refused_on_download(stack, s3, tmp_path):
    client, env = s3
    path = make_backup(stack, env)
    name = os.path.basename(path)
    assert stack.invoke("db.upload", path, extra_env=env).returncode == 0
    key = f"backups/{name}"
    sha = client.head_object(Bucket=BUCKET, Key=key)["Metadata"]["sha256"]
    data = bytearray(gzip.decompress(Path(path).read_bytes()))
    data[len(data) // 2] ^= 0x01
    client.put_object(
        Bucket=BUCKET, Key=key, Body=gzip.compress(bytes(data)), Metadata={"sha256": sha}
    )
    target = tmp_path / "dl"
    down = stack.invoke("db.download", name, "--output-dir", str(target), extra_env=env)
    assert down.returncode == 1
    line_with(down.stderr, "error:", "SHA-256")
    assert not target.exists() or kit_files(target) == []


@pytest.mark.parametrize(
    "name", ["../../etc/passwd", "backups/backup_20250101_000000.backup.gz", "x.gz"]
)
def test_download_refuses_anything_but_a_backup_name(stack, s3, name):
    _, env = s3
    result = stack.invoke("db.download", name, extra_env=env)
    assert result.returncode == 2
    assert "is not a backup name" in result.stderr


def test_restore_from_s3(stack, s3):
    _, env = s3
    path = make_backup(stack, env)
    assert stack.invoke("db.upload", path, extra_env=env).returncode == 0

    def execute(statement: str):
        # A connection per statement: the restore keeps a snapshot first, which ends the
        # sessions open on the database.
        conn = stack.connect()
        with conn, conn.cursor() as cur:
            cur.execute(statement)
            found = cur.fetchone() if cur.description else None
        conn.close()
        return found

    execute("CREATE TABLE IF NOT EXISTS s3_marker (v text)")
    execute("INSERT INTO s3_marker VALUES ('added after the backup')")
    os.remove(path)  # restore-s3 must fetch it
    try:
        result = stack.invoke("db.restore-s3", os.path.basename(path), "--yes", extra_env=env)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Restore completed" in result.stdout
        line_with(result.stdout, "not in the backup", "public.s3_marker")
        assert execute("SELECT count(*) FROM s3_marker") == (1,)
        exact = stack.invoke(
            "db.restore-s3", os.path.basename(path), "--yes", "--exact", "--no-backup",
            extra_env=env,
        )  # fmt: skip
        assert exact.returncode == 0, exact.stdout + exact.stderr
        assert execute("SELECT count(*) FROM s3_marker") == (0,)
    finally:
        execute("DROP TABLE IF EXISTS s3_marker")
        stack.drop_automatic_snapshots()


def test_upload_without_a_bucket_says_how_to_set_one(stack, tmp_path):
    env = {"INVOKE_DEVKIT_BACKUP_DIR": str(tmp_path)}
    path = make_backup(stack, env)
    result = stack.invoke("db.upload", path, extra_env=env)
    assert result.returncode == 2
    assert "no S3 bucket is set" in result.stderr and "INVOKE_DEVKIT_S3_BUCKET" in result.stderr


def test_a_download_is_private_from_its_first_byte(s3, tmp_path):
    """Every file that appears in the directory while a (large) object downloads is mode 0600
    (was: boto3's temporary file, 0644 until the download ended)."""
    import threading

    from devkit.backup.fileformat import CorruptBackup
    from devkit.destinations.s3 import S3

    client, env = s3
    name = "backup_20260101_000000.backup.gz"
    payload = os.urandom(48 << 20)
    client.put_object(Bucket=BUCKET, Key=f"backups/{name}", Body=payload)
    directory = tmp_path / "down"
    directory.mkdir()
    seen: dict[str, int] = {}
    done = threading.Event()

    def watch():
        while not done.is_set():
            for entry in os.scandir(directory):
                with contextlib.suppress(FileNotFoundError):
                    seen.setdefault(entry.name, entry.stat(follow_symlinks=False).st_mode & 0o777)

    watcher = threading.Thread(target=watch)
    watcher.start()
    bucket = S3(BUCKET, "backups/", env["INVOKE_DEVKIT_S3_ENDPOINT_URL"], "")
    try:
        with pytest.raises(CorruptBackup, match=r"not a readable gzip file|damaged"):
            bucket.download(name, directory)  # random bytes: refused after the download
    finally:
        done.set()
        watcher.join()
    assert seen, "the download was never seen"
    assert all(mode == 0o600 for mode in seen.values()), seen
    assert kit_files(directory) == []
