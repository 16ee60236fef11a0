//! Every integration test in one binary (`autotests = false` in Cargo.toml): one link of the crate instead of one per
//! file, so `cargo test --all-targets` after a change to the library builds in about half the time, and the files'
//! tests share one pool of test threads.
//! Each file stays a module of its own, named as before (`cargo test --test all apply::` runs what `--test apply`
//! ran); a file under tests/ that is not listed here fails `every_test_file_is_in_the_binary`.

#[path = "../common/mod.rs"]
mod common;

#[path = "../apply.rs"]
mod apply;
#[path = "../browser.rs"]
mod browser;
#[path = "../crash.rs"]
mod crash;
#[path = "../excel.rs"]
mod excel;
#[path = "../export.rs"]
mod export;
#[path = "../honest.rs"]
mod honest;
#[path = "../login.rs"]
mod login;
#[path = "../net/main.rs"]
mod net;
#[path = "../notify.rs"]
mod notify;
#[path = "../office.rs"]
mod office;
#[path = "../operator.rs"]
mod operator;
#[path = "../pace.rs"]
mod pace;
#[path = "../partner.rs"]
mod partner;
#[path = "../plan.rs"]
mod plan;
#[path = "../preflight.rs"]
mod preflight;
#[path = "../rollback.rs"]
mod rollback;
#[path = "../safety.rs"]
mod safety;
#[path = "../sandbox.rs"]
mod sandbox;
#[path = "../service_facts.rs"]
mod service_facts;
#[path = "../trust.rs"]
mod trust;
#[path = "../validate.rs"]
mod validate;

/// A test file added under tests/ runs only once it is listed above: fail until it is.
#[test]
fn every_test_file_is_in_the_binary() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let this = std::fs::read_to_string(root.join("all/main.rs")).expect("this file");
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(&root).expect("tests/") {
        let path = entry.expect("an entry").path();
        let name = path.file_name().and_then(|name| name.to_str()).unwrap_or_default().to_string();
        let listed = match (path.is_dir(), name.strip_suffix(".rs")) {
            (true, _) if name != "all" && path.join("main.rs").exists() => {
                this.contains(&format!("\"../{name}/main.rs\""))
            }
            (false, Some(_)) => this.contains(&format!("\"../{name}\"")),
            _ => true,
        };
        if !listed {
            missing.push(name);
        }
    }
    assert!(missing.is_empty(), "tests/all/main.rs does not include: {missing:?}");
}
