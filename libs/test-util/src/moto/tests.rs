//! Tests for how the moto harness reports a missing Python or a missing moto.

use super::{Error, MotoServer, free_port};

#[test]
fn a_missing_python_is_named() {
    let error = MotoServer::start_on(&["/nonexistent/python3"], free_port().unwrap()).unwrap_err();

    assert!(matches!(error, Error::NoPython(_)), "{error:?}");
    assert!(
        error.to_string().starts_with("python3 not found on PATH"),
        "{error}"
    );
}

#[test]
fn a_missing_moto_says_how_to_install_it() {
    // `-I -S` leave site-packages and PYTHONPATH off the module path, hiding moto as if it
    // were not installed.
    let error = MotoServer::start_on(&["python3", "-I", "-S"], free_port().unwrap()).unwrap_err();

    assert!(matches!(error, Error::NotInstalled { .. }), "{error:?}");
    assert_eq!(
        error.to_string(),
        "moto is not installed: run `cargo xtask ci` or pip install 'moto[server]' \
         (ModuleNotFoundError: No module named 'moto')"
    );
}
