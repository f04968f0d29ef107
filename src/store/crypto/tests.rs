use super::*;

fn cheap() -> KdfCost {
    KdfCost {
        m_cost: 64,
        t_cost: 1,
    }
}

#[test]
fn objects_round_trip_at_every_chunk_boundary_and_sizes_invert() {
    let keys = MasterKeys::generate();
    for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 7] {
        let plain: Vec<u8> = (0..len).map(|i| u8::try_from(i % 251).unwrap()).collect();
        let sealed = keys.seal("tables/k/files/a", &plain);
        assert_eq!(sealed.len() as u64, sealed_size(len as u64), "len {len}");
        assert_eq!(
            plain_size(sealed.len() as u64),
            Some(len as u64),
            "len {len}"
        );
        assert_eq!(keys.open("tables/k/files/a", &sealed).unwrap(), plain);
    }
}

#[test]
fn damage_truncation_another_key_and_another_repository_are_refused() {
    let keys = MasterKeys::generate();
    let plain = vec![7u8; 2 * CHUNK + 10];
    let sealed = keys.seal("pits/a.json", &plain);
    let mut flipped = sealed.clone();
    flipped[HEADER + 5] ^= 1;
    assert!(matches!(
        keys.open("pits/a.json", &flipped),
        Err(CryptoError::Damaged(_))
    ));
    // Dropping the last chunk leaves a valid size whose last chunk is not flagged last.
    let cut = &sealed[..HEADER + 2 * (CHUNK + TAG)];
    assert!(keys.open("pits/a.json", cut).is_err());
    assert!(keys.open("pits/b.json", &sealed).is_err());
    assert!(MasterKeys::generate().open("pits/a.json", &sealed).is_err());
}

#[test]
fn a_range_of_chunks_opens_alone() {
    let keys = MasterKeys::generate();
    let plain: Vec<u8> = (0..3 * CHUNK + 5)
        .map(|i| u8::try_from(i % 13).unwrap())
        .collect();
    let sealed = keys.seal("k", &plain);
    let body = &sealed[HEADER + CHUNK + TAG..];
    let opened = keys
        .open_chunks("k", &sealed[..HEADER], body, 1, 4)
        .unwrap();
    assert_eq!(opened, &plain[CHUNK..]);
}

#[test]
fn names_hide_every_segment_and_keep_the_tree() {
    let keys = MasterKeys::generate();
    let name = "tables/6f1c2a0b/files/data/region=eu/00000-0-a.parquet";
    let sealed = keys.seal_name(name);
    assert!(sealed.starts_with("tables/"), "{sealed}");
    // Sealed segments look random (base32hex, ~250 characters here): a five-letter word turns
    // up in them by chance about once in 130,000 runs, a four-letter one once in 4,000 (it did).
    for word in ["files", "region", "parquet", "6f1c2a0b"] {
        assert!(!sealed.contains(word), "{sealed}");
    }
    let single = keys.seal_name("bcn-repository.json");
    assert!(
        !single.contains("repository") && !single.contains('/'),
        "{single}"
    );
    assert_eq!(keys.open_name(&single).unwrap(), "bcn-repository.json");
    assert_eq!(keys.open_name(&sealed).unwrap(), name);
    // A listing prefix maps to the prefix of every name under it.
    assert!(sealed.starts_with(&keys.seal_name("tables/6f1c2a0b/files/")));
    assert_eq!(keys.seal_name(""), "");
    let long = format!("tables/{}", "x".repeat(300));
    let sealed = keys.seal_name(&long);
    assert!(
        sealed.split('/').all(|s| s.len() <= SEGMENT_PIECE + 1),
        "{sealed}"
    );
    assert_eq!(keys.open_name(&sealed).unwrap(), long);
    assert!(
        MasterKeys::generate()
            .open_name(&keys.seal_name("pits/x"))
            .is_err()
    );
}

#[test]
fn key_files_open_with_their_key_only() {
    let keys = MasterKeys::generate();
    let pass = UserKey::new("correct horse battery\n").unwrap();
    let file = keys.wrap(&pass, cheap(), "test").unwrap();
    let opened = MasterKeys::unwrap(&file, &pass).unwrap();
    let sealed = keys.seal("k", b"secret");
    assert_eq!(opened.open("k", &sealed).unwrap(), b"secret");
    let wrong = UserKey::new("wrong horse battery").unwrap();
    assert!(matches!(
        MasterKeys::unwrap(&file, &wrong),
        Err(CryptoError::WrongKey)
    ));

    let raw = UserKey::new(&format!("raw:{}", BASE64.encode(&[9u8; 32]))).unwrap();
    let file = keys.wrap(&raw, cheap(), "test").unwrap();
    assert!(matches!(file.kdf, Kdf::Raw { .. }));
    assert!(MasterKeys::unwrap(&file, &raw).is_ok());
    assert!(MasterKeys::unwrap(&file, &pass).is_err());
    assert!(UserKey::new("raw:abc").is_err());
    assert!(UserKey::new("short").is_err());
}
