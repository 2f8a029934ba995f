//! Tests of Keeper references: notation, folder paths, escapes, indexes and their errors.

use super::{Reference, escape, folder_path, name, parse, rsplit_unescaped};
use bulwark_sidecar_spec::{Index, RecordRef, Selector};

fn rec(folder: &[&str], name: &str) -> RecordRef {
    RecordRef {
        folder: folder.iter().map(|s| (*s).to_owned()).collect(),
        name: name.to_owned(),
    }
}

/// Checks what `text` selects.
#[track_caller]
fn check(text: &str, expect: Reference) {
    assert_eq!(parse(text), Ok(expect));
}

/// Checks a notation: its record, selector and canonical form.
#[track_caller]
fn check_notation(text: &str, record: RecordRef, selector: Selector, canonical: &str) {
    check(
        text,
        Reference::Notation {
            canonical: canonical.to_owned(),
            record,
            selector,
        },
    );
}

#[track_caller]
fn check_err(text: &str, message: &str) {
    assert_eq!(
        parse(text).map_err(|e| e.to_string()),
        Err(message.to_owned())
    );
}

fn field(name: &str, index: Option<Index>, property: Option<&str>) -> Selector {
    Selector::Field {
        name: name.to_owned(),
        index,
        property: property.map(str::to_owned),
    }
}

#[test]
fn plain_titles_and_uids() {
    check(
        "database-credentials",
        Reference::Record(rec(&[], "database-credentials")),
    );
    check(
        "XXXXXXXXXXXXXXXXXXXXXX",
        Reference::Record(rec(&[], "XXXXXXXXXXXXXXXXXXXXXX")),
    );
    check(
        "keeper://XXXXXXXXXXXXXXXXXXXXXX",
        Reference::Record(rec(&[], "XXXXXXXXXXXXXXXXXXXXXX")),
    );
    check(
        "Title: with spaces",
        Reference::Record(rec(&[], "Title: with spaces")),
    );
}

#[test]
fn record_with_one_field() {
    check(
        "db[password]",
        Reference::Field(rec(&[], "db"), "password".to_owned()),
    );
    check(
        r"db\[eu\][pass\]word]",
        Reference::Field(rec(&[], "db[eu]"), "pass]word".to_owned()),
    );
}

#[test]
fn folder_paths_to_records() {
    check(
        "Production/Databases/mysql",
        Reference::Record(rec(&["Production", "Databases"], "mysql")),
    );
    check(
        "keeper://Team/notes/db",
        Reference::Record(rec(&["Team", "notes"], "db")),
    );
}

#[test]
fn selectors() {
    check_notation(
        "UID/type",
        rec(&[], "UID"),
        Selector::Type,
        "keeper://UID/type",
    );
    check_notation(
        "keeper://UID/title",
        rec(&[], "UID"),
        Selector::Title,
        "keeper://UID/title",
    );
    check_notation(
        "keeper://A/B/notes",
        rec(&["A"], "B"),
        Selector::Notes,
        "keeper://A/B/notes",
    );
    check_notation(
        "keeper://UID/field/password",
        rec(&[], "UID"),
        field("password", None, None),
        "keeper://UID/field/password",
    );
    check_notation(
        "keeper://UID/custom_field/API Key",
        rec(&[], "UID"),
        Selector::CustomField {
            name: "API Key".to_owned(),
            index: None,
            property: None,
        },
        "keeper://UID/custom_field/API Key",
    );
    check(
        "keeper://UID/file/cert.pem",
        Reference::File(rec(&[], "UID"), "cert.pem".to_owned()),
    );
    check(
        "A/B/file/c.pem",
        Reference::File(rec(&["A"], "B"), "c.pem".to_owned()),
    );
}

