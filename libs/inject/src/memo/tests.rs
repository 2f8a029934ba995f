//! Tests of the memo: equal keys share one JSON, distinct keys get their own, and the oldest
//! goes when it is full.

use std::cell::Cell;

use super::{CAPACITY, Json, JsonMemo};

#[test]
fn equal_keys_share_their_json_and_the_oldest_goes() {
    let memo = JsonMemo::new();
    let made = Cell::new(0);
    let get = |key: &String| {
        memo.get(key, |k| {
            made.set(made.get() + 1);
            Json::of(k)
        })
    };
    assert_eq!(get(&"a\"b".to_owned()).get(), r#""a\"b""#);
    assert_eq!(get(&"a\"b".to_owned()).get(), r#""a\"b""#);
    assert_eq!(made.get(), 1);
    for i in 0..CAPACITY {
        get(&i.to_string());
    }
    assert_eq!(memo.len(), CAPACITY);
    assert_eq!(made.get(), 1 + CAPACITY);
    // "a\"b" was the oldest: it is made again; the newest is still kept.
    get(&"a\"b".to_owned());
    get(&(CAPACITY - 1).to_string());
    assert_eq!(made.get(), 2 + CAPACITY);
}
