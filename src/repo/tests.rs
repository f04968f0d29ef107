use super::*;

#[test]
fn pit_selectors_parse() {
    assert_eq!(PitSelector::parse("latest"), PitSelector::Latest);
    assert_eq!(
        PitSelector::parse("20261121T065012.345Z-ab12cd"),
        PitSelector::Id("20261121T065012.345Z-ab12cd".into())
    );
    let t = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
    assert_eq!(
        PitSelector::parse("2026-01-02T03:04:05Z"),
        PitSelector::AtOrBefore(t)
    );
    assert_eq!(
        PitSelector::parse("2026-01-02 03:04:05"),
        PitSelector::AtOrBefore(t)
    );
    let end = Utc.with_ymd_and_hms(2026, 1, 2, 23, 59, 59).unwrap();
    assert_eq!(
        PitSelector::parse("2026-01-02"),
        PitSelector::AtOrBefore(end)
    );
}
