#!/usr/bin/env python3
"""Independent Iceberg client for bcn's integration tests (pyiceberg 0.12 + pyarrow).

Creates source tables, mutates them, and reads tables back (e.g. after a bcn restore)
as JSON, so that the Rust tests never have to trust bcn's own Iceberg code to check
bcn's results.

Every subcommand prints one JSON document on stdout. On error it prints a one-line
message on stderr and exits 1.

Catalog options (before or after the subcommand):
  --catalog-type sql|rest|glue|hive   (default sql)
  --catalog-name NAME                 (default bcn)
  --prop key=value                    (repeatable; passed to pyiceberg's load_catalog)

For a local SQL catalog:
  --prop uri=sqlite:////abs/dir/catalog.db --prop warehouse=file:///abs/dir/warehouse

Subcommands: make-sample, mutate, dump, exists, list, drop, rename, create-empty.
Run with --help (also after a subcommand) for details; tests/py/README.md has examples.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import decimal
import glob
import gzip
import hashlib
import importlib
import json
import math
import os
import shutil
import sys
import time
import uuid
import warnings
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NoReturn

import pyarrow as pa
import pyarrow.parquet as pq
import pyiceberg
from pyiceberg.avro.file import AvroFile, AvroOutputFile
from pyiceberg.catalog import Catalog, load_catalog
from pyiceberg.conversions import from_bytes, to_bytes
from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError
from pyiceberg.expressions import EqualTo, GreaterThanOrEqual
from pyiceberg.io import FileIO, OutputFile, load_file_io
from pyiceberg.io.pyarrow import _dataframe_to_data_files, parquet_file_to_data_file, schema_to_pyarrow
from pyiceberg.manifest import (
    DATA_FILE_TYPE,
    MANIFEST_ENTRY_SCHEMAS,
    MANIFEST_LIST_FILE_SCHEMAS,
    DataFile,
    DataFileContent,
    FileFormat,
    ManifestContent,
    ManifestEntry,
    ManifestEntryStatus,
    ManifestFile,
    ManifestListWriter,
    ManifestListWriterV2,
    ManifestWriter,
    ManifestWriterV2,
    PartitionFieldSummary,
    write_manifest_list,
)
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.serializers import ToOutputFile
from pyiceberg.table import Table, TableProperties
from pyiceberg.table.deletion_vector import deletion_vectors_from_puffin_file
from pyiceberg.table.metadata import TableMetadataV3
from pyiceberg.table.puffin import PuffinFile
from pyiceberg.table.refs import MAIN_BRANCH, SnapshotRefType
from pyiceberg.table.snapshots import Operation, Snapshot, SnapshotSummaryCollector, Summary, update_snapshot_summaries
from pyiceberg.table.update import AddSnapshotUpdate, AssertRefSnapshotId, SetSnapshotRefUpdate
from pyiceberg.transforms import IdentityTransform
from pyiceberg.typedef import IcebergBaseModel, TableVersion
from pyiceberg.types import (
    BinaryType,
    BooleanType,
    DateType,
    DecimalType,
    DoubleType,
    FixedType,
    FloatType,
    IcebergType,
    IntegerType,
    LongType,
    NestedField,
    StringType,
    TimestampType,
    TimestamptzType,
    TimeType,
    UUIDType,
)
from pyroaring import BitMap

PROG = "bcn_fixtures"
SAMPLE_TABLES = ("events", "users", "mor")

# Reserved field ids of position delete files (Iceberg spec, "Position Delete Files").
POS_DELETE_FILE_PATH_ID = 2147483546
POS_DELETE_POS_ID = 2147483545

# Puffin files (https://iceberg.apache.org/puffin-spec/) and their deletion-vector-v1 blobs.
PUFFIN_MAGIC = b"PFA1"
DV_BLOB_TYPE = "deletion-vector-v1"
DV_MAGIC = bytes([0xD1, 0xD3, 0x39, 0x64])
# Reserved field id of the `_pos` metadata column: a deletion vector blob's `fields`.
ROW_POSITION_ID = 2147483645


class FixtureError(Exception):
    """An expected failure: reported as a one-line message, exit 1."""


# --------------------------------------------------------------------------- catalog


def parse_props(pairs: Sequence[str]) -> dict[str, str]:
    props: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise FixtureError(f"--prop expects key=value, got {pair!r}")
        props[key] = value
    return props


def _prepare_local_dirs(props: dict[str, str]) -> None:
    """Create the sqlite file's directory and a file:// warehouse directory if missing."""
    uri = props.get("uri", "")
    if uri.startswith("sqlite:///"):
        path = uri[len("sqlite:///") :]
        if path and path != ":memory:":
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    warehouse = props.get("warehouse", "")
    if warehouse.startswith("file://"):
        os.makedirs(warehouse[len("file://") :], exist_ok=True)


def open_catalog(args: argparse.Namespace) -> Catalog:
    props = parse_props(args.prop)
    if args.catalog_type == "sql":
        _prepare_local_dirs(props)
    return load_catalog(args.catalog_name, **{"type": args.catalog_type, **props})


def split_ident(ident: str) -> tuple[str, str]:
    """'ns.tbl' -> ('ns', 'tbl'); nested namespaces keep their dots ('a.b.tbl' -> ('a.b', 'tbl'))."""
    namespace, sep, name = ident.rpartition(".")
    if not sep or not namespace or not name:
        raise FixtureError(f"table identifier must be NAMESPACE.TABLE, got {ident!r}")
    return namespace, name


def load_table(catalog: Catalog, ident: str) -> Table:
    split_ident(ident)
    try:
        return catalog.load_table(ident)
    except NoSuchTableError as e:
        raise FixtureError(f"table {ident} does not exist") from e


def ensure_namespace(catalog: Catalog, namespace: str) -> None:
    try:
        catalog.load_namespace_properties(namespace)
    except NoSuchNamespaceError:
        catalog.create_namespace(namespace, properties={"owner": "fixtures"})


def drop_if_exists(catalog: Catalog, ident: str) -> None:
    """Drop a table and, where the catalog can, its files (so a re-run starts clean)."""
    if not catalog.table_exists(ident):
        return
    try:
        catalog.purge_table(ident)
    except Exception:  # noqa: BLE001 - catalogs that cannot purge: a plain drop is enough
        if catalog.table_exists(ident):
            catalog.drop_table(ident)


# --------------------------------------------------------------------------- JSON helpers


def json_safe(value: Any) -> Any:
    """Convert a pyarrow to_pylist() value into plain JSON values (deterministically)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.timezone.utc).isoformat()  # readers may hand back local time
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return str(value)


def row_key(row: Any) -> str:
    return json.dumps(row, sort_keys=True, separators=(",", ":"))


def sorted_rows(arrow_table: pa.Table) -> list[Any]:
    return sorted((json_safe(r) for r in arrow_table.to_pylist()), key=row_key)


def emit(doc: Any) -> None:
    json.dump(doc, sys.stdout, indent=2)
    sys.stdout.write("\n")


# --------------------------------------------------------------------------- table helpers


def table_ident(table: Table) -> str:
    return ".".join(table.name())


def key_field(schema: Schema) -> NestedField | None:
    """The integer column used as a row id: identifier field, else 'id'/'uid', else the first integer."""
    ints = [f for f in schema.fields if isinstance(f.field_type, (LongType, IntegerType))]
    for fid in schema.identifier_field_ids:
        field = schema.find_field(fid)
        if field in ints:
            return field
    for name in ("id", "uid"):
        for field in ints:
            if field.name == name:
                return field
    return ints[0] if ints else None


def live_row_count(table: Table) -> int:
    return table.scan().to_arrow().num_rows if table.current_snapshot() else 0


def max_key(table: Table, key: NestedField) -> int | None:
    if table.current_snapshot() is None:
        return None
    column = table.scan(selected_fields=(key.name,)).to_arrow().column(key.name)
    values = [v for v in column.to_pylist() if v is not None]
    return max(values) if values else None


def sample_value(field_type: IcebergType, n: int) -> Any:
    """A deterministic value of `field_type` for generated row number n."""
    if isinstance(field_type, (LongType, IntegerType)):
        return n
    if isinstance(field_type, StringType):
        return f"m{n}"
    if isinstance(field_type, BooleanType):
        return n % 2 == 0
    if isinstance(field_type, (FloatType, DoubleType)):
        return n * 0.5
    if isinstance(field_type, DecimalType):
        return decimal.Decimal(n).scaleb(-field_type.scale) if field_type.scale >= 0 else decimal.Decimal(n)
    if isinstance(field_type, DateType):
        return dt.date(2024, 3, 1) + dt.timedelta(days=n % 365)
    if isinstance(field_type, TimeType):
        return dt.time(0, 0, n % 60)
    if isinstance(field_type, TimestampType):
        return dt.datetime(2024, 3, 1) + dt.timedelta(seconds=n)
    if isinstance(field_type, TimestamptzType):
        return dt.datetime(2024, 3, 1, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=n)
    if isinstance(field_type, UUIDType):
        return uuid.UUID(int=n).bytes
    if isinstance(field_type, FixedType):
        return n.to_bytes(8, "big").rjust(len(field_type), b"\0")[-len(field_type) :]
    if isinstance(field_type, BinaryType):
        return f"b{n}".encode()
    return None  # nested and other types: null (only allowed for optional fields)


def generated_rows(table: Table, count: int) -> pa.Table:
    schema = table.schema()
    key = key_field(schema)
    largest = max_key(table, key) if key else None
    start = largest + 1 if largest is not None else live_row_count(table)
    rows = []
    for i in range(count):
        n = start + i
        row: dict[str, Any] = {}
        for field in schema.fields:
            value = sample_value(field.field_type, n)
            if value is None and field.required:
                raise FixtureError(f"cannot generate a value for required column {field.name} ({field.field_type})")
            row[field.name] = value
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=schema_to_pyarrow(schema))


# --------------------------------------------------------------------------- position deletes


class _DeleteManifestWriterV2(ManifestWriterV2):
    """pyiceberg's v2 manifest writer, for a DELETES manifest."""

    def content(self) -> ManifestContent:
        return ManifestContent.DELETES

    @property
    def _meta(self) -> dict[str, str]:
        return {**super()._meta, "content": "deletes"}


def _read_deleted_positions(table: Table, delete_file: DataFile, data_path: str) -> set[int]:
    with table.io.new_input(delete_file.file_path).open() as f:
        deletes = pq.read_table(f, columns=["file_path", "pos"])
    return {pos for path, pos in zip(deletes.column("file_path").to_pylist(), deletes.column("pos").to_pylist()) if path == data_path}


