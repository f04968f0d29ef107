use std::collections::HashSet;

use super::*;

#[test]
fn subsets_parse_and_slices_partition_the_files() {
    assert_eq!(Subset::parse("all").unwrap(), Subset::All);
    assert_eq!(Subset::parse("10%").unwrap(), Subset::Percent(10.0));
    assert_eq!(Subset::parse("3/7").unwrap(), Subset::Slice { k: 3, t: 7 });
    for bad in ["0%", "101%", "0/7", "8/7", "x", "1/0"] {
        assert!(Subset::parse(bad).is_err(), "{bad}");
    }
    let keys: Vec<String> = (0..500).map(|i| format!("tables/t/files/{i}")).collect();
    let mut seen = HashSet::new();
    for k in 1..=7 {
        let slice = Subset::Slice { k, t: 7 };
        for key in keys.iter().filter(|key| slice.selects(key, "salt")) {
            assert!(seen.insert(key.clone()), "{key} in two slices");
        }
    }
    assert_eq!(seen.len(), keys.len(), "every file in some slice");
    let tenth = keys
        .iter()
        .filter(|k| Subset::Percent(10.0).selects(k, "run-1"))
        .count();
    assert!((20..=80).contains(&tenth), "about a tenth: {tenth}");
}
