//! How the core sees column types: the few kinds a tabular model cares about.

use arrow_schema::DataType;

/// The kind of an Arrow type, as named in bundle schemas and error messages. "null" is a
/// column with no values at all (such as an empty string column written by pandas): it fits
/// any model input, and every row of it is missing.
pub fn column_kind(data_type: &DataType) -> &'static str {
    use DataType::*;
    match data_type {
        Float16 | Float32 | Float64 | Decimal32(..) | Decimal64(..) | Decimal128(..)
        | Decimal256(..) => "float",
        Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 => "int",
        Boolean => "bool",
        Utf8 | LargeUtf8 | Utf8View => "string",
        Dictionary(_, value) => column_kind(value),
        Null => "null",
        Date32 | Date64 | Timestamp(..) | Time32(_) | Time64(_) | Duration(_) => "temporal",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_schema::TimeUnit;

    #[test]
    fn kinds_group_arrow_types_as_models_see_them() {
        assert_eq!(column_kind(&DataType::Float32), "float");
        assert_eq!(column_kind(&DataType::UInt8), "int");
        assert_eq!(column_kind(&DataType::Utf8View), "string");
        let dictionary = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        assert_eq!(column_kind(&dictionary), "string");
        assert_eq!(
            column_kind(&DataType::Timestamp(TimeUnit::Second, None)),
            "temporal"
        );
        assert_eq!(column_kind(&DataType::Binary), "other");
    }
}