def commit_position_deletes(table: Table, deletes: dict[str, Sequence[int]]) -> Table:
    """Commit a snapshot that adds one Parquet position-delete file per data file.

    pyiceberg 0.12 cannot write position deletes through its public API (its delete()
    falls back to copy-on-write), so this builds the delete file, the DELETES manifest,
    the manifest list and the snapshot with pyiceberg's internals, and commits them as
    AddSnapshot + SetSnapshotRef(main) guarded by AssertRefSnapshotId(main).

    `deletes` maps a live data file path to the 0-based row positions to delete in it.
    """
    meta = table.metadata
    parent = table.current_snapshot()
    if parent is None:
        raise FixtureError(f"{table_ident(table)} has no snapshot to delete from")
    if meta.format_version != 2:
        raise FixtureError(f"position deletes need a format-version 2 table, {table_ident(table)} is v{meta.format_version}")

    live = {task.file.file_path: task.file for task in table.scan().plan_files()}
    io = table.io
    locations = table.location_provider()
    # Iceberg codec names ("gzip", "zstd"); pyiceberg's Avro writer maps them to Avro's.
    compression: Any = meta.properties.get(TableProperties.WRITE_AVRO_COMPRESSION, TableProperties.WRITE_AVRO_COMPRESSION_DEFAULT)
    commit_uuid = uuid.uuid4()
    snapshot_id = meta.new_snapshot_id()
    sequence_number = meta.next_sequence_number()

    arrow_schema = pa.schema(
        [
            pa.field("file_path", pa.string(), nullable=False, metadata={b"PARQUET:field_id": str(POS_DELETE_FILE_PATH_ID).encode()}),
            pa.field("pos", pa.int64(), nullable=False, metadata={b"PARQUET:field_id": str(POS_DELETE_POS_ID).encode()}),
        ]
    )

    delete_files: list[DataFile] = []
    for n, (data_path, raw_positions) in enumerate(sorted(deletes.items())):
        if data_path not in live:
            raise FixtureError(f"{data_path} is not a live data file of {table_ident(table)}")
        data_file = live[data_path]
        positions = sorted(set(raw_positions))
        if not positions or positions[0] < 0 or positions[-1] >= data_file.record_count:
            raise FixtureError(f"positions {positions} out of range for {data_path} ({data_file.record_count} rows)")
        rows = pa.table(
            {"file_path": pa.array([data_path] * len(positions), pa.string()), "pos": pa.array(positions, pa.int64())},
            schema=arrow_schema,
        )
        delete_path = locations.new_data_location(f"{commit_uuid}-{n:05d}-deletes.parquet")
        with io.new_output(delete_path).create(overwrite=False) as out:
            writer = pq.ParquetWriter(out, schema=arrow_schema)
            writer.write_table(rows)
            writer.close()
            parquet_meta = writer.writer.metadata  # FileMetaData of what was written
        count = len(positions)
        column_sizes = {POS_DELETE_FILE_PATH_ID: 0, POS_DELETE_POS_ID: 0}
        split_offsets: list[int] = []
        for r in range(parquet_meta.num_row_groups):
            row_group = parquet_meta.row_group(r)
            first = row_group.column(0)
            if first.has_dictionary_page and first.dictionary_page_offset < first.data_page_offset:
                split_offsets.append(first.dictionary_page_offset)
            else:
                split_offsets.append(first.data_page_offset)
            column_sizes[POS_DELETE_FILE_PATH_ID] += row_group.column(0).total_compressed_size
            column_sizes[POS_DELETE_POS_ID] += row_group.column(1).total_compressed_size
        delete_file = DataFile.from_args(
            content=DataFileContent.POSITION_DELETES,
            file_path=delete_path,
            file_format=FileFormat.PARQUET,
            partition=data_file.partition,
            record_count=count,
            file_size_in_bytes=len(io.new_input(delete_path)),
            column_sizes=column_sizes,
            value_counts={POS_DELETE_FILE_PATH_ID: count, POS_DELETE_POS_ID: count},
            null_value_counts={POS_DELETE_FILE_PATH_ID: 0, POS_DELETE_POS_ID: 0},
            nan_value_counts={},
            lower_bounds={
                POS_DELETE_FILE_PATH_ID: to_bytes(StringType(), data_path),
                POS_DELETE_POS_ID: to_bytes(LongType(), positions[0]),
            },
            upper_bounds={
                POS_DELETE_FILE_PATH_ID: to_bytes(StringType(), data_path),
                POS_DELETE_POS_ID: to_bytes(LongType(), positions[-1]),
            },
            key_metadata=None,
            split_offsets=split_offsets,
            equality_ids=None,
            sort_order_id=None,
        )
        delete_file.spec_id = data_file.spec_id  # not a manifest field: from_args() ignores it
        delete_files.append(delete_file)

    # One DELETES manifest per partition spec.
    new_manifests: list[ManifestFile] = []
    specs = meta.specs()
    for m, spec_id in enumerate(sorted({f.spec_id for f in delete_files})):
        manifest_path = locations.new_metadata_location(f"{commit_uuid}-m{m}.avro")
        writer = _DeleteManifestWriterV2(
            spec=specs[spec_id],
            schema=meta.schema(),
            output_file=io.new_output(manifest_path),
            snapshot_id=snapshot_id,
            avro_compression=compression,
        )
        with writer:
            for f in delete_files:
                if f.spec_id == spec_id:
                    writer.add(ManifestEntry.from_args(status=ManifestEntryStatus.ADDED, snapshot_id=snapshot_id, data_file=f))
        new_manifests.append(writer.to_manifest_file())

    manifest_list = locations.new_metadata_location(f"snap-{snapshot_id}-0-{commit_uuid}.avro")
    with write_manifest_list(
        format_version=meta.format_version,
        output_file=io.new_output(manifest_list),
        snapshot_id=snapshot_id,
        parent_snapshot_id=parent.snapshot_id,
        sequence_number=sequence_number,
        avro_compression=compression,
    ) as list_writer:
        list_writer.add_manifests(list(parent.manifests(io)) + new_manifests)

    collector = SnapshotSummaryCollector()
    for f in delete_files:
        collector.add_file(f, schema=meta.schema(), partition_spec=specs[f.spec_id])
    summary = update_snapshot_summaries(
        Summary(operation=Operation.DELETE, **collector.build()), previous_summary=parent.summary
    )
    snapshot = Snapshot(
        snapshot_id=snapshot_id,
        parent_snapshot_id=parent.snapshot_id,
        sequence_number=sequence_number,
        timestamp_ms=int(time.time() * 1000),
        manifest_list=manifest_list,
        summary=summary,
        schema_id=meta.current_schema_id,
    )

    tx = table.transaction()
    tx._apply(
        (
            AddSnapshotUpdate(snapshot=snapshot),
            SetSnapshotRefUpdate(
                snapshot_id=snapshot_id,
                parent_snapshot_id=parent.snapshot_id,
                ref_name=MAIN_BRANCH,
                type=SnapshotRefType.BRANCH,
            ),
        ),
        (AssertRefSnapshotId(snapshot_id=parent.snapshot_id, ref=MAIN_BRANCH),),
    )
    return tx.commit_transaction()


def locate_live_row(table: Table, key: NestedField, value: int) -> tuple[str, int]:
    """(data file path, position) of the live row whose `key` column equals `value`."""
    for task in table.scan().plan_files():
        path = task.file.file_path
        with table.io.new_input(path).open() as f:
            raw = pq.read_table(f)
        column = next(
            (
                raw.column(i)
                for i, field in enumerate(raw.schema)
                if field.metadata and field.metadata.get(b"PARQUET:field_id") == str(key.field_id).encode()
            ),
            None,
        )
        if column is None:
            continue
        deleted: set[int] = set()
        for delete_file in task.delete_files:
            deleted |= _read_deleted_positions(table, delete_file, path)
        for pos, v in enumerate(column.to_pylist()):
            if v == value and pos not in deleted:
                return path, pos
    raise FixtureError(f"no live row with {key.name} = {value} in {table_ident(table)}")


# --------------------------------------------------------------------------- format v3: deletion vectors
#
# pyiceberg 0.12 reads format-version 3 tables (deletion vectors included) but writes none of
# it: TableMetadataV3.model_dump_json() raises, write_manifest()/write_manifest_list() stop at
# v2, and its manifest readers and writers use the v2 `data_file` struct, so first_row_id,
# referenced_data_file, content_offset and content_size_in_bytes would be dropped. The helpers
# below build v3 tables from its internals, as commit_position_deletes does for v2.


@contextlib.contextmanager
def _v3_metadata_writable() -> Iterator[None]:
    """Let pyiceberg write format-version 3 table metadata files while the block runs.

    TableMetadataV3.model_dump_json() raises NotImplementedError (apache/iceberg-python#1551),
    so catalogs that write the metadata file themselves (sql, glue, hive) cannot commit to a
    v3 table. The model holds every v3 field used here (`next-row-id`, a snapshot's
    `first-row-id` and `added-rows`), and pyiceberg's common JSON dump writes them.
    """
    original = TableMetadataV3.model_dump_json
    TableMetadataV3.model_dump_json = IcebergBaseModel.model_dump_json  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        TableMetadataV3.model_dump_json = original  # type: ignore[method-assign]


class _ManifestWriterV3(ManifestWriter):
    """A format-version 3 manifest writer (DATA or DELETES). Its entries must hold v3 `data_file`
    structs (see _v3_data_file): records and file share the v3 schema, so the v3 fields are kept."""

    def __init__(
        self,
        spec: PartitionSpec,
        schema: Schema,
        output_file: OutputFile,
        snapshot_id: int,
        avro_compression: Any,
        content: ManifestContent,
    ) -> None:
        super().__init__(spec, schema, output_file, snapshot_id, avro_compression)
        self._content = content

    def content(self) -> ManifestContent:
        return self._content

    @property
    def version(self) -> TableVersion:
        return 3

    @property
    def _meta(self) -> dict[str, str]:
        return {**super()._meta, "content": "deletes" if self._content == ManifestContent.DELETES else "data"}

    def new_writer(self) -> AvroOutputFile[ManifestEntry]:
        schema = self._with_partition(3)
        return AvroOutputFile[ManifestEntry](
            output_file=self._output_file,
            file_schema=schema,
            record_schema=schema,
            schema_name="manifest_entry",
            metadata=self._meta,
        )

    def prepare_entry(self, entry: ManifestEntry) -> ManifestEntry:
        return entry


class _ManifestListWriterV3(ManifestListWriterV2):
    """A format-version 3 manifest list writer, like Java's ManifestListWriter.V3Writer: a DATA
    manifest without a first_row_id gets `next_row_id`, which then advances by the manifest's
    added and existing rows; DELETES manifests have none. After writing, `next_row_id` minus the
    first row id is the snapshot's `added-rows`."""

    def __init__(
        self,
        output_file: OutputFile,
        snapshot_id: int,
        parent_snapshot_id: int | None,
        sequence_number: int,
        first_row_id: int,
        compression: Any,
    ) -> None:
        super().__init__(output_file, snapshot_id, parent_snapshot_id, sequence_number, compression)
        self._format_version = 3
        self._meta = {**self._meta, "first-row-id": str(first_row_id), "format-version": "3"}
        self.next_row_id = first_row_id

    def __enter__(self) -> ManifestListWriter:
        self._writer = AvroOutputFile[ManifestFile](
            output_file=self._output_file,
            record_schema=MANIFEST_LIST_FILE_SCHEMAS[3],
            file_schema=MANIFEST_LIST_FILE_SCHEMAS[3],
            schema_name="manifest_file",
            metadata=self._meta,
        )
        self._writer.__enter__()
        return self

    def prepare_manifest(self, manifest_file: ManifestFile) -> ManifestFile:
        manifest = super().prepare_manifest(manifest_file)  # this commit's sequence numbers
        first_row_id = _manifest_first_row_id(manifest)
        if manifest.content == ManifestContent.DATA and first_row_id is None:
            first_row_id = self.next_row_id
            self.next_row_id += (manifest.added_rows_count or 0) + (manifest.existing_rows_count or 0)
        fields = {f.name: manifest[i] for i, f in enumerate(MANIFEST_LIST_FILE_SCHEMAS[2].fields)}
        return ManifestFile.from_args(_table_format_version=3, **fields, first_row_id=first_row_id)


