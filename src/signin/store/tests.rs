//! The sign-in store's unit tests: the file alone, and the seam to the OS store with one in memory that can be made
//! unreachable or made to fail at a given call (selection, rotation, logout removing both, failures mid-way).

use super::memory::Memory;
use super::*;
use std::sync::atomic::Ordering;

struct Setup {
    _dir: tempfile::TempDir,
    root: PathBuf,
    memory: Arc<Memory>,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("sign-ins");
        Setup { _dir: dir, root, memory: Arc::new(Memory::default()) }
    }

    fn store(&self, choice: Choice) -> Store {
        Store::with(self.root.clone(), Some(self.memory.clone() as Arc<dyn CredentialStore>), choice)
    }

    fn file(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.root.join("contoso.onmicrosoft.com.json")).unwrap()).unwrap()
    }
}

const TENANT: &str = "contoso.onmicrosoft.com";

fn sign_in(kept_in: KeptIn) -> SignIn {
    SignIn {
        cloud: "public".into(),
        authority: crate::wire::DEFAULT_AUTHORITY.into(),
        tenant: TENANT.into(),
        client_id: "app".into(),
        resource: crate::wire::TOKEN_RESOURCE.into(),
        user: Some("admin@contoso.onmicrosoft.com".into()),
        user_name: None,
        kept_in,
    }
}

fn token(store: &Store) -> Secret {
    store.load_with_token(TENANT).unwrap().unwrap().1
}

#[test]
fn a_sign_in_is_kept_replaced_listed_and_removed_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().display().to_string();
    let environment = |name: &str| match name {
        "PCBULK_CONFIG_DIR" => Some(root.clone()),
        "PCBULK_CREDENTIAL_STORE" => Some("file".into()),
        _ => None,
    };
    let store = Store::locate(&environment).unwrap();
    assert_eq!(store.choose().unwrap(), Placement { kept_in: KeptIn::File, fallback: None });
    let saved = store.save(&sign_in(KeptIn::File), &Secret::new("refresh-1")).unwrap();
    assert!(saved.path.starts_with(dir.path()));
    store.replace_refresh_token("Contoso.onmicrosoft.com", &Secret::new("refresh-2")).unwrap();
    assert_eq!(token(&store), Secret::new("refresh-2"));
    assert_eq!(store.list().unwrap().len(), 1);
    assert_eq!(store.remove(TENANT).unwrap().file, Some(saved.path));
    assert!(!store.remove(TENANT).unwrap().anything());
}

#[test]
fn the_os_store_is_chosen_when_it_answers_and_the_file_then_holds_no_secret() {
    let setup = Setup::new();
    let store = setup.store(Choice::Auto);
    let placement = store.choose().unwrap();
    assert_eq!(placement, Placement { kept_in: KeptIn::Os, fallback: None });
    let saved = store.save(&sign_in(placement.kept_in), &Secret::new("refresh-1")).unwrap();
    assert_eq!(saved.kept_in, KeptIn::Os);
    let file = setup.file();
    assert_eq!(file["refresh_token_in"], "os");
    assert!(file.get("refresh_token").is_none(), "the file holds no refresh token: {file}");
    assert_eq!(setup.memory.entries().get(&saved.path.display().to_string()).map(String::as_str), Some("refresh-1"));
    assert_eq!(token(&store), Secret::new("refresh-1"));
    assert_eq!(store.load(TENANT).unwrap().unwrap().kept_in, KeptIn::Os);
    assert!(store.describe(&sign_in(KeptIn::Os)).starts_with("the test's store (service \"pcbulk sign-in\""));
}

