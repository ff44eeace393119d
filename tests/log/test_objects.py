"""The object-store API: ``objects_url`` on Log.create/open, the directory store, URL parsing."""

from __future__ import annotations

import uuid

import pytest
from teelog.log import Log, LogError, LogStateError, S3Settings
from teelog.log.objects import DirectoryStore, ObjectStoreError, S3Store, open_objects

ORIGIN = "example.com/objects-test"


def test_a_log_with_an_objects_directory_keeps_tiles_and_blobs_there(tmp_path, database_url):
    data, objects = tmp_path / "data", tmp_path / "objects"
    log = Log.create(data, ORIGIN, database_url=database_url, objects_url=str(objects))
    indexes = log.append_many([b"a", b"b", b"c"])
    digest = log.blobs.put(b"evidence")
    log.close()
    assert (objects / "tiles" / "checkpoint").is_file()
    assert (objects / "blobs" / digest[:2] / digest[2:]).is_file()
    assert not (data / "tiles").exists()
    reopened = Log.open(data, database_url=database_url, objects_url=objects)
    assert [reopened.entry(i) for i in indexes] == [b"a", b"b", b"c"]
    assert reopened.blobs.get(digest) == b"evidence"
    reopened.close()


def test_opening_with_the_wrong_objects_directory_is_refused(tmp_path, database_url):
    data = tmp_path / "data"
    log = Log.create(data, ORIGIN, database_url=database_url, objects_url=tmp_path / "objects")
    log.append_many([b"a", b"b"])
    log.close()
    # The data directory's own tiles/ does not exist: the signed record does not match it.
    with pytest.raises(LogStateError):
        Log.open(data, database_url=database_url).check()


def test_objects_urls_other_than_a_directory_or_s3_are_rejected(tmp_path):
    with pytest.raises(LogError, match="directory or s3://"):
        Log.create(tmp_path / "d", ORIGIN, objects_url="gs://bucket/x")
    with pytest.raises(ObjectStoreError, match="no bucket"):
        open_objects("s3:///prefix")
    with pytest.raises(ObjectStoreError, match="directory or s3://"):
        open_objects("http://example.com/x")


def test_an_s3_url_names_bucket_and_prefix_and_takes_explicit_settings():
    store = open_objects(
        "s3://logs/prod/a",
        S3Settings("http://127.0.0.1:1", "eu-west-1", "AK", "SK"),
    )
    assert isinstance(store, S3Store)
    assert (store.bucket, store.prefix) == ("logs", "prod/a/")
    assert store.client.meta.region_name == "eu-west-1"
    assert store.client.meta.endpoint_url == "http://127.0.0.1:1"


def test_s3_settings_fall_back_to_the_aws_environment(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:2")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "envkey")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "envsecret")
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    merged = S3Settings(access_key_id="explicit").merged()
    assert merged == S3Settings("http://127.0.0.1:2", "us-east-1", "explicit", "envsecret")


def test_the_directory_store_keeps_immutable_objects_and_rejects_escaping_keys(tmp_path):
    store = DirectoryStore(tmp_path)
    store.put("tile/0/000", b"first", immutable=True)
    store.put("tile/0/000", b"second", immutable=True)
    assert store.get("tile/0/000") == b"first"
    store.put("checkpoint", b"1")
    store.put("checkpoint", b"2")
    assert store.get("checkpoint") == b"2"
    assert store.get("missing") is None
    store.put("tile/0/001.p/3", b"p")
    store.delete_prefix("tile/0/001.p")
    assert store.get("tile/0/001.p/3") is None
    for bad in ("../x", "/etc/passwd", ""):
        with pytest.raises(ObjectStoreError):
            store.get(bad)


def test_a_log_on_an_s3_store_is_refused_clearly_until_the_sequencer_writes_through_it(tmp_path):
    with pytest.raises(LogError, match="cannot sequence onto an S3 store yet"):
        Log.create(tmp_path / "d", ORIGIN, objects_url="s3://bucket/prefix")
    assert not (tmp_path / "d" / "log.json").exists()


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory):
    from seaweedfs_server import seaweedfs

    with seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server


@pytest.fixture
def s3_store(s3_server):
    settings = S3Settings(
        s3_server.endpoint_url, "us-east-1", s3_server.access_key_id, s3_server.secret_access_key
    )
    bucket = f"t-{uuid.uuid4().hex[:12]}"
    store = open_objects(f"s3://{bucket}/log/a", settings)
    store.client.create_bucket(Bucket=bucket)
    return store


def test_the_s3_store_on_seaweedfs_never_replaces_an_immutable_object(s3_store):
    s3_store.put("tile/0/000", b"first", immutable=True)
    s3_store.put("tile/0/000", b"second", immutable=True)
    assert s3_store.get("tile/0/000") == b"first"
    assert s3_store._conditional  # SeaweedFS answers If-None-Match: * with 412
    s3_store.put("checkpoint", b"1")
    s3_store.put("checkpoint", b"2")
    assert s3_store.get("checkpoint") == b"2"
    assert s3_store.get("missing") is None
    raw = s3_store.client.get_object(Bucket=s3_store.bucket, Key="log/a/checkpoint")
    assert raw["Body"].read() == b"2"


def test_the_s3_store_deletes_a_superseded_partial_prefix_only(s3_store):
    s3_store.put("tile/0/001.p/3", b"p")
    s3_store.put("tile/0/001", b"full")
    s3_store.delete_prefix("tile/0/001.p")
    assert s3_store.get("tile/0/001.p/3") is None
    assert s3_store.get("tile/0/001") == b"full"
