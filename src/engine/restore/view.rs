//! Restoring a view: its stored metadata file is written again under the view's new location
//! (plain JSON, which every catalog reads), then registered in the target catalog — REST
//! through `register-view` (else a create from the metadata), SQL as a `VIEW` row.

use bytes::Bytes;
use serde_json::{Map as JsonMap, Value as JsonValue};

use super::execute::{Job, next_metadata_version, said_put_back};
use super::{RestoreItem, ident};
use crate::catalog::OpenCatalog;
use crate::engine::backup::view::ViewFacts;
use crate::engine::rewrite::PathRewriter;
use crate::engine::transfer::{self, maybe_gunzip};
use crate::engine::{TableError, error_chain};

/// The view property that may name where its metadata files go.
const METADATA_PATH: &str = "write.metadata.path";

impl Job<'_> {
    /// Restores one view; returns its new metadata location.
    pub(super) async fn restore_view(&self, item: &RestoreItem) -> Result<String, TableError> {
        let damaged =
            |what: &str, e: &dyn std::fmt::Display| TableError::Damaged(format!("{what}: {e}"));
        let (filelist, raw) = self.load_stored(item).await?;
        let json = maybe_gunzip(&raw).map_err(|e| damaged("decompressing stored metadata", &e))?;
        let mut doc: JsonValue =
            serde_json::from_slice(&json).map_err(|e| damaged("reading stored metadata", &e))?;
        let rw = if item.in_place {
            PathRewriter::in_place(&filelist.location)
        } else {
            PathRewriter::new(&filelist.location, &item.location)
        };
        relocate(
            &mut doc,
            &rw,
            &item.location,
            &self.provenance(item),
            !item.keeps_uuid,
        )
        .map_err(|e| damaged("rewriting the view metadata", &e))?;
        let bytes =
            serde_json::to_vec(&doc).map_err(|e| damaged("writing the view metadata", &e))?;
        ViewFacts::parse(&bytes).map_err(|e| damaged("the rewritten view metadata", &e))?;
        let metadata_location = format!(
            "{}/metadata/{:05}-{}.metadata.json",
            item.location,
            next_metadata_version(&filelist.metadata_location),
            uuid::Uuid::new_v4()
        );
        let file_io = &self.target.file_io;
        transfer::bytes_to_file(file_io, &metadata_location, Bytes::from(bytes))
            .await
            .map_err(|e| TableError::transfer(&e))?;
        let registered = match transfer::sync_local_file(&metadata_location).await {
            Ok(()) => self.register_view(item, &metadata_location, doc).await,
            Err(e) => Err(TableError::Io(e)),
        };
        if let Err(e) = registered {
            if let Err(e2) = file_io.delete(&metadata_location).await {
                tracing::warn!(path = %metadata_location, error = %e2, "could not remove the metadata file of a failed view restore");
            }
            return Err(e);
        }
        Ok(metadata_location)
    }

    /// Registers the view, replacing the one there (with `--replace`) and putting it back when
    /// the new one cannot be registered; to its end even when the restore is stopped meanwhile
    /// (see [`crate::engine::finish`]).
    async fn register_view(
        &self,
        item: &RestoreItem,
        metadata_location: &str,
        doc: JsonValue,
    ) -> Result<(), TableError> {
        let ident = ident(&item.target).map_err(|e| TableError::Unsupported(e.to_string()))?;
        let replace = item.action == "replace";
        let done = format!(
            "view {} was {} in catalog `{}`",
            item.target,
            if replace {
                "restored (replacing any view of that name)"
            } else {
                "registered"
            },
            self.target.name
        );
        let swap = swap_view(
            self.target.clone(),
            ident,
            replace,
            metadata_location.to_owned(),
            doc,
        );
        crate::engine::finish::to_the_end(done, swap).await
    }
}