def _manifest_first_row_id(manifest: ManifestFile) -> int | None:
    """first_row_id (field 520) of a manifest list entry read or built with the v3 schema."""
    index = len(MANIFEST_LIST_FILE_SCHEMAS[2].fields)
    return manifest[index] if len(manifest) > index else None


def _manifests_v3(io: FileIO, snapshot: Snapshot) -> list[ManifestFile]:
    """A snapshot's manifest list read with the v3 schema (pyiceberg's reader drops first_row_id)."""
    with AvroFile[ManifestFile](
        io.new_input(snapshot.manifest_list),
        MANIFEST_LIST_FILE_SCHEMAS[3],
        read_types={-1: ManifestFile, 508: PartitionFieldSummary},
        read_enums={517: ManifestContent},
    ) as reader:
        return list(reader)


def _manifest_entries_v3(io: FileIO, manifest: ManifestFile) -> list[ManifestEntry]:
    """A manifest's entries with v3 `data_file` structs (pyiceberg's reader drops the v3 fields)."""
    with AvroFile[ManifestEntry](
        io.new_input(manifest.manifest_path),
        MANIFEST_ENTRY_SCHEMAS[3],
        read_types={-1: ManifestEntry, 2: DataFile},
        read_enums={0: ManifestEntryStatus, 101: FileFormat, 134: DataFileContent},
    ) as reader:
        return list(reader)


def _v3_data_file(data_file: DataFile, spec_id: int, **v3_fields: Any) -> DataFile:
    """A v2 `data_file` struct (what pyiceberg builds) as a v3 one; v3-only fields given or null."""
    fields = {f.name: data_file[i] for i, f in enumerate(DATA_FILE_TYPE[2].fields)}
    out = DataFile.from_args(_table_format_version=3, **{**fields, **v3_fields})
    out.spec_id = spec_id  # not a manifest field: from_args() ignores it
    return out


def _v3_field(data_file: DataFile, name: str) -> Any:
    """A field of a v3 `data_file` struct that pyiceberg's DataFile has no property for."""
    return data_file[[f.name for f in DATA_FILE_TYPE[3].fields].index(name)]


def create_v3_table(catalog: Catalog, ident: str, schema: Schema) -> Table:
    """Create an empty format-version 3 table.

    pyiceberg's create_table cannot (see _v3_metadata_writable), and its fresh v3 metadata has
    no `next-row-id`, which the spec requires (0 for a new table; without it pyiceberg never
    advances row ids). So the first metadata file is written here and registered with the catalog.
    """
    staged = catalog._create_staged_table(ident, schema, properties={"format-version": "3"})  # type: ignore[attr-defined]
    metadata = staged.metadata.model_copy(update={"next_row_id": 0})
    with _v3_metadata_writable():
        ToOutputFile.table_metadata(metadata, staged.io.new_output(staged.metadata_location))
    return catalog.register_table(ident, staged.metadata_location)


def commit_v3_snapshot(table: Table, operation: Operation, files: Sequence[DataFile]) -> Table:
    """Commit a format-version 3 snapshot that keeps the current manifests and adds `files` (v3
    `data_file` structs, all data or all deletes) in one new manifest per partition spec.

    Row lineage as the spec has it: the snapshot's first-row-id is the table's next-row-id, the
    manifest list assigns first_row_id to new data manifests (added data files keep a null one and
    inherit it), and added-rows is how far that advanced. Committed like commit_position_deletes.
    """
    meta = table.metadata
    if meta.format_version != 3:
        raise FixtureError(f"{table_ident(table)} is v{meta.format_version}, not a format-version 3 table")
    first_row_id = getattr(meta, "next_row_id", None)
    if first_row_id is None:
        raise FixtureError(f"{table_ident(table)} has no next-row-id")
    if not files:
        raise FixtureError("nothing to commit")
    contents = {f.content == DataFileContent.DATA for f in files}
    if len(contents) != 1:
        raise FixtureError("a manifest holds either data files or delete files")
    content = ManifestContent.DATA if contents.pop() else ManifestContent.DELETES

    parent = table.current_snapshot()
    io = table.io
    locations = table.location_provider()
    compression: Any = meta.properties.get(TableProperties.WRITE_AVRO_COMPRESSION, TableProperties.WRITE_AVRO_COMPRESSION_DEFAULT)
    commit_uuid = uuid.uuid4()
    snapshot_id = meta.new_snapshot_id()
    sequence_number = meta.next_sequence_number()
    specs = meta.specs()

    new_manifests: list[ManifestFile] = []
    for m, spec_id in enumerate(sorted({f.spec_id for f in files})):
        writer = _ManifestWriterV3(
            spec=specs[spec_id],
            schema=meta.schema(),
            output_file=io.new_output(locations.new_metadata_location(f"{commit_uuid}-m{m}.avro")),
            snapshot_id=snapshot_id,
            avro_compression=compression,
            content=content,
        )
        with writer:
            for f in files:
                if f.spec_id == spec_id:
                    writer.add(ManifestEntry.from_args(status=ManifestEntryStatus.ADDED, snapshot_id=snapshot_id, data_file=f))
        new_manifests.append(writer.to_manifest_file())

    manifest_list = locations.new_metadata_location(f"snap-{snapshot_id}-0-{commit_uuid}.avro")
    list_writer = _ManifestListWriterV3(
        output_file=io.new_output(manifest_list),
        snapshot_id=snapshot_id,
        parent_snapshot_id=parent.snapshot_id if parent else None,
        sequence_number=sequence_number,
        first_row_id=first_row_id,
        compression=compression,
    )
    with list_writer:
        list_writer.add_manifests(new_manifests + (_manifests_v3(io, parent) if parent else []))

    collector = SnapshotSummaryCollector()
    for f in files:
        collector.add_file(f, schema=meta.schema(), partition_spec=specs[f.spec_id])
    properties = collector.build()
    dvs = [f for f in files if f.content == DataFileContent.POSITION_DELETES and f.file_format == FileFormat.PUFFIN]
    if dvs:  # as Java's SnapshotSummary: DVs count as added-dvs and by their blob's size
        pos_delete_files = int(properties.pop("added-position-delete-files", "0")) - len(dvs)
        if pos_delete_files > 0:
            properties["added-position-delete-files"] = str(pos_delete_files)
        properties["added-dvs"] = str(len(dvs))
        added_size = int(properties.get("added-files-size", "0"))
        added_size -= sum(f.file_size_in_bytes - _v3_field(f, "content_size_in_bytes") for f in dvs)
        properties["added-files-size"] = str(added_size)
    summary = update_snapshot_summaries(
        Summary(operation=operation, **properties), previous_summary=parent.summary if parent else None
    )
    snapshot = Snapshot(
        snapshot_id=snapshot_id,
        parent_snapshot_id=parent.snapshot_id if parent else None,
        sequence_number=sequence_number,
        timestamp_ms=int(time.time() * 1000),
        manifest_list=manifest_list,
        summary=summary,
        schema_id=meta.current_schema_id,
        first_row_id=first_row_id,
        added_rows=list_writer.next_row_id - first_row_id,
    )

    with _v3_metadata_writable():
        tx = table.transaction()
        tx._apply(
            (
                AddSnapshotUpdate(snapshot=snapshot),
                SetSnapshotRefUpdate(
                    snapshot_id=snapshot_id,
                    parent_snapshot_id=parent.snapshot_id if parent else None,
                    ref_name=MAIN_BRANCH,
                    type=SnapshotRefType.BRANCH,
                ),
            ),
            (AssertRefSnapshotId(snapshot_id=parent.snapshot_id if parent else None, ref=MAIN_BRANCH),),
        )
        return tx.commit_transaction()


def append_v3(table: Table, rows: pa.Table) -> Table:
    """table.append() for a format-version 3 table: pyiceberg writes the data files, the snapshot is built here."""
    meta = table.metadata
    files = [_v3_data_file(f, meta.default_spec_id) for f in _dataframe_to_data_files(meta, rows, table.io)]
    return commit_v3_snapshot(table, Operation.APPEND, files)


def deletion_vector_blob(positions: Iterable[int]) -> bytes:
    """A deletion-vector-v1 blob (Puffin spec, "deletion-vector-v1 blob type").

    Layout: the length of magic + vector (4 bytes, big-endian), the magic D1 D3 39 64, the
    vector, then the CRC-32 of magic + vector (4 bytes, big-endian). The vector is a 64-bit
    Roaring bitmap in the portable format: the number of buckets (8 bytes, little-endian), then
    per bucket in ascending key order its key, the positions' high 32 bits (4 bytes,
    little-endian), and a 32-bit Roaring bitmap of their low 32 bits in the portable format.
    """
    buckets: dict[int, BitMap] = {}
    for pos in positions:
        if pos < 0:
            raise FixtureError(f"negative row position {pos}")
        buckets.setdefault(pos >> 32, BitMap()).add(pos & 0xFFFFFFFF)
    vector = bytearray(len(buckets).to_bytes(8, "little"))
    for key in sorted(buckets):
        bitmap = buckets[key]
        bitmap.run_optimize()  # as Java's writer does; readers take any container kind
        vector += key.to_bytes(4, "little") + bitmap.serialize()
    body = DV_MAGIC + bytes(vector)
    return len(body).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")


def puffin_bytes(blobs: Sequence[tuple[bytes, dict[str, Any]]]) -> tuple[bytes, list[dict[str, Any]]]:
    """A Puffin file of uncompressed blobs, each given as (payload, footer fields other than
    offset and length); returns the file and its footer's blob metadata.

    Layout: magic PFA1, the blobs, then the footer: magic, the FileMetadata JSON (UTF-8), its
    length (4 bytes, little-endian, signed), 4 flag bytes (0: the JSON is not compressed), magic.
    """
    out = bytearray(PUFFIN_MAGIC)
    blob_meta: list[dict[str, Any]] = []
    for payload, fields in blobs:
        blob_meta.append({**fields, "offset": len(out), "length": len(payload)})
        out += payload
    footer = json.dumps(
        {"blobs": blob_meta, "properties": {"created-by": f"{PROG} (pyiceberg {pyiceberg.__version__})"}},
        separators=(",", ":"),
    ).encode()
    out += PUFFIN_MAGIC + footer + len(footer).to_bytes(4, "little", signed=True) + bytes(4) + PUFFIN_MAGIC
    return bytes(out), blob_meta


