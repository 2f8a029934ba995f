//! Runs the fuzz target's properties on a fixed corpus and on deterministic pseudo-random
//! annotation sets, so that `cargo test` covers them without `cargo fuzz`.

use super::{check, check_object, pod_with_annotations};

/// Annotation keys and values the generator draws from: every annotation, valid and invalid
/// values, and the shapes that are easy to get wrong.
const KEYS: &[&str] = &[
    "inject",
    "ksm-config",
    "auth-method",
    "secret",
    "secrets",
    "secret-db",
    "secret-x",
    "file-cert",
    "folder",
    "folder-uid",
    "folder-path",
    "config",
    "format",
    "template",
    "refresh-interval",
    "init-only",
    "fail-on-error",
    "strict-lookup",
    "signal",
    "signal-process",
    "env-prefix",
    "ca-cert-secret",
    "ca-cert-configmap",
    "ca-cert-key",
    "aws-secret-id",
    "native-sidecar",
    "init-first",
    "containers",
    "output-mode",
    "output-owner",
    "cpu-request",
    "cpu-limit",
    "memory-limit",
    "volume-size-limit",
    "injected",
    "unknown-key",
    "inject-env-vars",
];

const VALUES: &[&str] = &[
    "true",
    "false",
    "db",
    "keeper-auth",
    "",
    " ",
    "a, b",
    "/keeper/secrets/x",
    "/app/x",
    "keeper://UID/field/password",
    "keeper://UID/field/x[0][first]:/keeper/secrets/y",
    "A/B/field/p:/keeper/secrets/p",
    "rec[field]",
    "rec:c.pem:/keeper/secrets/c.pem",
    r"a\/b",
    "secrets:\n  - record: a\n    path: a\n",
    "folders:\n  - path: A/B\n",
    "secrets: [",
    "5m",
    "5s",
    "SIGHUP",
    "0440",
    "1000:3000",
    "100m",
    "64Mi",
    "app",
    "migrate",
    "proxy",
    "x~y/z",
    "AbCdEfGhIjKlMnOpQrSt_-",
    "json",
    "env",
    "{{ .login }}",
    "\u{0}",
    "keeper://",
    "[]",
];

/// xorshift64*, so that the corpus is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % bound
    }
}

#[test]
fn fixed_corpus() {
    for input in [
        "inject=true\nksm-config=keeper-auth\nsecret=db",
        "inject=true\nsecret=db",
        "inject=true\nksm-config=a\nsecret=db\ninit-only=true\nsignal=SIGHUP",
        "inject=true\nksm-config=a\nsecret=db\ncontainers=migrate,proxy\nnative-sidecar=false",
        "inject=true\x1eksm-config=a\x1econfig=secrets:\n  - record: a\n    template: x\n",
        "inject=true\nksm-config=a\nsecret=db\nexample.com/a~b=1",
        "{\"request\": {\"object\": {\"metadata\": {\"annotations\": {\"keeper.security/inject\": \"true\", \"keeper.security/secret\": \"db\", \"keeper.security/ksm-config\": \"a\"}}, \"spec\": {\"containers\": [{\"name\": \"app\"}]}}}}",
        "{\"metadata\": {\"annotations\": {\"keeper.security/inject\": \"true\"}}, \"spec\": {\"containers\": null}}",
        "{\"metadata\": null}",
        "{\"metadata\": {}, \"spec\": {\"containers\": [{\"name\": \"a\", \"volumeMounts\": null}]}}",
        "{\"kind\": \"Deployment\", \"metadata\": {}}",
        "{}",
        "[1, 2]",
        "",
    ] {
        check(input.as_bytes());
    }
    check(&[0xff, 0xfe]);
}

#[test]
fn random_annotation_sets() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut injected = 0;
    for _ in 0..3000 {
        let mut text = String::from("inject=true\x1eksm-config=keeper-auth\x1esecret=db");
        for _ in 0..rng.next(5) {
            let key = KEYS[rng.next(KEYS.len())];
            let value = VALUES[rng.next(VALUES.len())];
            text.push_str(&format!("\x1e{key}={value}"));
        }
        let object = pod_with_annotations(&text);
        check_object(&object);
        if let Ok(e) = crate::explain(&object, &crate::Defaults::default())
            && !e.mutation.is_empty()
        {
            injected += 1;
        }
    }
    // The generator must reach the interesting path often enough to be worth running.
    assert!(
        injected > 300,
        "only {injected} of 3000 random pods were injected"
    );
}