/// The catalog side of registering a view, in a task of its own.
async fn swap_view(
    target: OpenCatalog,
    ident: iceberg::TableIdent,
    replace: bool,
    metadata_location: String,
    doc: JsonValue,
) -> Result<(), TableError> {
    let _one = crate::engine::finish::one_at_a_time(format!("{}/{ident}", target.name)).await;
    let chain = |e: &(dyn std::error::Error + 'static)| error_chain(e);
    let previous = if replace {
        match target
            .load_view(&ident)
            .await
            .map_err(|e| TableError::catalog(&e))?
        {
            Some(old) => {
                let old_doc = read_json(&target, &old.metadata_location).await;
                target
                    .drop_view(&ident)
                    .await
                    .map_err(|e| TableError::catalog(&e).context("dropping the view to replace"))?;
                Some((old.metadata_location, old_doc))
            }
            None => None,
        }
    } else {
        None
    };
    match target.register_view(&ident, &metadata_location, &doc).await {
        Ok(()) => Ok(()),
        Err(e) => {
            let mut message = chain(&e);
            if let Some((old, old_doc)) = previous {
                let put_back = target
                    .register_view(&ident, &old, &old_doc.unwrap_or_default())
                    .await;
                said_put_back(&mut message, "view", &old, put_back);
            }
            Err(TableError::Catalog(message))
        }
    }
}

/// The JSON document at `location` in `target`'s storage, if it reads.
async fn read_json(target: &OpenCatalog, location: &str) -> Option<JsonValue> {
    let raw = target.file_io.new_input(location).ok()?.read().await.ok()?;
    let json = maybe_gunzip(&raw).ok()?;
    serde_json::from_slice(&json).ok()
}

/// Moves view metadata to `location`: its `location`, a `write.metadata.path` under the old
/// location (one elsewhere is dropped: its files would land outside the view), the provenance
/// properties, and a new `view-uuid` when the view is restored as another view.
fn relocate(
    doc: &mut JsonValue,
    rw: &PathRewriter,
    location: &str,
    provenance: &std::collections::BTreeMap<String, String>,
    new_uuid: bool,
) -> Result<(), String> {
    let obj = doc
        .as_object_mut()
        .ok_or("view metadata is not a JSON object")?;
    if !rw.is_identity() {
        obj.insert("location".into(), JsonValue::String(location.to_owned()));
    }
    let properties = obj
        .entry("properties")
        .or_insert_with(|| JsonValue::Object(JsonMap::new()))
        .as_object_mut()
        .ok_or("view metadata `properties` is not an object")?;
    if let Some(JsonValue::String(path)) = properties.get(METADATA_PATH).cloned() {
        if let Ok(new) = rw.rewrite(&path) {
            properties.insert(METADATA_PATH.into(), JsonValue::String(new));
        } else {
            tracing::warn!(%path, "dropping the view's write.metadata.path: it lies outside the view location");
            properties.remove(METADATA_PATH);
        }
    }
    for (k, v) in provenance {
        properties.insert(k.clone(), JsonValue::String(v.clone()));
    }
    if new_uuid {
        obj.insert(
            "view-uuid".into(),
            JsonValue::String(uuid::Uuid::new_v4().to_string()),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;

    #[test]
    fn relocating_moves_the_location_and_metadata_path_and_keeps_versions() {
        let mut doc = json!({
            "view-uuid": "u1", "format-version": 1, "location": "s3://b/wh/db/v",
            "current-version-id": 1, "versions": [{"version-id": 1, "schema-id": 0}],
            "properties": {"write.metadata.path": "s3://b/wh/db/v/meta", "comment": "c"}
        });
        let rw = PathRewriter::new("s3://b/wh/db/v", "file:///r/db.db/v");
        let provenance = BTreeMap::from([("bcn.pit".to_owned(), "p1".to_owned())]);
        relocate(&mut doc, &rw, "file:///r/db.db/v", &provenance, true).unwrap();
        assert_eq!(doc["location"], "file:///r/db.db/v");
        assert_eq!(
            doc["properties"]["write.metadata.path"],
            "file:///r/db.db/v/meta"
        );
        assert_eq!(doc["properties"]["comment"], "c");
        assert_eq!(doc["properties"]["bcn.pit"], "p1");
        assert_ne!(doc["view-uuid"], "u1");
        assert_eq!(doc["versions"][0]["version-id"], 1);

        let mut elsewhere = json!({"location": "s3://b/wh/db/v",
            "properties": {"write.metadata.path": "s3://other/meta"}});
        relocate(
            &mut elsewhere,
            &rw,
            "file:///r/db.db/v",
            &BTreeMap::new(),
            false,
        )
        .unwrap();
        assert!(elsewhere["properties"].get("write.metadata.path").is_none());
        assert!(elsewhere.get("view-uuid").is_none());
    }
}
