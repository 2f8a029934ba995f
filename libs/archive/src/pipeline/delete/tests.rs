//! Tests of the delete statements.

use super::Deletes;
use crate::config::Target;

#[test]
fn deletes_cast_keys_to_the_key_s_type_and_stay_below_the_cutoff() {
    let target = Target::example(1000);
    let deletes = Deletes::new(&target, "character varying(64)");
    for sql in [&deletes.by_range, &deletes.in_snapshot, &deletes.by_keys] {
        assert!(
            sql.starts_with("DELETE FROM \"public\".\"audit_log\" WHERE"),
            "{sql}"
        );
        assert!(sql.contains("::character varying(64)"), "{sql}");
        assert!(sql.contains("\"created_at\" < $"), "{sql}");
    }
    assert!(deletes.by_range.ends_with(" RETURNING \"id\"::text"));
    assert!(!deletes.in_snapshot.contains("RETURNING"));
    assert!(
        deletes
            .by_keys
            .contains("\"id\" = ANY($1::text[]::character varying(64)[])")
    );
}