def commit_deletion_vectors(table: Table, deletes: dict[str, Sequence[int]]) -> tuple[Table, str]:
    """Commit a `delete` snapshot with one deletion vector per data file, all in one Puffin file
    under the table's data directory; returns the table and the Puffin file's path.

    `deletes` maps a live data file path to the 0-based row positions to delete in it. Each DV is
    a POSITION_DELETES entry of a v3 DELETES manifest: file_format PUFFIN, the Puffin file's path
    and size, record_count = cardinality, referenced_data_file, and content_offset /
    content_size_in_bytes locating its blob. Data files that already have deletes are refused
    (a new DV would have to merge and replace the old one).
    """
    meta = table.metadata
    if meta.format_version != 3:
        raise FixtureError(f"deletion vectors need a format-version 3 table, {table_ident(table)} is v{meta.format_version}")
    if table.current_snapshot() is None:
        raise FixtureError(f"{table_ident(table)} has no snapshot to delete from")
    tasks = {task.file.file_path: task for task in table.scan().plan_files()}

    targets: list[tuple[DataFile, list[int]]] = []
    for data_path, raw_positions in sorted(deletes.items()):
        if data_path not in tasks:
            raise FixtureError(f"{data_path} is not a live data file of {table_ident(table)}")
        task = tasks[data_path]
        if task.delete_files:
            raise FixtureError(f"{data_path} already has deletes; merging deletion vectors is not implemented")
        positions = sorted(set(raw_positions))
        if not positions or positions[0] < 0 or positions[-1] >= task.file.record_count:
            raise FixtureError(f"positions {positions} out of range for {data_path} ({task.file.record_count} rows)")
        targets.append((task.file, positions))

    content, blob_meta = puffin_bytes(
        [
            (
                deletion_vector_blob(positions),
                {
                    "type": DV_BLOB_TYPE,
                    "fields": [ROW_POSITION_ID],
                    "snapshot-id": -1,  # inherited from the manifest entry
                    "sequence-number": -1,
                    "properties": {"referenced-data-file": data_file.file_path, "cardinality": str(len(positions))},
                },
            )
            for data_file, positions in targets
        ]
    )
    puffin_path = table.location_provider().new_data_location(f"{uuid.uuid4()}-00000-deletes.puffin")
    with table.io.new_output(puffin_path).create(overwrite=False) as out:
        out.write(content)

    dvs = [
        _v3_data_file(
            DataFile.from_args(
                content=DataFileContent.POSITION_DELETES,
                file_path=puffin_path,
                file_format=FileFormat.PUFFIN,
                partition=data_file.partition,
                record_count=len(positions),
                file_size_in_bytes=len(content),
            ),
            data_file.spec_id,
            referenced_data_file=data_file.file_path,
            content_offset=blob["offset"],
            content_size_in_bytes=blob["length"],
        )
        for (data_file, positions), blob in zip(targets, blob_meta)
    ]
    table = commit_v3_snapshot(table, Operation.DELETE, dvs)
    return table, puffin_path


def _check_deletion_vectors(table: Table, deletes: dict[str, Sequence[int]]) -> None:
    """Read the current snapshot's DELETES manifests back with the v3 schema and check each DV entry
    against its blob in the Puffin file (offset, length, CRC, referenced file, positions)."""
    snapshot = table.current_snapshot()
    assert snapshot is not None
    found: dict[str, list[int]] = {}
    for manifest in _manifests_v3(table.io, snapshot):
        if manifest.content != ManifestContent.DELETES:
            continue
        for entry in _manifest_entries_v3(table.io, manifest):
            dv = entry.data_file
            referenced, offset, size = (_v3_field(dv, n) for n in ("referenced_data_file", "content_offset", "content_size_in_bytes"))
            if dv.file_format != FileFormat.PUFFIN or None in (referenced, offset, size):
                raise FixtureError(f"{dv.file_path}: not a deletion vector entry: {dv}")
            with table.io.new_input(dv.file_path).open() as f:
                raw = f.read()
            puffin = PuffinFile(raw)  # checks the first and last magic; Java also wants the footer's
            footer_start = len(raw) - 12 - int.from_bytes(raw[-12:-8], "little") - len(PUFFIN_MAGIC)
            if raw[footer_start : footer_start + len(PUFFIN_MAGIC)] != PUFFIN_MAGIC:
                raise FixtureError(f"{dv.file_path}: no magic at the start of the Puffin footer")
            blob = next((b for b in puffin.footer.blobs if b.offset == offset), None)
            if blob is None or blob.length != size or blob.properties.get("referenced-data-file") != referenced:
                raise FixtureError(f"{dv.file_path}: no blob at offset {offset} of length {size} for {referenced}")
            payload = raw[offset : offset + size]
            body = payload[4 : 4 + int.from_bytes(payload[:4], "big")]
            if len(body) + 8 != size or not body.startswith(DV_MAGIC) or zlib.crc32(body) != int.from_bytes(payload[-4:], "big"):
                raise FixtureError(f"{dv.file_path}: bad magic or CRC in the blob at offset {offset}")
            vectors = {v.referenced_data_file: v.to_vector().to_pylist() for v in deletion_vectors_from_puffin_file(puffin)}
            if len(vectors[referenced]) != dv.record_count or dv.file_size_in_bytes != len(raw):
                raise FixtureError(f"{dv.file_path}: record_count or file_size_in_bytes does not match the blob")
            found[referenced] = sorted(vectors[referenced])
    expected = {path: sorted(set(positions)) for path, positions in deletes.items()}
    if found != expected:
        raise FixtureError(f"deletion vectors read back as {found}, expected {expected}")


# --------------------------------------------------------------------------- DuckDB (optional second reader)


def duckdb_connection() -> Any | None:
    """A DuckDB connection with the iceberg extension loaded from its PyPI package, or None."""
    try:
        import duckdb
    except ImportError:
        return None
    con = duckdb.connect(config={"allow_unsigned_extensions": "true", "autoinstall_known_extensions": "false"})
    for name in ("avro", "iceberg"):  # iceberg needs avro; load both from the installed packages
        try:
            module = importlib.import_module(f"duckdb_extension_{name}")
        except ImportError:
            return None
        paths = glob.glob(os.path.join(os.path.dirname(module.__file__ or ""), "extensions", "*", f"{name}.duckdb_extension"))
        if not paths:
            return None
        con.execute(f"LOAD '{paths[0]}'")
    return con


def duckdb_rows(con: Any, metadata_location: str) -> list[Any]:
    escaped = metadata_location.replace("'", "''")
    result = con.execute(f"SELECT * FROM iceberg_scan('{escaped}')")
    return sorted_rows(result.to_arrow_table() if hasattr(result, "to_arrow_table") else result.fetch_arrow_table())


# --------------------------------------------------------------------------- sample tables


def make_events(catalog: Catalog, ident: str) -> dict[str, Any]:
    """Like make_fixtures.py: appends, schema change, CoW delete, overwrite, tag v1, branch audit."""
    schema = Schema(
        NestedField(1, "id", LongType(), required=True),
        NestedField(2, "name", StringType(), required=False),
        NestedField(3, "ts", TimestampType(), required=False),
        identifier_field_ids=[1],
    )
    drop_if_exists(catalog, ident)
    table = catalog.create_table(ident, schema=schema, properties={"write.format.default": "parquet"})

    arrow_schema = pa.schema(
        [pa.field("id", pa.int64(), nullable=False), pa.field("name", pa.string()), pa.field("ts", pa.timestamp("us"))]
    )
    table.append(
        pa.Table.from_pylist(
            [{"id": i, "name": f"n{i}", "ts": dt.datetime(2024, 1, 1, 0, 0, i)} for i in range(0, 5)], schema=arrow_schema
        )
    )
    table.append(
        pa.Table.from_pylist(
            [{"id": i, "name": f"n{i}", "ts": dt.datetime(2024, 1, 2, 0, 0, i)} for i in range(5, 10)], schema=arrow_schema
        )
    )
    with table.update_schema() as update:
        update.add_column("score", DoubleType(), doc="added in evolution")
    table = catalog.load_table(ident)

    arrow_schema2 = pa.schema(list(arrow_schema) + [pa.field("score", pa.float64())])
    table.append(
        pa.Table.from_pylist(
            [{"id": i, "name": f"n{i}", "ts": dt.datetime(2024, 1, 3), "score": i * 1.5} for i in range(10, 13)],
            schema=arrow_schema2,
        )
    )
    before_delete = table.metadata.current_snapshot_id
    table.delete(delete_filter=GreaterThanOrEqual("id", 8))
    table.overwrite(
        pa.Table.from_pylist(
            [{"id": 100, "name": "ov", "ts": dt.datetime(2024, 2, 1), "score": 9.9}], schema=arrow_schema2
        ),
        overwrite_filter=EqualTo("id", 0),
    )
    current = table.metadata.current_snapshot_id
    assert current is not None and before_delete is not None
    table.manage_snapshots().create_tag(current, "v1").commit()

    notes: dict[str, Any] = {}
    try:
        table.manage_snapshots().create_branch(before_delete, "audit").commit()
    except Exception as e:  # noqa: BLE001 - report, don't fail: the branch is optional
        notes["branch_audit_error"] = f"{type(e).__name__}: {e}"
    return notes


def make_users(catalog: Catalog, ident: str) -> dict[str, Any]:
    schema = Schema(
        NestedField(1, "uid", LongType(), required=False),
        NestedField(2, "country", StringType(), required=False),
    )
    spec = PartitionSpec(PartitionField(source_id=2, field_id=1000, transform=IdentityTransform(), name="country"))
    drop_if_exists(catalog, ident)
    table = catalog.create_table(ident, schema=schema, partition_spec=spec)
    table.append(pa.Table.from_pylist([{"uid": 1, "country": "DE"}, {"uid": 2, "country": "FR"}]))
    table.append(pa.Table.from_pylist([{"uid": 3, "country": "DE"}]))
    return {}


def make_mor(catalog: Catalog, ident: str) -> dict[str, Any]:
    """v2 merge-on-read table: 10 rows in one data file, then a position-delete file for positions 2 and 5."""
    schema = Schema(
        NestedField(1, "id", LongType(), required=True),
        NestedField(2, "data", StringType(), required=False),
        identifier_field_ids=[1],
    )
    drop_if_exists(catalog, ident)
    table = catalog.create_table(
        ident,
        schema=schema,
        properties={
            "format-version": "2",
            "write.delete.mode": "merge-on-read",
            "write.update.mode": "merge-on-read",
            "write.merge.mode": "merge-on-read",
        },
    )
    table.append(pa.Table.from_pylist([{"id": i, "data": f"d{i}"} for i in range(10)], schema=schema_to_pyarrow(schema)))
    first_snapshot = table.metadata.current_snapshot_id
    tasks = list(table.scan().plan_files())
    if len(tasks) != 1 or tasks[0].file.record_count != 10:
        raise FixtureError(f"expected one data file of 10 rows in {ident}, got {[t.file.record_count for t in tasks]}")
    table = commit_position_deletes(table, {tasks[0].file.file_path: [2, 5]})

    # Verify with pyiceberg (and DuckDB when installed) that the deletes are applied.
    ids = sorted(table.scan().to_arrow().column("id").to_pylist())
    if ids != [0, 1, 3, 4, 6, 7, 8, 9]:
        raise FixtureError(f"{ident}: position deletes not applied by pyiceberg, ids = {ids}")
    if table.scan(snapshot_id=first_snapshot).to_arrow().num_rows != 10:
        raise FixtureError(f"{ident}: time travel to the first snapshot does not give 10 rows")
    notes: dict[str, Any] = {"verified_by": ["pyiceberg"]}
    con = duckdb_connection()
    if con is not None:
        duck_ids = sorted(r["id"] for r in duckdb_rows(con, table.metadata_location))
        if duck_ids != ids:
            raise FixtureError(f"{ident}: DuckDB reads ids {duck_ids}, pyiceberg {ids}")
        notes["verified_by"].append("duckdb")
    return notes


