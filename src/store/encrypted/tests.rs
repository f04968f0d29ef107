use super::*;
use crate::store::MemoryStore;

fn cheap() -> KdfCost {
    KdfCost {
        m_cost: 64,
        t_cost: 1,
    }
}

fn store(inner: &Arc<dyn BackupStore>, pass: &str) -> EncryptedStore {
    EncryptedStore::with_cost(inner.clone(), UserKey::new(pass).unwrap(), cheap())
}

#[tokio::test]
async fn objects_and_names_are_sealed_and_read_back() {
    let inner: Arc<dyn BackupStore> = Arc::new(MemoryStore::new());
    let enc = store(&inner, "passphrase one");
    assert!(enc.is_empty().await.unwrap());
    enc.put(
        "pits/p1.json",
        Bytes::from_static(b"{\"table\":\"sales.orders\"}"),
    )
    .await
    .unwrap();
    let big: Vec<u8> = (0..200_000u32)
        .map(|i| u8::try_from(i % 256).unwrap())
        .collect();
    let mut w = enc.writer("tables/k/files/data/a.parquet").await.unwrap();
    for part in big.chunks(30_000) {
        w.write(Bytes::copy_from_slice(part)).await.unwrap();
    }
    w.finish().await.unwrap();
    assert_eq!(
        enc.get("pits/p1.json").await.unwrap().as_ref(),
        b"{\"table\":\"sales.orders\"}"
    );
    assert_eq!(
        enc.get("tables/k/files/data/a.parquet")
            .await
            .unwrap()
            .as_ref(),
        big.as_slice()
    );
    assert_eq!(
        enc.get_range("tables/k/files/data/a.parquet", 70_000..140_001)
            .await
            .unwrap()
            .as_ref(),
        &big[70_000..140_001]
    );
    let listed = enc.list("tables/").await.unwrap();
    assert_eq!(listed.len(), 1);
    let names = enc.listed_names().await.unwrap();
    assert_eq!(listed[0].key, names("tables/k/files/data/a.parquet"));
    assert_eq!(listed[0].size, big.len() as u64);
    assert_eq!(enc.list("pits/").await.unwrap()[0].key, "pits/p1.json");
    assert!(enc.list("tables/k/").await.is_err());
    let paged = futures::TryStreamExt::try_concat(enc.list_pages("tables/"))
        .await
        .unwrap();
    assert_eq!(paged, listed, "a page at a time as whole");
    assert!(
        futures::TryStreamExt::try_concat(enc.list_pages("tables/k/"))
            .await
            .is_err()
    );
    // A listed name reads, and deletes, the object it names.
    assert_eq!(
        enc.head(&listed[0].key).await.unwrap().unwrap().size,
        big.len() as u64
    );
    assert_eq!(enc.head("pits/p1.json").await.unwrap().unwrap().size, 24);
    // Beneath: only the marker and key file in the clear, no name or value readable.
    for object in inner.list("").await.unwrap() {
        assert!(object.key.len() <= 100, "{}", object.key);
        let raw = inner.get(&object.key).await.unwrap();
        // Five letters or more: sealed names are random base32hex, where a four-letter word
        // turns up by chance once in a few thousand runs.
        for secret in ["sales", "orders", "parquet", "files"] {
            assert!(!object.key.contains(secret), "{}", object.key);
            if object.key != MARKER && !object.key.starts_with(KEYS_PREFIX) {
                assert!(!String::from_utf8_lossy(&raw).contains(secret));
            }
        }
    }
}