#[test]
fn an_unreachable_os_store_falls_back_to_the_file_with_the_reason() {
    let setup = Setup::new();
    setup.memory.unreachable.store(true, Ordering::SeqCst);
    let placement = setup.store(Choice::Auto).choose().unwrap();
    assert_eq!(placement.kept_in, KeptIn::File);
    assert_eq!(
        placement.fallback.as_deref(),
        Some("no OS credential store answered (the test's store: no session bus)")
    );
    let store = setup.store(Choice::Auto);
    store.save(&sign_in(placement.kept_in), &Secret::new("refresh-1")).unwrap();
    assert_eq!(setup.file()["refresh_token"], "refresh-1");
    assert!(setup.file().get("refresh_token_in").is_none());

    // Forced: the OS store or nothing; the file even when the OS store answers.
    let forced = setup.store(Choice::Os).choose().unwrap_err().to_string();
    assert!(forced.contains("PCBULK_CREDENTIAL_STORE=os, but the test's store cannot be reached (no session bus)"));
    setup.memory.unreachable.store(false, Ordering::SeqCst);
    assert_eq!(setup.store(Choice::File).choose().unwrap(), Placement { kept_in: KeptIn::File, fallback: None });
    let no_os = Store::with(setup.root.clone(), None, Choice::Auto).choose().unwrap();
    assert_eq!(no_os.kept_in, KeptIn::File);
    assert!(Store::with(setup.root.clone(), None, Choice::Os).choose().is_err());
}

#[test]
fn the_choice_is_read_from_the_environment_and_a_wrong_one_is_named() {
    let choice = |value: &'static str| {
        Store::locate(&|name: &str| match name {
            "PCBULK_CONFIG_DIR" => Some("/tmp/pcbulk-test".into()),
            "PCBULK_CREDENTIAL_STORE" => Some(value.into()),
            _ => None,
        })
        .map(|store| store.choice)
    };
    assert_eq!(choice("file").unwrap(), Choice::File);
    assert_eq!(choice(" OS ").unwrap(), Choice::Os);
    let wrong = choice("keychain").unwrap_err().to_string();
    assert!(wrong.starts_with("env PCBULK_CREDENTIAL_STORE: value \"keychain\": give file or os"), "{wrong}");
}

#[test]
fn rotation_writes_the_new_token_where_it_lives() {
    let setup = Setup::new();
    let store = setup.store(Choice::Auto);
    store.save(&sign_in(KeptIn::Os), &Secret::new("refresh-1")).unwrap();
    let before = setup.file();
    assert_eq!(store.replace_refresh_token(TENANT, &Secret::new("refresh-2")).unwrap(), None);
    assert_eq!(token(&store), Secret::new("refresh-2"));
    assert_eq!(setup.file(), before, "the file is not touched: the token lives in the OS store");

    // Signed in again with the file forced: the token moves, and the OS store's entry goes.
    let file_store = setup.store(Choice::File);
    file_store.save(&sign_in(KeptIn::File), &Secret::new("refresh-3")).unwrap();
    assert!(setup.memory.entries().is_empty(), "the earlier entry of the OS store is removed");
    file_store.replace_refresh_token(TENANT, &Secret::new("refresh-4")).unwrap();
    assert_eq!(setup.file()["refresh_token"], "refresh-4");
}

#[test]
fn an_os_store_that_fails_mid_way_loses_no_rotated_token() {
    let setup = Setup::new();
    let store = setup.store(Choice::Auto);
    store.save(&sign_in(KeptIn::Os), &Secret::new("refresh-1")).unwrap();
    // From the next call on, every write to the OS store fails.
    *setup.memory.fail_sets_from.lock().unwrap() = Some(1);
    let warning = store.replace_refresh_token(TENANT, &Secret::new("refresh-2")).unwrap().expect("a warning");
    assert!(warning.starts_with("the test's store failed to keep the rotated refresh token (the store broke)"));
    assert!(warning.contains("it is now kept in a file"), "{warning}");
    assert_eq!(setup.file()["refresh_token"], "refresh-2");
    assert_eq!(store.load(TENANT).unwrap().unwrap().kept_in, KeptIn::File);
    assert_eq!(token(&store), Secret::new("refresh-2"), "the file's token is read from now on");
}