SAMPLE_MAKERS: dict[str, Callable[[Catalog, str], dict[str, Any]]] = {
    "events": make_events,
    "users": make_users,
    "mor": make_mor,
}


# --------------------------------------------------------------------------- subcommands


def cmd_make_sample(args: argparse.Namespace) -> Any:
    names = [n.strip() for n in args.tables.split(",") if n.strip()]
    unknown = [n for n in names if n not in SAMPLE_MAKERS]
    if unknown:
        raise FixtureError(f"unknown sample table(s) {unknown}; choose from {list(SAMPLE_TABLES)}")
    catalog = open_catalog(args)
    ensure_namespace(catalog, args.namespace)
    out: dict[str, Any] = {}
    for name in names:
        ident = f"{args.namespace}.{name}"
        notes = SAMPLE_MAKERS[name](catalog, ident)
        table = catalog.load_table(ident)
        out[ident] = {"metadata_location": table.metadata_location, "snapshots": len(table.metadata.snapshots), **notes}
    return {"tables": out}


def _state(table: Table) -> dict[str, Any]:
    return {
        "table": table_ident(table),
        "metadata_location": table.metadata_location,
        "current_snapshot_id": table.metadata.current_snapshot_id,
    }


def cmd_mutate(args: argparse.Namespace) -> Any:
    catalog = open_catalog(args)
    table = load_table(catalog, args.table)
    extra: dict[str, Any] = {}
    op = args.op
    if op == "append":
        rows = generated_rows(table, 3)
        table.append(rows)
        extra["appended"] = len(rows)
    elif op in ("delete", "pos-delete"):
        key = key_field(table.schema())
        if key is None:
            raise FixtureError(f"{args.table} has no integer column to pick the largest id from")
        largest = max_key(table, key)
        if largest is None:
            raise FixtureError(f"{args.table} has no rows to delete")
        if op == "delete":
            with warnings.catch_warnings():  # pyiceberg warns that MoR falls back to CoW: that is intended here
                warnings.filterwarnings("ignore", message="Merge on read is not yet supported")
                table.delete(delete_filter=EqualTo(key.name, largest))
        else:
            path, pos = locate_live_row(table, key, largest)
            table = commit_position_deletes(table, {path: [pos]})
        extra["deleted"] = {key.name: largest}
    elif op == "add-column":
        existing = {f.name for f in table.schema().fields}
        n = 1
        while f"c{n}" in existing:
            n += 1
        with table.update_schema() as update:
            update.add_column(f"c{n}", StringType())
        extra["column"] = f"c{n}"
    elif op == "tag":
        if not args.name:
            raise FixtureError("--op tag needs --name NAME")
        current = table.metadata.current_snapshot_id
        if current is None:
            raise FixtureError(f"{args.table} has no current snapshot to tag")
        if args.name in table.metadata.refs:
            raise FixtureError(f"{args.table} already has a ref named {args.name}")
        table.manage_snapshots().create_tag(current, args.name).commit()
        extra["tag"] = args.name
    elif op == "noop":
        pass
    else:  # argparse restricts choices; kept for safety
        raise FixtureError(f"unknown op {op}")
    table = catalog.load_table(args.table)
    return {**_state(table), "op": op, **extra}


def cmd_dump(args: argparse.Namespace) -> Any:
    catalog = open_catalog(args)
    table = load_table(catalog, args.table)
    meta = table.metadata

    snapshots = sorted(meta.snapshots, key=lambda s: (s.sequence_number or 0, s.timestamp_ms, s.snapshot_id))
    current = table.current_snapshot()
    rows = sorted_rows(table.scan().to_arrow()) if current is not None else []
    doc: dict[str, Any] = {
        "format_version": meta.format_version,
        "table_uuid": str(meta.table_uuid),
        "location": meta.location,
        "metadata_location": table.metadata_location,
        "current_snapshot_id": meta.current_snapshot_id,
        "current_schema_id": meta.current_schema_id,
        "schemas": [s.model_dump(mode="json") for s in meta.schemas],
        "default_spec_id": meta.default_spec_id,
        "partition_specs": [s.model_dump(mode="json") for s in meta.partition_specs],
        "default_sort_order_id": meta.default_sort_order_id,
        "sort_orders": [s.model_dump(mode="json") for s in meta.sort_orders],
        "snapshots": [
            {
                "snapshot_id": s.snapshot_id,
                "parent_snapshot_id": s.parent_snapshot_id,
                "sequence_number": s.sequence_number,
                "timestamp_ms": s.timestamp_ms,
                "schema_id": s.schema_id,
                "operation": s.summary.operation.value if s.summary else None,
                "summary": s.summary.model_dump(mode="json") if s.summary else {},
            }
            for s in snapshots
        ],
        "refs": {
            name: {"snapshot_id": ref.snapshot_id, "type": ref.snapshot_ref_type.value}
            for name, ref in sorted(meta.refs.items())
        },
        "properties": dict(sorted(meta.properties.items())),
        "rows": rows,
        "row_count": len(rows),
    }
    if args.all_snapshots:
        doc["rows_at"] = {str(s.snapshot_id): sorted_rows(table.scan(snapshot_id=s.snapshot_id).to_arrow()) for s in snapshots}
    if args.duckdb:
        con = duckdb_connection()
        if con is None:
            raise FixtureError("--duckdb: duckdb and duckdb-extension-iceberg/-avro are not installed")
        duck = duckdb_rows(con, table.metadata_location) if current is not None else []
        doc["duckdb_rows"] = duck
        doc["duckdb_row_count"] = len(duck)
    if args.digest:
        for key in ("rows", "duckdb_rows"):
            if key in doc:
                doc[key] = rows_digest(doc[key])
        if "rows_at" in doc:
            doc["rows_at"] = {snapshot: rows_digest(rows) for snapshot, rows in doc["rows_at"].items()}
    return doc


def rows_digest(rows: list[Any]) -> dict[str, Any]:
    """The rows' count and the SHA-256 of their JSON, for tables too large to print whole."""
    text = json.dumps(rows, sort_keys=True).encode()
    return {"count": len(rows), "sha256": hashlib.sha256(text).hexdigest()}


def cmd_exists(args: argparse.Namespace) -> Any:
    split_ident(args.table)
    return {"exists": open_catalog(args).table_exists(args.table)}


def _all_namespaces(catalog: Catalog) -> list[tuple[str, ...]]:
    seen: set[tuple[str, ...]] = set()
    pending: list[tuple[str, ...]] = [tuple(ns) for ns in catalog.list_namespaces()]
    while pending:
        ns = pending.pop()
        if ns in seen:
            continue
        seen.add(ns)
        try:
            children = catalog.list_namespaces(ns)
        except Exception:  # noqa: BLE001 - catalogs without nested namespaces
            children = []
        pending.extend(tuple(c) for c in children if tuple(c) != ns and tuple(c) not in seen)
    return sorted(seen)


def cmd_list(args: argparse.Namespace) -> Any:
    catalog = open_catalog(args)
    namespaces = _all_namespaces(catalog)
    tables = sorted(".".join(t) for ns in namespaces for t in catalog.list_tables(ns))
    return {"namespaces": [".".join(ns) for ns in namespaces], "tables": tables}


def cmd_locations(args: argparse.Namespace) -> Any:
    """Every table of the catalog and the metadata file it points at."""
    catalog = open_catalog(args)
    return {
        ".".join(t): catalog.load_table(t).metadata_location
        for ns in _all_namespaces(catalog)
        for t in catalog.list_tables(ns)
    }


def cmd_drop(args: argparse.Namespace) -> Any:
    catalog = open_catalog(args)
    split_ident(args.table)
    try:
        catalog.drop_table(args.table)
    except NoSuchTableError as e:
        raise FixtureError(f"table {args.table} does not exist") from e
    return {"dropped": args.table}


def _new_bench_table(args: argparse.Namespace, properties: dict[str, str]) -> tuple[Catalog, Table, pa.Schema]:
    """`--table` created anew (dropped first if it exists, without its files) with the
    benchmark schema: an id and an opaque payload."""
    catalog = open_catalog(args)
    namespace, _ = split_ident(args.table)
    ensure_namespace(catalog, namespace)
    if catalog.table_exists(args.table):
        catalog.drop_table(args.table)
    schema = pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("payload", pa.binary())])
    return catalog, catalog.create_table(args.table, schema=schema, properties=properties), schema


def cmd_make_bench(args: argparse.Namespace) -> Any:
    """A table for benchmarks: `--snapshots` appends of `--files-per-snapshot` files, each of
    about `--file-mib` MiB of incompressible data. Each append is one snapshot with one
    manifest, as a writer committing a batch makes (the target file size splits the batch);
    with `--commit-per-file`, every file is a snapshot of its own (many manifests and long
    manifest lists: slow to back up, which tests that interrupt a backup rely on)."""
    target = int(args.file_mib * 1024 * 1024)
    catalog, table, schema = _new_bench_table(args, {"write.target-file-size-bytes": str(target)})
    rows = max(1, int(args.file_mib * 1024))  # ~1 KiB per row
    next_id = 0
    if args.commit_per_file:
        for _ in range(args.snapshots):
            with table.transaction() as tx:
                for _ in range(args.files_per_snapshot):
                    batch = pa.Table.from_pydict(
                        {"id": list(range(next_id, next_id + rows)), "payload": [os.urandom(1024) for _ in range(rows)]},
                        schema=schema,
                    )
                    next_id += rows
                    tx.append(batch)
            table = catalog.load_table(args.table)
        return {"table": args.table, "rows": next_id, "snapshots": len(table.metadata.snapshots)}
    for _ in range(args.snapshots):
        batches = []
        for _ in range(args.files_per_snapshot):
            batches.append(
                pa.Table.from_pydict(
                    {"id": list(range(next_id, next_id + rows)), "payload": [os.urandom(1024) for _ in range(rows)]},
                    schema=schema,
                )
            )
            next_id += rows
        table.append(pa.concat_tables(batches))
        table = catalog.load_table(args.table)
    return {"table": args.table, "rows": next_id, "snapshots": len(table.metadata.snapshots)}


