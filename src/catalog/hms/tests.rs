use iceberg::spec::{ListType, NestedField, PrimitiveType, StructType, Type};
use pilota::AHashMap;

use super::shape::hive_type;
use super::*;

#[test]
fn iceberg_types_map_to_hive_2_types() {
    let nested = Type::Struct(StructType::new(vec![
        NestedField::optional(2, "at", Type::Primitive(PrimitiveType::Timestamptz)).into(),
        NestedField::optional(
            3,
            "tags",
            Type::List(ListType::new(
                NestedField::list_element(4, Type::Primitive(PrimitiveType::String), false).into(),
            )),
        )
        .into(),
    ]));
    assert_eq!(
        hive_type(&nested),
        "struct<at:timestamp,tags:array<string>>"
    );
    assert_eq!(
        hive_type(&Type::Primitive(PrimitiveType::Decimal {
            precision: 10,
            scale: 2
        })),
        "decimal(10,2)"
    );
}

#[test]
fn only_iceberg_tables_are_listed() {
    let iceberg = AHashMap::from([(FastStr::from("table_type"), FastStr::from("iceberg"))]);
    let hive = AHashMap::from([(FastStr::from("EXTERNAL"), FastStr::from("TRUE"))]);
    assert!(is_iceberg(Some(&iceberg)));
    assert!(!is_iceberg(Some(&hive)));
    assert!(!is_iceberg(None));
}
