//! Loki's `query_range` answer for log queries (research/sentinel.md §2):
//! `{"status":"success","data":{"resultType":"streams","result":[{"stream":{..},"values":[["<ns>","<line>"],..]}]}}`.
//! A value may carry a third element, the entry's structured metadata, which is accepted and
//! left aside.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, SeqAccess, Visitor};

/// The whole answer.
#[derive(Debug, Deserialize)]
pub(crate) struct Answer {
    pub(crate) status: String,
    #[serde(default)]
    pub(crate) data: Option<Data>,
    #[serde(default)]
    pub(crate) error: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Data {
    pub(crate) result_type: String,
    #[serde(default)]
    pub(crate) result: Vec<StreamValues>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct StreamValues {
    pub(crate) stream: BTreeMap<String, String>,
    pub(crate) values: Vec<Value>,
}

/// `[ts, line]` or `[ts, line, metadata]`.
#[derive(Debug)]
pub(crate) struct Value {
    pub(crate) ts_ns: i64,
    pub(crate) line: String,
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Value;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#"a log entry ["<ns timestamp>", "<line>"] with optional metadata"#)
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
                let ts: String = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let ts_ns = ts.parse::<i64>().map_err(|_| {
                    de::Error::custom(format!("timestamp {ts:?} is not nanoseconds"))
                })?;
                let line: String = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(1, &self))?;
                // Structured metadata (Loki 3), and anything after it, is not used.
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Value { ts_ns, line })
            }
        }
        d.deserialize_seq(V)
    }
}

#[cfg(test)]
mod tests {
    use super::Answer;

    #[test]
    fn values_with_structured_metadata_are_accepted() {
        let a: Answer = serde_json::from_str(
            r#"{"status":"success","data":{"resultType":"streams","result":[{"stream":{"pod":"a"},
            "values":[["1","plain"],["2","with metadata",{"trace_id":"abc"}]]}],"stats":{}}}"#,
        )
        .unwrap();
        let values = &a.data.unwrap().result[0].values;
        assert_eq!(
            (values[1].ts_ns, values[1].line.as_str()),
            (2, "with metadata")
        );
        let e = serde_json::from_str::<Answer>(
            r#"{"status":"success","data":{"resultType":"streams","result":[{"stream":{},"values":[["x","l"]]}]}}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("not nanoseconds"), "{e}");
    }
}