def cmd_make_linked(args: argparse.Namespace) -> Any:
    """A table of `--snapshots` appends of `--files-per-snapshot` one-row Parquet files, for
    measuring bcn at a million files: each snapshot writes one file and hard-links it under the
    other names, and registers them all with the metadata read from the one (as `add_files`
    does, without reading a million footers), one manifest per snapshot."""
    catalog, table, _ = _new_bench_table(args, {})
    location = table.location()
    local = location.removeprefix("file://")
    if not local.startswith("/"):
        raise FixtureError(f"make-linked needs a local table location, not {location}")
    data = os.path.join(local, "data")
    # The dropped table's files (drop_table does not purge them) would be in the way.
    shutil.rmtree(data, ignore_errors=True)
    os.makedirs(data)
    file_schema = schema_to_pyarrow(table.schema())
    for s in range(args.snapshots):
        first = os.path.join(data, f"s{s:05d}-{0:07d}.parquet")
        # With the table's field ids, as a writer of the table writes them.
        rows = pa.Table.from_pydict({"id": [s], "payload": [os.urandom(64)]}, schema=file_schema)
        pq.write_table(rows, first)
        template = parquet_file_to_data_file(table.io, table.metadata, f"{location}/data/{os.path.basename(first)}")
        files = [template]
        for n in range(1, args.files_per_snapshot):
            name = f"s{s:05d}-{n:07d}.parquet"
            os.link(first, os.path.join(data, name))
            linked = DataFile(*template._data)
            linked[1] = f"{location}/data/{name}"
            files.append(linked)
        with table.transaction() as tx:
            with tx.update_snapshot().fast_append() as append:
                for data_file in files:
                    append.append_data_file(data_file)
        table = catalog.load_table(args.table)
    return {
        "table": args.table,
        "files": args.snapshots * args.files_per_snapshot,
        "snapshots": len(table.metadata.snapshots),
    }


def cmd_make_many_tables(args: argparse.Namespace) -> Any:
    """`--tables` small tables in `--namespace` (one snapshot of a few rows each), for the
    no-change backup of a large catalog."""
    catalog = open_catalog(args)
    ensure_namespace(catalog, args.namespace)
    schema = pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("name", pa.string())])
    existing = {ident[-1] for ident in catalog.list_tables(args.namespace)}
    made = 0
    for i in range(args.tables):
        name = f"t{i:05d}"
        if name in existing:
            continue
        table = catalog.create_table(f"{args.namespace}.{name}", schema=schema)
        table.append(pa.Table.from_pydict({"id": [1, 2, 3], "name": ["a", "b", "c"]}, schema=schema))
        made += 1
    return {"namespace": args.namespace, "tables": args.tables, "made": made}


def cmd_expire_and_purge(args: argparse.Namespace) -> Any:
    """Overwrite the table, expire every other snapshot (refs to them removed first) and delete
    the data files only those snapshots referenced, as a maintenance job would: files that an
    older metadata file still names vanish."""
    catalog = open_catalog(args)
    table = catalog.load_table(args.table)

    def data_files(tbl: Table, snapshot_id: int) -> set[str]:
        return {task.file.file_path for task in tbl.scan(snapshot_id=snapshot_id).plan_files()}

    before = set()
    for snapshot in table.metadata.snapshots:
        before |= data_files(table, snapshot.snapshot_id)
    rows = table.scan().to_arrow().slice(0, 1)
    table.overwrite(rows)
    table = catalog.load_table(args.table)
    current = table.metadata.current_snapshot_id
    refs = [name for name, ref in table.metadata.refs.items() if name != "main" and ref.snapshot_id != current]
    if refs:
        with table.manage_snapshots() as ms:
            for name in refs:
                if table.metadata.refs[name].snapshot_ref_type.value == "tag":
                    ms.remove_tag(name)
                else:
                    ms.remove_branch(name)
        table = catalog.load_table(args.table)
    old = [s.snapshot_id for s in table.metadata.snapshots if s.snapshot_id != current]
    if old:
        table.maintenance.expire_snapshots().by_ids(old).commit()
    table = catalog.load_table(args.table)
    kept = data_files(table, current)
    removed = sorted(before - kept)
    for path in removed:
        os.remove(path.removeprefix("file://"))
    return {"metadata_location": table.metadata_location, "snapshots": len(table.metadata.snapshots), "removed": removed}


def cmd_strip_uuid(args: argparse.Namespace) -> Any:
    """Remove `table-uuid` from the current metadata file in place (local warehouses only), as
    format-v1 tables written by old engines have none."""
    catalog = open_catalog(args)
    table = catalog.load_table(args.table)
    path = table.metadata_location.removeprefix("file://")
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    doc.pop("table-uuid", None)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f)
    return {"metadata_location": table.metadata_location, "format_version": doc.get("format-version")}


def cmd_drop_namespace(args: argparse.Namespace) -> Any:
    catalog = open_catalog(args)
    for table in catalog.list_tables(args.namespace):
        catalog.drop_table(table)
    if args.catalog_type == "hive":
        # The metastore refuses to drop a database that still holds (view) tables.
        for view in _hive_iceberg_views(catalog, args.namespace):
            with catalog._client as client:  # type: ignore[attr-defined]
                client.drop_table(dbname=args.namespace, name=view.tableName, deleteData=False)
    catalog.drop_namespace(args.namespace)
    return {"dropped_namespace": args.namespace}


def cmd_rename(args: argparse.Namespace) -> Any:
    catalog = open_catalog(args)
    split_ident(args.table)
    split_ident(args.to)
    try:
        table = catalog.rename_table(args.table, args.to)
    except NoSuchTableError as e:
        raise FixtureError(f"table {args.table} does not exist") from e
    return {"renamed": {"from": args.table, "to": args.to}, "metadata_location": table.metadata_location}


def cmd_create_empty(args: argparse.Namespace) -> Any:
    catalog = open_catalog(args)
    namespace, _ = split_ident(args.table)
    ensure_namespace(catalog, namespace)
    schema = Schema(
        NestedField(1, "id", LongType(), required=True),
        NestedField(2, "name", StringType(), required=False),
    )
    table = catalog.create_table(args.table, schema=schema, properties={"format-version": str(args.format_version)})
    return _state(table)



def cmd_make_evolved(args: argparse.Namespace) -> Any:
    """A table with a history: partitioned by `region`, then also by `id` (partition
    evolution), a branch `audit` with a commit of its own, more commits on main, and its first
    snapshot expired."""
    catalog = open_catalog(args)
    namespace, _ = split_ident(args.table)
    ensure_namespace(catalog, namespace)
    drop_if_exists(catalog, args.table)
    schema = Schema(
        NestedField(1, "id", LongType(), required=True),
        NestedField(2, "region", StringType(), required=False),
    )
    spec = PartitionSpec(PartitionField(source_id=2, field_id=1000, transform=IdentityTransform(), name="region"))
    table = catalog.create_table(args.table, schema=schema, partition_spec=spec)
    arrow_schema = pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("region", pa.string())])

    def rows(start: int, count: int) -> pa.Table:
        return pa.table(
            {"id": pa.array(range(start, start + count), type=pa.int64()), "region": pa.array([("eu", "us")[i % 2] for i in range(count)])},
            schema=arrow_schema,
        )

    table.append(rows(0, 4))
    first = table.metadata.current_snapshot_id
    with table.update_spec() as update:
        update.add_field("id", IdentityTransform(), "id")
    table = catalog.load_table(args.table)
    table.append(rows(100, 4))
    table = catalog.load_table(args.table)
    with table.manage_snapshots() as ms:
        ms.create_branch(table.metadata.current_snapshot_id, "audit")
    table = catalog.load_table(args.table)
    table.append(rows(200, 2), branch="audit")
    table = catalog.load_table(args.table)
    table.append(rows(300, 3))
    table = catalog.load_table(args.table)
    table.maintenance.expire_snapshots().by_ids([first]).commit()
    table = catalog.load_table(args.table)
    return {
        "metadata_location": table.metadata_location,
        "specs": len(table.metadata.partition_specs),
        "refs": sorted(table.metadata.refs),
        "snapshots": len(table.metadata.snapshots),
        "expired": first,
    }

def cmd_make_named(args: argparse.Namespace) -> Any:
    """A small table under any name pyiceberg accepts (`..`, `a/b`, control characters, ...)."""
    catalog = open_catalog(args)
    ensure_namespace(catalog, args.namespace)
    schema = Schema(
        NestedField(1, "id", LongType(), required=True),
        NestedField(2, "name", StringType(), required=False),
    )
    table = catalog.create_table((args.namespace, args.name), schema=schema)
    rows = pa.table(
        {
            "id": pa.array(range(args.rows), type=pa.int64()),
            "name": pa.array([f"{args.name}-{i}" for i in range(args.rows)], type=pa.string()),
        },
        schema=pa.schema([pa.field("id", pa.int64(), nullable=False), pa.field("name", pa.string())]),
    )
    table.append(rows)
    table.append(rows)
    return {"location": table.location(), "metadata_location": table.metadata_location}


# --------------------------------------------------------------------------- views


def _view_metadata_json(ns: str, name: str, location: str) -> dict[str, Any]:
    """View metadata with two versions, as a Java engine writes after a `CREATE OR REPLACE VIEW`."""
    now = int(time.time() * 1000)
    fields = [{"id": 1, "name": "id", "required": False, "type": "long"}]
    return {
        "view-uuid": str(uuid.uuid4()),
        "format-version": 1,
        "location": location,
        "current-version-id": 2,
        "schemas": [
            {"schema-id": 0, "type": "struct", "fields": fields},
            {"schema-id": 1, "type": "struct", "fields": [*fields, {"id": 2, "name": "name", "required": False, "type": "string"}]},
        ],
        "versions": [
            {
                "version-id": 1,
                "schema-id": 0,
                "timestamp-ms": now - 1000,
                "summary": {"engine-name": "spark", "engine-version": "3.5.0"},
                "representations": [{"type": "sql", "sql": f"SELECT id FROM {ns}.base", "dialect": "spark"}],
                "default-namespace": [ns],
            },
            {
                "version-id": 2,
                "schema-id": 1,
                "timestamp-ms": now,
                "summary": {"engine-name": "spark", "engine-version": "3.5.0"},
                "representations": [
                    {"type": "sql", "sql": f"SELECT id, name FROM {ns}.base", "dialect": "spark"},
                    {"type": "sql", "sql": f'SELECT "id", "name" FROM "{ns}"."base"', "dialect": "trino"},
                ],
                "default-namespace": [ns],
            },
        ],
        "version-log": [{"version-id": 1, "timestamp-ms": now - 1000}, {"version-id": 2, "timestamp-ms": now}],
        "properties": {"comment": f"view {name}"},
    }


# Java Iceberg's HiveCatalog keeps a view as a Hive table of type VIRTUAL_VIEW whose
# `table_type` parameter is ICEBERG-VIEW (HiveViewOperations); pyiceberg's has no views.
HIVE_VIRTUAL_VIEW = "VIRTUAL_VIEW"
HIVE_ICEBERG_VIEW = "ICEBERG-VIEW"
HIVE_TABLE_OWNER_PROP = "hive.metastore.table.owner"


def _is_hive_iceberg_view(tbl: Any) -> bool:
    params = tbl.parameters or {}
    return (tbl.tableType or "").upper() == HIVE_VIRTUAL_VIEW and params.get("table_type", "").upper() == HIVE_ICEBERG_VIEW


def _hive_view_sql(doc: dict[str, Any]) -> str | None:
    """HiveViewOperations.sqlFor: the current version's `hive` SQL, else its first SQL."""
    version = next(v for v in doc["versions"] if v["version-id"] == doc["current-version-id"])
    closest = None
    for rep in version["representations"]:
        if rep.get("type", "").lower() != "sql":
            continue
        if rep.get("dialect", "").lower() == "hive":
            return rep["sql"]
        if closest is None:
            closest = rep["sql"]
    return closest