#[test]
fn an_os_store_that_refuses_the_first_write_leaves_the_sign_in_in_the_file_unless_forced() {
    let setup = Setup::new();
    *setup.memory.fail_sets_from.lock().unwrap() = Some(0);
    let saved = setup.store(Choice::Auto).save(&sign_in(KeptIn::Os), &Secret::new("refresh-1")).unwrap();
    assert_eq!(saved.kept_in, KeptIn::File);
    assert_eq!(saved.fallback.as_deref(), Some("the test's store refused it (the store broke)"));
    assert_eq!(setup.file()["refresh_token"], "refresh-1");

    let forced = setup.store(Choice::Os).save(&sign_in(KeptIn::Os), &Secret::new("refresh-9")).unwrap_err();
    assert_eq!(forced.to_string(), "cannot keep the refresh token in the test's store: the store broke");
    assert_eq!(setup.file()["refresh_token"], "refresh-1", "the earlier sign-in is left as it was");
}

#[test]
fn a_token_the_os_store_cannot_give_is_an_error_that_names_the_store() {
    let setup = Setup::new();
    let store = setup.store(Choice::Auto);
    let saved = store.save(&sign_in(KeptIn::Os), &Secret::new("refresh-1")).unwrap();
    setup.memory.fail_gets.store(true, Ordering::SeqCst);
    let locked = store.load_with_token(TENANT).unwrap_err().to_string();
    assert_eq!(locked, "cannot read the refresh token in the test's store: the keyring is locked");
    assert_eq!(store.load(TENANT).unwrap().unwrap().user.as_deref(), Some("admin@contoso.onmicrosoft.com"));
    setup.memory.fail_gets.store(false, Ordering::SeqCst);
    setup.memory.entries.lock().unwrap().remove(&saved.path.display().to_string());
    let gone = store.load_with_token(TENANT).unwrap_err().to_string();
    assert_eq!(gone, "the refresh token is no longer in the test's store (removed outside pcbulk)");
}

#[test]
fn logout_removes_the_file_and_the_os_store_entry() {
    let setup = Setup::new();
    let store = setup.store(Choice::Auto);
    let saved = store.save(&sign_in(KeptIn::Os), &Secret::new("refresh-1")).unwrap();
    let removed = store.remove(TENANT).unwrap();
    assert_eq!(removed, Removed { file: Some(saved.path), os_store: Some("the test's store"), left_in_os_store: None });
    assert!(setup.memory.entries().is_empty());
    assert!(store.load(TENANT).unwrap().is_none());

    // An entry left behind without a file (a login interrupted between the two) goes too.
    setup.memory.entries.lock().unwrap().insert(store.path(TENANT).unwrap().display().to_string(), "x".into());
    assert_eq!(store.remove(TENANT).unwrap().os_store, Some("the test's store"));

    // The OS store unreachable at logout: the file goes, and what is left behind is said.
    store.save(&sign_in(KeptIn::Os), &Secret::new("refresh-2")).unwrap();
    setup.memory.unreachable.store(true, Ordering::SeqCst);
    let removed = store.remove(TENANT).unwrap();
    assert!(removed.file.is_some());
    assert_eq!(removed.left_in_os_store.as_deref(), Some("no session bus"));
}

#[test]
fn a_tenant_that_is_not_a_name_is_refused() {
    assert!(file_stem("../etc").is_err());
    assert!(file_stem("a/b").is_err());
    assert_eq!(file_stem(" Contoso.onmicrosoft.com ").unwrap(), "contoso.onmicrosoft.com");
}

#[test]
fn the_login_command_names_only_what_is_not_the_default() {
    assert_eq!(
        login_command("public", crate::wire::DEFAULT_AUTHORITY, "t", "c"),
        "pcbulk login --tenant t --client-id c"
    );
    assert_eq!(
        login_command("public", "http://127.0.0.1:9", "t", "c"),
        "pcbulk login --tenant t --client-id c --authority http://127.0.0.1:9"
    );
    assert_eq!(
        login_command("china", CHINA_AUTHORITY, "t", "c"),
        "pcbulk login --tenant t --client-id c --cloud china"
    );
    assert_eq!(
        login_command("china", "http://127.0.0.1:9", "t", "c"),
        "pcbulk login --tenant t --client-id c --cloud china --authority http://127.0.0.1:9"
    );
}