#[tokio::test]
async fn wrong_keys_plain_repositories_and_rotation() {
    let inner: Arc<dyn BackupStore> = Arc::new(MemoryStore::new());
    let enc = store(&inner, "passphrase one");
    enc.put("pits/p1.json", Bytes::from_static(b"x"))
        .await
        .unwrap();
    let err = store(&inner, "passphrase two")
        .get("pits/p1.json")
        .await
        .unwrap_err();
    assert!(
        crate::error::error_chain(&err).contains("opens none of its 1 key"),
        "{err}"
    );

    let id = enc
        .add_key(&UserKey::new("passphrase two").unwrap())
        .await
        .unwrap();
    let second = store(&inner, "passphrase two");
    assert_eq!(second.get("pits/p1.json").await.unwrap().as_ref(), b"x");
    assert!(
        second.remove_key(&id).await.is_err(),
        "the key in use stays"
    );
    let first_id = enc.current_key().await.unwrap();
    second.remove_key(&first_id).await.unwrap();
    assert!(
        store(&inner, "passphrase one")
            .get("pits/p1.json")
            .await
            .is_err()
    );
    assert!(second.remove_key(&id).await.is_err(), "the last key stays");

    let plain: Arc<dyn BackupStore> = Arc::new(MemoryStore::new());
    plain
        .put(PLAIN_MANIFEST, Bytes::from_static(b"{}"))
        .await
        .unwrap();
    let err = store(&plain, "passphrase one")
        .get(PLAIN_MANIFEST)
        .await
        .unwrap_err();
    assert!(
        crate::error::error_chain(&err).contains("without encryption"),
        "{err}"
    );
}

#[tokio::test]
async fn a_damaged_object_is_named() {
    let inner: Arc<dyn BackupStore> = Arc::new(MemoryStore::new());
    let enc = store(&inner, "passphrase one");
    enc.put("pits/p1.json", Bytes::from_static(b"hello"))
        .await
        .unwrap();
    let stored = inner
        .list("")
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.key != MARKER && !m.key.starts_with(KEYS_PREFIX))
        .unwrap();
    let mut raw = inner.get(&stored.key).await.unwrap().to_vec();
    let last = raw.len() - 1;
    raw[last] ^= 0x40;
    inner.put(&stored.key, Bytes::from(raw)).await.unwrap();
    let err = enc.get("pits/p1.json").await.unwrap_err();
    let text = crate::error::error_chain(&err);
    assert!(
        text.contains("pits/p1.json") && text.contains("damaged"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_written_in_pieces_of_any_size_read_back_the_same() {
    let inner: Arc<dyn BackupStore> = Arc::new(MemoryStore::new());
    let enc = store(&inner, "passphrase one");
    let chunk = crypto::CHUNK;
    let data: Vec<u8> = (0..u32::try_from(5 * chunk + 123).unwrap())
        .map(|i| u8::try_from(i.wrapping_mul(2_654_435_761) >> 24).unwrap())
        .collect();
    // Pieces below, at and around a chunk, and large ones sealed on the blocking pool.
    let patterns: [&[usize]; 7] = [
        &[1, chunk - 1, 1, chunk],
        &[chunk],
        &[chunk + 1],
        &[2 * chunk],
        &[1 << 20],
        &[7, 3 * chunk, 5],
        &[chunk, chunk, chunk, chunk, chunk],
    ];
    for (n, pattern) in patterns.iter().enumerate() {
        for len in [0, 1, chunk, chunk + 1, 3 * chunk, data.len()] {
            let plain = &data[..len];
            let key = format!("tables/k/files/data/{n}-{len}.parquet");
            let mut w = enc.writer(&key).await.unwrap();
            let mut rest = plain;
            for &size in pattern.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (piece, after) = rest.split_at(size.min(rest.len()));
                w.write(Bytes::copy_from_slice(piece)).await.unwrap();
                rest = after;
            }
            w.finish().await.unwrap();
            assert_eq!(
                enc.get(&key).await.unwrap().as_ref(),
                plain,
                "{pattern:?} {len}"
            );
            let beneath = EncryptedStore::stored(enc.unlocked().await.unwrap(), &key);
            let sealed = inner.head(&beneath).await.unwrap().map(|o| o.size);
            assert_eq!(
                sealed,
                Some(crypto::sealed_size(len as u64)),
                "{pattern:?} {len}"
            );
            if len > chunk {
                let range = (chunk as u64 - 3)..(len as u64 - 1);
                assert_eq!(
                    enc.get_range(&key, range.clone()).await.unwrap().as_ref(),
                    &plain[chunk - 3..len - 1],
                    "{pattern:?} {len}"
                );
            }
        }
    }
}
