//! The command-line surface: help texts, plan validation errors and error flows, as trycmd
//! cases under `tests/cmd/`. Update the expected output with `TRYCMD=overwrite cargo test
//! --test cli` and review the diff.
//!
//! Also keeps `schema/plan.schema.json` equal to the schema generated from the plan types
//! (`BCN_UPDATE_SCHEMA=1 cargo test --test cli` rewrites it), and checks that every shipped
//! plan in `examples/` and `etc/` validates.

use std::path::Path;

#[test]
fn cli_cases() {
    trycmd::TestCases::new()
        .case("tests/cmd/**/*.toml")
        .case("tests/cmd/**/*.md");
}

#[test]
fn schema_file_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/plan.schema.json");
    let generated = bcn::plan::json_schema();
    if std::env::var_os("BCN_UPDATE_SCHEMA").is_some() {
        fs_err::write(&path, &generated).unwrap();
    }
    let on_disk = fs_err::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == generated,
        "schema/plan.schema.json is out of date: run `BCN_UPDATE_SCHEMA=1 cargo test --test cli`"
    );
}

#[test]
fn shipped_plans_validate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut checked = 0;
    for dir in ["examples"] {
        for entry in fs_err::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                if let Err(e) = bcn::plan::Plan::load(&path, bcn::plan::Resolve::SyntaxOnly) {
                    panic!("{} does not validate:\n{e}", path.display());
                }
                checked += 1;
            }
        }
    }
    assert!(
        checked >= 2,
        "expected shipped plans in examples/ and etc/, found {checked}"
    );
}
