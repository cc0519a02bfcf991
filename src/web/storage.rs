//! The listening history in IndexedDB (database `encore`, object store `plays`, key `id`).
//!
//! An import is written in one read-write transaction: if any record fails, the transaction
//! aborts and the stored history is untouched.

use idb::{Database, DatabaseEvent, Factory, KeyPath, ObjectStoreParams, TransactionMode};
use wasm_bindgen::JsValue;

use super::error::WebError;
use crate::data::history::Play;

const DB: &str = "encore";
const STORE: &str = "plays";

fn err(what: &'static str, e: impl std::fmt::Display) -> WebError {
    WebError::Storage {
        what,
        reason: e.to_string(),
    }
}

pub async fn open() -> Result<Database, WebError> {
    let factory = Factory::new().map_err(|e| err("unavailable", e))?;
    let mut request = factory.open(DB, Some(1)).map_err(|e| err("open", e))?;
    request.on_upgrade_needed(|event| {
        if let Ok(db) = event.database()
            && !db.store_names().iter().any(|n| n == STORE)
        {
            let mut params = ObjectStoreParams::new();
            params.key_path(Some(KeyPath::new_single("id")));
            let _ = db.create_object_store(STORE, params);
        }
    });
    request.await.map_err(|e| err("open", e))
}

/// Every stored play, oldest first.
pub async fn load(db: &Database) -> Result<Vec<Play>, WebError> {
    let tx = db
        .transaction(&[STORE], TransactionMode::ReadOnly)
        .map_err(|e| err("read", e))?;
    let store = tx.object_store(STORE).map_err(|e| err("read", e))?;
    let values: Vec<JsValue> = store
        .get_all(None, None)
        .map_err(|e| err("read", e))?
        .await
        .map_err(|e| err("read", e))?;
    let mut plays = Vec::with_capacity(values.len());
    for v in values {
        match serde_wasm_bindgen::from_value::<Play>(v) {
            Ok(p) => plays.push(p),
            Err(e) => leptos::logging::warn!("skipping an unreadable stored play: {e}"),
        }
    }
    plays.sort_by(|a, b| {
        a.started_ms
            .total_cmp(&b.started_ms)
            .then(a.id.total_cmp(&b.id))
    });
    Ok(plays)
}

/// Stores plays (insert or replace by id) in one transaction.
pub async fn put_all(db: &Database, plays: &[Play]) -> Result<(), WebError> {
    let tx = db
        .transaction(&[STORE], TransactionMode::ReadWrite)
        .map_err(|e| err("write", e))?;
    let store = tx.object_store(STORE).map_err(|e| err("write", e))?;
    let serializer = serde_wasm_bindgen::Serializer::json_compatible();
    for p in plays {
        let value = serde::Serialize::serialize(p, &serializer).map_err(|e| err("write", e))?;
        if let Err(e) = store.put(&value, None) {
            let _ = tx.abort();
            return Err(err("write", e));
        }
    }
    match tx.commit().map_err(|e| err("commit", e))?.await {
        Ok(idb::TransactionResult::Committed) => Ok(()),
        Ok(idb::TransactionResult::Aborted) => Err(err("write", "the transaction was aborted")),
        Err(e) => Err(err("commit", e)),
    }
}

/// Deletes every stored play.
pub async fn clear(db: &Database) -> Result<(), WebError> {
    let tx = db
        .transaction(&[STORE], TransactionMode::ReadWrite)
        .map_err(|e| err("clear", e))?;
    let store = tx.object_store(STORE).map_err(|e| err("clear", e))?;
    store
        .clear()
        .map_err(|e| err("clear", e))?
        .await
        .map_err(|e| err("clear", e))?;
    tx.commit()
        .map_err(|e| err("commit", e))?
        .await
        .map_err(|e| err("commit", e))?;
    Ok(())
}