#[test]
fn indexes_and_properties() {
    check_notation(
        "keeper://UID/field/url[0]",
        rec(&[], "UID"),
        field("url", Some(Index::At(0)), None),
        "keeper://UID/field/url[0]",
    );
    check_notation(
        "keeper://UID/field/url[]",
        rec(&[], "UID"),
        field("url", Some(Index::All), None),
        "keeper://UID/field/url[]",
    );
    check_notation(
        "keeper://UID/field/name[1][first]",
        rec(&[], "UID"),
        field("name", Some(Index::At(1)), Some("first")),
        "keeper://UID/field/name[1][first]",
    );
    // Legacy `name[first]` is `name[][first]`, as the Python SDK's get_notation reads it.
    check_notation(
        "keeper://UID/field/name[first]",
        rec(&[], "UID"),
        field("name", Some(Index::All), Some("first")),
        "keeper://UID/field/name[][first]",
    );
}

#[test]
fn escapes_round_trip_through_the_canonical_form() {
    check_notation(
        r"keeper://Web\/Prod/field/pass\\word",
        rec(&[], "Web/Prod"),
        field(r"pass\word", None, None),
        r"keeper://Web\/Prod/field/pass\\word",
    );
    assert_eq!(escape(r"a/b[c]\d"), r"a\/b\[c\]\\d");
}

#[test]
fn errors() {
    check_err("", "empty reference: expected a record title or UID");
    check_err(
        "keeper://",
        "empty reference: expected a record title or UID",
    );
    check_err(
        "keeper:///field/x",
        r#"empty segment in "/field/x": expected names separated by single slashes"#,
    );
    check_err(
        "a/",
        r#"empty segment in "a/": expected names separated by single slashes"#,
    );
    check_err(
        "keeper://UID/field",
        "selector `field` needs a parameter, as in keeper://<record>/field/<name>",
    );
    check_err(
        "keeper://UID/file",
        "selector `file` needs a parameter, as in keeper://<record>/file/<name>",
    );
    check_err(
        r"a\x",
        r"invalid escape \x: only \/, \[, \] and \\ are escapes",
    );
    check_err(r"a\", r"a trailing \ escapes nothing");
    check_err(
        "keeper://UID/field/x[1",
        "unclosed [: expected [index] or [property]",
    );
    check_err(
        "keeper://UID/field/x[1]y",
        "unexpected text after ]: expected [index] or [property]",
    );
    check_err(
        "keeper://UID/field/x[1][a][b]",
        "too many [...] groups: expected at most [index][property]",
    );
    check_err(
        "keeper://UID/field/x[a][b]",
        "invalid index [a]: expected [] or a number",
    );
    check_err(
        "keeper://UID/field/x[0][]",
        "empty [property]: expected a property name such as [first]",
    );
    check_err("keeper://UID/field/[0]", "empty field name");
    check_err(
        "keeper://UID/file/a[0]",
        "unescaped [ in file name: write \\[ for a literal bracket",
    );
    check_err(
        "A[x]/B/type",
        "unescaped [ in folder name: write \\[ for a literal bracket",
    );
    check_err(
        "rec[x]y",
        "unescaped [ in record title: write \\[ for a literal bracket",
    );
}

#[test]
fn folder_paths() {
    assert_eq!(
        folder_path("Production/Databases"),
        Ok(vec!["Production".to_owned(), "Databases".to_owned()])
    );
    assert_eq!(folder_path("/A/"), Ok(vec!["A".to_owned()]));
    assert_eq!(folder_path(r"A\/B"), Ok(vec!["A/B".to_owned()]));
    assert_eq!(
        folder_path("/").map_err(|e| e.to_string()),
        Err("empty reference: expected a record title or UID".to_owned())
    );
}

#[test]
fn names_and_splitting() {
    assert_eq!(name(r"a\/b.pem", "file name"), Ok("a/b.pem".to_owned()));
    assert_eq!(
        name("a/b", "file name").map_err(|e| e.to_string()),
        Err(r"a file name cannot contain / (write \/ for a literal slash)".to_owned())
    );
    assert_eq!(rsplit_unescaped("a:/b:/c", ":/"), Some(("a:/b", "c")));
    assert_eq!(rsplit_unescaped(r"a:\/b", ":/"), None);
    assert_eq!(rsplit_unescaped(r"a\:/b", ":/"), None);
    assert_eq!(rsplit_unescaped("ab", ":/"), None);
}
