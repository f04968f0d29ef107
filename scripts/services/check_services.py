#!/usr/bin/env python3
"""Smoke-test the services started by scripts/services/start.sh, with pyiceberg and boto3.

Reads the BCN_TEST_* variables of RUN_DIR/services.env from the environment (check.sh
sources it) and checks every service named in BCN_TEST_SERVICES, or those given with
--only:

  moto  S3: bucket, put/get.  Glue: namespace, table on moto S3, two appends, read back,
        register_table of the table's metadata file under a new name, read that.
  hms   HiveCatalog: namespace on moto S3, table, appends, read back, register_table; and a
        table in a namespace without a location (lands in the HMS warehouse on moto).
  rest  RestCatalog (rustberg): namespace, table in the local warehouse, appends, read back,
        register_table under a new name (needs location_scope = "warehouse"), read that.
  s3s   boto3 with the right keys: bucket, put/get/list, If-None-Match: * enforced; a wrong
        secret, a wrong access key and an unsigned request must all be refused.

Every name it creates carries a fresh suffix, so it can run any number of times against
the same services. Prints one PASS/FAIL line per check and closes with
"services check: N checks passed, N failed"; exits 1 when anything failed.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
import traceback
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable

import boto3
import pyarrow as pa
from botocore.config import Config
from botocore.exceptions import ClientError
from pyiceberg.catalog import Catalog
from pyiceberg.schema import Schema
from pyiceberg.types import LongType, NestedField, StringType

warnings.filterwarnings("ignore")

SUFFIX = f"{int(time.time()) % 100000:05d}{secrets.token_hex(2)}"
SCHEMA = Schema(
    NestedField(1, "id", LongType(), required=False),
    NestedField(2, "v", StringType(), required=False),
)
ROWS = [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}, {"id": 3, "v": "c"}]


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set (source RUN_DIR/services.env)")
    return value


def s3_client(endpoint: str, access_key: str, secret_key: str, region: str):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=region,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def s3_props(endpoint: str, access_key: str, secret_key: str, region: str) -> dict[str, str]:
    return {
        "s3.endpoint": endpoint,
        "s3.region": region,
        "s3.path-style-access": "true",
        "s3.access-key-id": access_key,
        "s3.secret-access-key": secret_key,
    }


def ids(table) -> list[int]:
    return sorted(table.scan().to_arrow().column("id").to_pylist())


def table_roundtrip(cat: Catalog, ns: str, ns_props: dict[str, str], register: bool) -> str:
    """Namespace + table + two appends + read back (+ register_table). Returns a summary."""
    cat.create_namespace(ns, properties=ns_props)
    assert (ns,) in cat.list_namespaces(), f"namespace {ns} not listed"
    ident = f"{ns}.t1"
    t = cat.create_table(ident, schema=SCHEMA, properties={"bcn.check": "1"})
    t.append(pa.Table.from_pylist(ROWS[:2], schema=t.schema().as_arrow()))
    t.append(pa.Table.from_pylist(ROWS[2:], schema=t.schema().as_arrow()))
    t = cat.load_table(ident)
    assert len(t.metadata.snapshots) == 2, f"expected 2 snapshots, got {len(t.metadata.snapshots)}"
    assert ids(t) == [1, 2, 3], f"read back {ids(t)}"
    out = f"table at {t.location()}"
    if register:
        reg = f"{ns}.t1_registered"
        r = cat.register_table(reg, t.metadata_location)
        assert ids(r) == [1, 2, 3], f"registered table reads {ids(r)}"
        r = cat.load_table(reg)
        assert r.metadata_location == t.metadata_location, (r.metadata_location, t.metadata_location)
        assert ids(r) == [1, 2, 3]
        assert {x[1] for x in cat.list_tables(ns)} >= {"t1", "t1_registered"}, cat.list_tables(ns)
        out += "; register_table OK"
    return out


# --------------------------------------------------------------------------------------------


def check_moto_s3() -> str:
    ep, ak, sk, rg = (env(f"BCN_TEST_MOTO_{k}") for k in ("ENDPOINT", "ACCESS_KEY", "SECRET_KEY", "REGION"))
    s3 = s3_client(ep, ak, sk, rg)
    bucket = f"bcn-check-{SUFFIX}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="a/b.txt", Body=b"hello")
    assert s3.get_object(Bucket=bucket, Key="a/b.txt")["Body"].read() == b"hello"
    return f"bucket {bucket}"


def check_glue() -> str:
    from pyiceberg.catalog.glue import GlueCatalog

    ep, ak, sk, rg = (env(f"BCN_TEST_MOTO_{k}") for k in ("ENDPOINT", "ACCESS_KEY", "SECRET_KEY", "REGION"))
    bucket = f"bcn-glue-{SUFFIX}"
    s3_client(ep, ak, sk, rg).create_bucket(Bucket=bucket)
    cat = GlueCatalog(
        "glue",
        **{
            "glue.endpoint": ep,
            "glue.region": rg,
            "glue.access-key-id": ak,
            "glue.secret-access-key": sk,
            "warehouse": f"s3://{bucket}/warehouse",
            **s3_props(ep, ak, sk, rg),
        },
    )
    ns = f"glue_{SUFFIX}"
    return table_roundtrip(cat, ns, {"location": f"s3://{bucket}/warehouse/{ns}.db"}, register=True)


def _hive_catalog():
    from pyiceberg.catalog.hive import HiveCatalog

    ep, ak, sk, rg = (env(f"BCN_TEST_MOTO_{k}") for k in ("ENDPOINT", "ACCESS_KEY", "SECRET_KEY", "REGION"))
    return HiveCatalog("hive", **{"uri": env("BCN_TEST_HMS_URI"), **s3_props(ep, ak, sk, rg)}), (ep, ak, sk, rg)


def check_hms() -> str:
    cat, (ep, ak, sk, rg) = _hive_catalog()
    bucket = f"bcn-hive-{SUFFIX}"
    s3_client(ep, ak, sk, rg).create_bucket(Bucket=bucket)
    ns = f"hive_{SUFFIX}"
    return table_roundtrip(cat, ns, {"location": f"s3://{bucket}/{ns}.db", "comment": "bcn check"}, register=True)


def check_hms_default_warehouse() -> str:
    cat, _ = _hive_catalog()
    ns = f"hive_wh_{SUFFIX}"
    cat.create_namespace(ns)
    t = cat.create_table(f"{ns}.t1", schema=SCHEMA)
    wh = env("BCN_TEST_HMS_WAREHOUSE").rstrip("/")
    assert t.location().startswith(wh + "/"), f"{t.location()} is not under {wh}"
    t.append(pa.Table.from_pylist(ROWS, schema=t.schema().as_arrow()))
    assert ids(cat.load_table(f"{ns}.t1")) == [1, 2, 3]
    return f"table at {t.location()}"


def check_rest() -> str:
    from pyiceberg.catalog.rest import RestCatalog

    cat = RestCatalog("rest", uri=env("BCN_TEST_REST_URI"))
    ns = f"rest_{SUFFIX}"
    out = table_roundtrip(cat, ns, {"comment": "bcn check"}, register=True)
    wh = env("BCN_TEST_REST_WAREHOUSE").rstrip("/")
    loc = cat.load_table(f"{ns}.t1").location()
    assert loc.replace("file:///", "file:/").startswith(wh.replace("file:///", "file:/")), f"{loc} not under {wh}"
    return out


def check_s3s() -> str:
    ep, ak, sk, rg = (env(f"BCN_TEST_S3S_{k}") for k in ("ENDPOINT", "ACCESS_KEY", "SECRET_KEY", "REGION"))
    s3 = s3_client(ep, ak, sk, rg)
    bucket = f"bcn-s3s-{SUFFIX}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="dir/hello.txt", Body=b"hello world")
    assert s3.get_object(Bucket=bucket, Key="dir/hello.txt")["Body"].read() == b"hello world"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="dir/").get("Contents", [])]
    assert keys == ["dir/hello.txt"], keys
    try:
        s3.put_object(Bucket=bucket, Key="dir/hello.txt", Body=b"x", IfNoneMatch="*")
        raise AssertionError("If-None-Match: * not enforced")
    except ClientError as e:
        assert e.response["Error"]["Code"] == "PreconditionFailed", e.response["Error"]

    refused = []
    for label, client in (
        ("wrong secret", s3_client(ep, ak, sk + "-wrong", rg)),
        ("wrong access key", s3_client(ep, ak + "-wrong", sk, rg)),
    ):
        try:
            client.get_object(Bucket=bucket, Key="dir/hello.txt")
            raise AssertionError(f"request with a {label} was accepted")
        except ClientError as e:
            status = e.response["ResponseMetadata"]["HTTPStatusCode"]
            assert status == 403, f"{label}: HTTP {status} {e.response['Error']}"
            refused.append(f"{label}: {e.response['Error']['Code']}")
    try:
        urllib.request.urlopen(f"{ep}/{bucket}/dir/hello.txt", timeout=5)
        raise AssertionError("unsigned request was accepted")
    except urllib.error.HTTPError as e:
        assert e.code == 403, f"unsigned request: HTTP {e.code}"
        refused.append("unsigned: 403")
    return "refused " + ", ".join(refused)


CHECKS: dict[str, list[tuple[str, Callable[[], str]]]] = {
    "moto": [("moto-s3", check_moto_s3), ("glue-on-moto", check_glue)],
    "s3s": [("s3s-sigv4", check_s3s)],
    "hms": [("hive-on-moto-s3", check_hms), ("hive-default-warehouse", check_hms_default_warehouse)],
    "rest": [("rest-rustberg", check_rest)],
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", help="comma-separated subset of: " + ",".join(CHECKS))
    args = ap.parse_args()
    services = (args.only or os.environ.get("BCN_TEST_SERVICES", "").replace(" ", ",")).split(",")
    services = [s for s in services if s]
    if not services:
        print("no services to check (BCN_TEST_SERVICES empty; source RUN_DIR/services.env)", file=sys.stderr)
        return 2
    unknown = [s for s in services if s not in CHECKS]
    if unknown:
        print(f"unknown services: {unknown}", file=sys.stderr)
        return 2
    if "hms" in services and not os.environ.get("BCN_TEST_MOTO_ENDPOINT"):
        print("the hms checks keep their data on moto: start moto too", file=sys.stderr)
        return 2

    passed = failed = 0
    t_all = time.time()
    for s in services:
        for name, fn in CHECKS[s]:
            t0 = time.time()
            try:
                detail = fn()
                passed += 1
                print(f"PASS {name} ({time.time() - t0:.1f} s): {detail}", flush=True)
            except Exception as e:  # noqa: BLE001 - report every failure and go on
                failed += 1
                print(f"FAIL {name} ({time.time() - t0:.1f} s): {type(e).__name__}: {e}", flush=True)
                traceback.print_exc(limit=6, file=sys.stderr)
    print(f"checks took {time.time() - t_all:.1f} s", flush=True)
    print(f"services check: {passed} checks passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