def _hive_view_table(db: str, name: str, metadata_location: str, doc: dict[str, Any]) -> Any:
    """The Hive table Java's HiveViewOperations.doCommit creates for a new view."""
    import getpass

    from hive_metastore.ttypes import FieldSchema, SerDeInfo, StorageDescriptor
    from hive_metastore.ttypes import Table as HiveTable
    from pyiceberg.catalog.hive import SchemaToHiveConverter
    from pyiceberg.schema import visit

    version = next(v for v in doc["versions"] if v["version-id"] == doc["current-version-id"])
    schema_doc = next(s for s in doc["schemas"] if s["schema-id"] == version["schema-id"])
    schema = Schema.model_validate(schema_doc)
    props = doc.get("properties", {})
    # HiveOperationsBase.storageDescriptor (hive engine off) with HiveSchemaUtil.convert.
    sd = StorageDescriptor(
        cols=[FieldSchema(name=f.name, type=visit(f.field_type, SchemaToHiveConverter(False)), comment=f.doc) for f in schema.fields],
        location=doc["location"],
        inputFormat="org.apache.hadoop.mapred.FileInputFormat",
        outputFormat="org.apache.hadoop.mapred.FileOutputFormat",
        serdeInfo=SerDeInfo(serializationLib="org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe", parameters={}),
    )
    # setHmsTableParameters: the view's properties (but the owner), uuid, table_type,
    # metadata_location and (as `exposeInHmsProperties` is on by default) current-schema.
    params = {k: str(v) for k, v in props.items() if k.lower() != HIVE_TABLE_OWNER_PROP}
    params["uuid"] = doc["view-uuid"]
    params["table_type"] = HIVE_ICEBERG_VIEW
    params["metadata_location"] = metadata_location
    # SchemaParser.toJson: type, schema-id, [identifier-field-ids,] fields; no whitespace.
    current_schema: dict[str, Any] = {"type": "struct", "schema-id": schema_doc["schema-id"]}
    if schema_doc.get("identifier-field-ids"):
        current_schema["identifier-field-ids"] = schema_doc["identifier-field-ids"]
    current_schema["fields"] = schema_doc["fields"]
    params["current-schema"] = json.dumps(current_schema, separators=(",", ":"))
    sql = _hive_view_sql(doc)
    # Java writes `(int) currentTimeMillis / 1000` (an int overflow); these are plain seconds.
    now = int(time.time())
    return HiveTable(
        tableName=name,
        dbName=db,
        owner=props.get(HIVE_TABLE_OWNER_PROP) or getpass.getuser(),
        createTime=now,
        lastAccessTime=now,
        retention=2147483647,
        sd=sd,
        partitionKeys=[],
        parameters=params,
        viewOriginalText=sql,
        viewExpandedText=sql,
        tableType=HIVE_VIRTUAL_VIEW,
    )


def _hive_iceberg_views(catalog: Catalog, db: str) -> list[Any]:
    """The Hive tables of database `db` that are Iceberg views."""
    with catalog._client as client:  # type: ignore[attr-defined]
        names = client.get_all_tables(db_name=db)
        tables = client.get_table_objects_by_name(dbname=db, tbl_names=names) if names else []
    return [t for t in tables if _is_hive_iceberg_view(t)]


def _write_view_metadata(io: FileIO, location: str, doc: dict[str, Any], gzipped: bool) -> str:
    body = json.dumps(doc).encode()
    if gzipped:
        path = f"{location}/metadata/00001-{uuid.uuid4()}.gz.metadata.json"
        body = gzip.compress(body)
    else:
        path = f"{location}/metadata/00001-{uuid.uuid4()}.metadata.json"
    with io.new_output(path).create(overwrite=True) as out:
        out.write(body)
    return path


def _read_view_metadata(io: FileIO, location: str) -> dict[str, Any]:
    with io.new_input(location).open() as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return json.loads(raw)


def cmd_make_views(args: argparse.Namespace) -> Any:
    """Views in NAMESPACE: through the REST catalog's view API for `rest`; for `sql`, as Java's
    JDBC catalog writes them (metadata JSON, gzipped for one, and an `iceberg_tables` row of type
    VIEW); for `hive`, as Java's HiveCatalog does (metadata JSON, gzipped for one, and a Hive
    VIRTUAL_VIEW table), since pyiceberg's SqlCatalog and HiveCatalog have no view support."""
    catalog = open_catalog(args)
    ensure_namespace(catalog, args.namespace)
    names = args.names.split(",")
    if args.catalog_type == "rest":
        from pyiceberg.view.metadata import SQLViewRepresentation, ViewRepresentation, ViewVersion

        schema = Schema(NestedField(1, "id", LongType(), required=False), NestedField(2, "name", StringType(), required=False))
        for name in names:
            version = ViewVersion(
                schema_id=0,
                summary={"engine-name": "pyiceberg"},
                representations=[ViewRepresentation(SQLViewRepresentation(type="sql", sql=f"SELECT id, name FROM {args.namespace}.base", dialect="spark"))],
                default_namespace=(args.namespace,),
            )
            catalog.create_view((args.namespace, name), schema=schema, view_version=version, properties={"comment": f"view {name}"})
        return {"views": sorted(names)}
    if args.catalog_type == "hive":
        # HiveCatalog.defaultWarehouseLocation: the database's location (as the metastore
        # returns it, e.g. `file:/x` for file:///x) + "/" + name.
        db_location = catalog.load_namespace_properties(args.namespace)["location"].rstrip("/")
        io = load_file_io(properties=catalog.properties, location=db_location)
        for i, name in enumerate(names):
            location = f"{db_location}/{name}"
            doc = _view_metadata_json(args.namespace, name, location)
            path = _write_view_metadata(io, location, doc, gzipped=bool(i % 2))
            with catalog._client as client:  # type: ignore[attr-defined]
                client.create_table(_hive_view_table(args.namespace, name, path, doc))
        return {"views": sorted(names)}
    if args.catalog_type != "sql":
        raise FixtureError("make-views supports rest, sql and hive catalogs")
    from sqlalchemy import text

    warehouse = parse_props(args.prop)["warehouse"].rstrip("/")
    io = load_file_io(properties=catalog.properties, location=warehouse)
    engine = catalog.engine  # type: ignore[attr-defined]
    for i, name in enumerate(names):
        location = f"{warehouse}/{args.namespace}/{name}"
        doc = _view_metadata_json(args.namespace, name, location)
        path = _write_view_metadata(io, location, doc, gzipped=bool(i % 2))
        with engine.begin() as con:
            con.execute(
                text(
                    "INSERT INTO iceberg_tables (catalog_name, table_namespace, table_name, metadata_location, "
                    "previous_metadata_location, iceberg_type) VALUES (:c, :n, :t, :m, NULL, 'VIEW')"
                ),
                {"c": catalog.name, "n": args.namespace, "t": name, "m": path},
            )
    return {"views": sorted(names)}


def _views_of(catalog: Catalog, args: argparse.Namespace) -> dict[str, tuple[str, dict[str, Any]]]:
    """Every view of the namespace: name -> (metadata location, metadata JSON)."""
    if args.catalog_type == "rest":
        out: dict[str, tuple[str, dict[str, Any]]] = {}
        import urllib.parse
        import urllib.request

        # pyiceberg's View has no metadata location: ask the server (the tests' has no prefix).
        base = parse_props(args.prop)["uri"].rstrip("/")
        for ident in catalog.list_views(args.namespace):
            route = "/".join(urllib.parse.quote(part, safe="") for part in (args.namespace, ident[-1]))
            ns, view = route.split("/")
            with urllib.request.urlopen(f"{base}/v1/namespaces/{ns}/views/{view}") as answer:
                loaded = json.load(answer)
            out[ident[-1]] = (loaded["metadata-location"], loaded["metadata"])
        return out
    if args.catalog_type == "hive":
        io = load_file_io(properties=catalog.properties)
        out = {}
        for tbl in _hive_iceberg_views(catalog, args.namespace):
            location = tbl.parameters["metadata_location"]
            out[tbl.tableName] = (location, _read_view_metadata(io, location))
        return out
    if args.catalog_type != "sql":
        raise FixtureError("dump-views supports rest, sql and hive catalogs")
    from sqlalchemy import text

    engine = catalog.engine  # type: ignore[attr-defined]
    with engine.connect() as con:
        rows = con.execute(
            text(
                "SELECT table_name, metadata_location FROM iceberg_tables "
                "WHERE catalog_name = :c AND table_namespace = :n AND iceberg_type = 'VIEW'"
            ),
            {"c": catalog.name, "n": args.namespace},
        ).fetchall()
    io = load_file_io(properties=catalog.properties)
    return {name: (location, _read_view_metadata(io, location)) for name, location in rows}


def cmd_drop_view(args: argparse.Namespace) -> Any:
    """Drops a view (its files stay): the REST view API, the SQL catalog's VIEW row, or the
    Hive VIRTUAL_VIEW table (as Java's HiveCatalog.dropView: an Iceberg view only)."""
    catalog = open_catalog(args)
    namespace, name = split_ident(args.view)
    if args.catalog_type == "rest":
        catalog.drop_view((namespace, name))
        return {"dropped": args.view}
    if args.catalog_type == "hive":
        from hive_metastore.ttypes import NoSuchObjectException

        try:
            with catalog._client as client:  # type: ignore[attr-defined]
                tbl = client.get_table(dbname=namespace, tbl_name=name)
                if not _is_hive_iceberg_view(tbl):
                    raise FixtureError(f"{args.view} is not an Iceberg view")
                client.drop_table(dbname=namespace, name=name, deleteData=False)
        except NoSuchObjectException as e:
            raise FixtureError(f"no view {args.view}") from e
        return {"dropped": args.view}
    if args.catalog_type != "sql":
        raise FixtureError("drop-view supports rest, sql and hive catalogs")
    from sqlalchemy import text

    with catalog.engine.begin() as con:  # type: ignore[attr-defined]
        done = con.execute(
            text("DELETE FROM iceberg_tables WHERE catalog_name = :c AND table_namespace = :n AND table_name = :t AND iceberg_type = 'VIEW'"),
            {"c": catalog.name, "n": namespace, "t": name},
        )
    if done.rowcount != 1:
        raise FixtureError(f"no view {args.view}")
    return {"dropped": args.view}


def cmd_dump_views(args: argparse.Namespace) -> Any:
    """The views of NAMESPACE as a reader sees them: every version with its SQL, schemas, the
    version log and properties (without bcn's provenance), plus each view's location."""
    catalog = open_catalog(args)
    views = {}
    for name, (metadata_location, doc) in sorted(_views_of(catalog, args).items()):
        views[name] = {
            "metadata_location": metadata_location,
            "location": doc["location"],
            "view_uuid": doc["view-uuid"],
            "current_version_id": doc["current-version-id"],
            # Sets in the spec: a server may list them in any order.
            "versions": sorted(doc["versions"], key=lambda v: v["version-id"]),
            "version_log": doc["version-log"],
            "schemas": sorted(doc["schemas"], key=lambda s: s["schema-id"]),
            "properties": {k: v for k, v in doc.get("properties", {}).items() if not k.startswith("bcn.")},
        }
    return {"views": views}


