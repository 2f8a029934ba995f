//! Where configuration values outside the file come from: the process environment in
//! production, a map in tests.

use std::collections::BTreeMap;
use std::collections::HashMap;

/// A variable whose value is not valid UTF-8 (a secret must never be silently mangled).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} is not valid UTF-8")]
pub struct NotUnicode(pub String);

/// A source of named string values, such as the process environment.
///
/// Tests implement it with a map so that they never mutate the process environment.
pub trait Source: Send + Sync {
    /// Returns the value of `name`, `Ok(None)` when it is unset.
    fn get(&self, name: &str) -> std::result::Result<Option<String>, NotUnicode>;

    /// Returns every `(name, value)` pair whose name starts with `prefix`, sorted by name.
    fn with_prefix(&self, prefix: &str) -> Vec<(String, String)>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

// This is the one place in the workspace allowed to read the process environment.
#[allow(clippy::disallowed_methods)]
impl Source for ProcessEnv {
    fn get(&self, name: &str) -> std::result::Result<Option<String>, NotUnicode> {
        match std::env::var(name) {
            Ok(value) => Ok(Some(value)),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(NotUnicode(name.to_owned())),
        }
    }

    fn with_prefix(&self, prefix: &str) -> Vec<(String, String)> {
        let mut vars: Vec<(String, String)> = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .filter(|(k, _)| k.starts_with(prefix))
            .collect();
        vars.sort();
        vars
    }
}

impl Source for HashMap<String, String> {
    fn get(&self, name: &str) -> std::result::Result<Option<String>, NotUnicode> {
        Ok(HashMap::get(self, name).cloned())
    }

    fn with_prefix(&self, prefix: &str) -> Vec<(String, String)> {
        let sorted: BTreeMap<_, _> = self.iter().filter(|(k, _)| k.starts_with(prefix)).collect();
        sorted
            .into_iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}