def cmd_make_external(args: argparse.Namespace) -> Any:
    """A table whose files lie outside its location: `write.data.path` elsewhere, plus a file
    added with add_files from yet another directory."""
    catalog = open_catalog(args)
    namespace, _ = split_ident(args.table)
    ensure_namespace(catalog, namespace)
    schema = Schema(
        NestedField(1, "id", LongType(), required=False),
        NestedField(2, "name", StringType(), required=False),
    )
    os.makedirs(args.data_path, exist_ok=True)
    os.makedirs(args.add_dir, exist_ok=True)
    table = catalog.create_table(
        args.table, schema=schema, properties={"write.data.path": f"file://{args.data_path}"}
    )
    arrow_schema = pa.schema([pa.field("id", pa.int64()), pa.field("name", pa.string())])
    batch = lambda start: pa.table(  # noqa: E731
        {"id": list(range(start, start + 3)), "name": [f"n{i}" for i in range(start, start + 3)]},
        schema=arrow_schema,
    )
    table.append(batch(0))
    added = os.path.join(args.add_dir, "added.parquet")
    pq.write_table(batch(100), added)
    table = catalog.load_table(args.table)
    table.add_files([f"file://{added}"])
    table = catalog.load_table(args.table)
    table.append(batch(200))
    table = catalog.load_table(args.table)
    return {"location": table.location(), "metadata_location": table.metadata_location}


def cmd_make_dv(args: argparse.Namespace) -> Any:
    """A format-version 3 table with deletion vectors: 3 appends of 5 rows (ids 0..14, one data file
    each), then a `delete` snapshot whose one Puffin file holds a DV for each of the first two files
    (positions 1, 3 of the first, 0, 2, 4 of the second). Checks that pyiceberg (and DuckDB, when
    installed and able to) reads the 10 remaining rows, and the 15 at the snapshot before."""
    catalog = open_catalog(args)
    namespace, _ = split_ident(args.table)
    ensure_namespace(catalog, namespace)
    drop_if_exists(catalog, args.table)
    schema = Schema(
        NestedField(1, "id", LongType(), required=True),
        NestedField(2, "name", StringType(), required=False),
    )
    table = create_v3_table(catalog, args.table, schema)
    arrow_schema = schema_to_pyarrow(schema)
    for start in (0, 5, 10):
        rows = [{"id": i, "name": f"n{i}"} for i in range(start, start + 5)]
        table = append_v3(table, pa.Table.from_pylist(rows, schema=arrow_schema))

    data_files = sorted((task.file for task in table.scan().plan_files()), key=lambda f: from_bytes(LongType(), f.lower_bounds[1]))
    if [f.record_count for f in data_files] != [5, 5, 5]:
        raise FixtureError(f"expected 3 data files of 5 rows in {args.table}, got {[f.record_count for f in data_files]}")
    deletes: dict[str, Sequence[int]] = {data_files[0].file_path: [1, 3], data_files[1].file_path: [0, 2, 4]}
    deleted_ids: set[int] = set()
    for path, positions in deletes.items():
        with table.io.new_input(path).open() as f:
            ids = pq.read_table(f, columns=["id"]).column("id").to_pylist()
        deleted_ids |= {ids[p] for p in positions}
    before = table.metadata.current_snapshot_id
    table, puffin_path = commit_deletion_vectors(table, deletes)
    _check_deletion_vectors(table, deletes)

    # pyiceberg applies the DVs (it reads the whole Puffin file and maps each blob's referenced file).
    ids = sorted(table.scan().to_arrow().column("id").to_pylist())
    expected = sorted(set(range(15)) - deleted_ids)
    if ids != expected:
        raise FixtureError(f"{args.table}: deletion vectors not applied by pyiceberg, ids = {ids}, expected {expected}")
    if table.scan(snapshot_id=before).to_arrow().num_rows != 15:
        raise FixtureError(f"{args.table}: time travel to the snapshot before the deletes does not give 15 rows")
    doc: dict[str, Any] = {
        "location": table.location(),
        "metadata_location": table.metadata_location,
        "format_version": table.metadata.format_version,
        "snapshots": len(table.metadata.snapshots),
        "rows": len(ids),
        "ids": ids,
        "data_files": [f.file_path for f in data_files],
        "puffin_files": [puffin_path],
        "deletes": {path: list(positions) for path, positions in deletes.items()},
        "verified_by": ["pyiceberg"],
    }
    con = duckdb_connection()
    if con is not None:
        try:
            duck_ids = sorted(r["id"] for r in duckdb_rows(con, table.metadata_location))
        except Exception as e:  # noqa: BLE001 - report, don't fail: DuckDB is an optional second reader
            doc["duckdb_error"] = f"{type(e).__name__}: {e}"
        else:
            if duck_ids != ids:
                raise FixtureError(f"{args.table}: DuckDB reads ids {duck_ids}, pyiceberg {ids}")
            doc["verified_by"].append("duckdb")
    return doc


def cmd_dump_named(args: argparse.Namespace) -> Any:
    """Rows and snapshot count of a table given as namespace and name (names may hold dots)."""
    catalog = open_catalog(args)
    table = catalog.load_table((args.namespace, args.name))
    return {
        "location": table.location(),
        "snapshots": len(table.metadata.snapshots),
        "rows": sorted_rows(table.scan().to_arrow()),
    }


# --------------------------------------------------------------------------- CLI


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        fail(f"{self.prog}: {message}")


def fail(message: str) -> NoReturn:
    sys.stderr.write(f"{PROG}: error: {' '.join(message.split())}\n")
    sys.exit(1)


def build_parser() -> argparse.ArgumentParser:
    def catalog_options(p: argparse.ArgumentParser, prefix: str) -> None:
        # Accepted before and after the subcommand; main() merges the two sets.
        group = p.add_argument_group("catalog")
        group.add_argument("--catalog-type", dest=f"{prefix}catalog_type", choices=("sql", "rest", "glue", "hive"))
        group.add_argument("--catalog-name", dest=f"{prefix}catalog_name", metavar="NAME")
        group.add_argument("--prop", dest=f"{prefix}prop", action="append", default=[], metavar="KEY=VALUE")

    common = _Parser(add_help=False)
    catalog_options(common, "")
    parser = _Parser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    catalog_options(parser, "global_")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def add(name: str, func: Callable[[argparse.Namespace], Any], help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help_text, description=help_text)
        p.set_defaults(func=func)
        return p

    p = add("make-sample", cmd_make_sample, "create the sample namespace and tables (events, users, mor)")
    p.add_argument("--namespace", required=True)
    p.add_argument("--tables", default=",".join(SAMPLE_TABLES), help="comma-separated subset of events,users,mor")

    p = add("mutate", cmd_mutate, "change a table with one operation")
    p.add_argument("--table", required=True)
    p.add_argument(
        "--op",
        required=True,
        choices=("append", "delete", "pos-delete", "add-column", "tag", "noop"),
        help="append: 3 generated rows; delete: copy-on-write delete of the largest id; "
        "pos-delete: merge-on-read (position delete file) delete of the largest id, v2 tables; "
        "add-column: nullable string c<N>; tag: tag the current snapshot (--name); noop: nothing",
    )
    p.add_argument("--name", help="tag name for --op tag")

    p = add("dump", cmd_dump, "print a table's metadata and rows as JSON")
    p.add_argument("--table", required=True)
    p.add_argument("--all-snapshots", action="store_true", help="also rows_at: rows of every snapshot")
    p.add_argument("--duckdb", action="store_true", help="also duckdb_rows: the current rows as read by DuckDB")
    p.add_argument("--digest", action="store_true", help="rows as their count and SHA-256 (large tables)")

    p = add("exists", cmd_exists, "does a table exist")
    p.add_argument("--table", required=True)

    add("list", cmd_list, "all namespaces and tables")
    add("locations", cmd_locations, "every table and its metadata location")

    p = add("drop", cmd_drop, "drop a table (no purge)")
    p.add_argument("--table", required=True)

    p = add("make-bench", cmd_make_bench, "create a large table for benchmarks")
    p.add_argument("--table", required=True)
    p.add_argument("--snapshots", type=int, default=10)
    p.add_argument("--files-per-snapshot", type=int, default=10)
    p.add_argument("--file-mib", type=float, default=1.0)
    p.add_argument("--commit-per-file", action="store_true", help="one snapshot per file")

    p = add("make-linked", cmd_make_linked, "create a table of many hard-linked one-row files (benchmarks)")
    p.add_argument("--table", required=True)
    p.add_argument("--snapshots", type=int, default=100)
    p.add_argument("--files-per-snapshot", type=int, default=10000)

    p = add("make-many-tables", cmd_make_many_tables, "create many small tables (benchmarks)")
    p.add_argument("--namespace", required=True)
    p.add_argument("--tables", type=int, default=1000)

    p = add("expire-and-purge", cmd_expire_and_purge, "overwrite, expire older snapshots, delete their files")
    p.add_argument("--table", required=True)

    p = add("strip-uuid", cmd_strip_uuid, "remove table-uuid from the current metadata file (local)")
    p.add_argument("--table", required=True)

    p = add("drop-namespace", cmd_drop_namespace, "drop a namespace, its tables and (Hive) views (no purge)")
    p.add_argument("--namespace", required=True)

    p = add("rename", cmd_rename, "rename a table")
    p.add_argument("--table", required=True)
    p.add_argument("--to", required=True)

    p = add("make-evolved", cmd_make_evolved, "a table with partition evolution, a branch and an expired snapshot")
    p.add_argument("--table", required=True)

    p = add("make-named", cmd_make_named, "create a 2-column table with two appends under any name")
    p.add_argument("--namespace", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--rows", type=int, default=5)

    p = add("make-views", cmd_make_views, "views in a namespace (REST view API; SQL VIEW rows or Hive VIRTUAL_VIEW tables as Java writes them)")
    p.add_argument("--namespace", required=True)
    p.add_argument("--names", default="v_one,v_two", help="comma-separated view names")

    p = add("drop-view", cmd_drop_view, "drop a view, keeping its files")
    p.add_argument("--view", required=True, help="NAMESPACE.VIEW")

    p = add("dump-views", cmd_dump_views, "the views of a namespace with every version")
    p.add_argument("--namespace", required=True)

    p = add("make-external", cmd_make_external, "a table with files outside its location")
    p.add_argument("--table", required=True)
    p.add_argument("--data-path", required=True, help="directory for write.data.path")
    p.add_argument("--add-dir", required=True, help="directory of a file added with add_files")

    p = add("make-dv", cmd_make_dv, "a format-version 3 table whose deletes are deletion vectors in a Puffin file")
    p.add_argument("--table", required=True)

    p = add("dump-named", cmd_dump_named, "rows of a table given as namespace and name")
    p.add_argument("--namespace", required=True)
    p.add_argument("--name", required=True)

    p = add("create-empty", cmd_create_empty, "create a 2-column table with no snapshot")
    p.add_argument("--table", required=True)
    p.add_argument("--format-version", type=int, default=2, choices=(1, 2))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.catalog_type = args.catalog_type or args.global_catalog_type or "sql"
    args.catalog_name = args.catalog_name or args.global_catalog_name or "bcn"
    args.prop = args.global_prop + args.prop
    try:
        emit(args.func(args))
    except FixtureError as e:
        fail(str(e))
    except Exception as e:  # noqa: BLE001 - any failure: one line on stderr, exit 1
        fail(f"{type(e).__name__}: {e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
