//! Where a sign-in is kept: one file per tenant under the user's config directory (`PCBULK_CONFIG_DIR` overrides it),
//! mode 0600 in a 0700 directory, replaced whole by an atomic rename, renewals serialised across processes by an
//! exclusive lock on a file beside it; and its refresh token in the OS credential store when there is one.
//!
//! The seam is [`CredentialStore`]: the OS store (`os_store`), or in tests one in memory. `login` chooses at run time
//! ([`Store::choose`]): the OS store when it answers a probe, else the file with a one-line warning saying where
//! (a headless server, a container); `PCBULK_CREDENTIAL_STORE=file|os` forces one. Either way the file holds what is
//! not secret (the cloud, the authority, the tenant, the app, the user's name from the ID token) and says where the
//! refresh token is; it holds the refresh token itself only when that is the file. Never an access token or an ID
//! token. A renewal writes the rotated refresh token back to wherever it lives, under the tenant's lock; an OS store
//! that fails then gets the token kept in the file instead (a rotated token must not be lost), with a warning.

use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The version of the file's shape.
const VERSION: u32 = 1;

/// A store of secrets apart from the sign-in's file: the OS credential store, or (in tests) memory. Entries are
/// named by an account (the sign-in file's path, so two config directories never share one). Errors are words
/// without a secret in them.
pub trait CredentialStore: Send + Sync + std::fmt::Debug {
    /// The store in words: "the macOS Keychain".
    fn describe(&self) -> &'static str;
    /// Whether the store can be reached now; why not.
    fn probe(&self) -> Result<(), String>;
    fn get(&self, account: &str) -> Result<Option<Secret>, String>;
    fn set(&self, account: &str, secret: &Secret) -> Result<(), String>;
    /// Answers whether there was an entry.
    fn delete(&self, account: &str) -> Result<bool, String>;
}

/// Where `login` may keep a refresh token: env `PCBULK_CREDENTIAL_STORE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    /// Unset: the OS store when it answers, else the file.
    Auto,
    File,
    Os,
}

/// Where a kept sign-in's refresh token is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeptIn {
    #[default]
    File,
    Os,
}

impl KeptIn {
    fn is_file(&self) -> bool {
        *self == KeptIn::File
    }
}

/// A stored sign-in: what is not secret. The refresh token is read apart ([`Store::load_with_token`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignIn {
    /// `public` or `china`, as `--cloud` says it.
    pub cloud: String,
    pub authority: String,
    pub tenant: String,
    pub client_id: String,
    /// The token audience (the API root of the cloud).
    pub resource: String,
    /// Who signed in, from the ID token's claims (`preferred_username`, `name`), when it had them.
    pub user: Option<String>,
    pub user_name: Option<String>,
    /// Where the refresh token is.
    pub kept_in: KeptIn,
}

impl SignIn {
    /// The command that signs in again to the same tenant and app.
    pub fn login_command(&self) -> String {
        login_command(&self.cloud, &self.authority, &self.tenant, &self.client_id)
    }
}

/// The sign-in authority of a cloud as `--cloud` names it (cli.md; `cli::Cloud` holds the same).
pub fn cloud_authority(cloud: &str) -> &'static str {
    if cloud == "china" { CHINA_AUTHORITY } else { crate::wire::DEFAULT_AUTHORITY }
}

/// The sign-in authority of Partner Center operated by 21Vianet (Microsoft Entra ID operated by 21Vianet).
pub const CHINA_AUTHORITY: &str = "https://login.partner.microsoftonline.cn";

/// `pcbulk login --tenant T --client-id C`, with `--cloud` and `--authority` when they are not the defaults.
pub fn login_command(cloud: &str, authority: &str, tenant: &str, client_id: &str) -> String {
    let mut command = format!("pcbulk login --tenant {tenant} --client-id {client_id}");
    if cloud != "public" {
        command.push_str(&format!(" --cloud {cloud}"));
    }
    if authority.trim_end_matches('/') != cloud_authority(cloud) {
        command.push_str(&format!(" --authority {authority}"));
    }
    command
}

/// The file's shape (the only place a refresh token kept in the file is serialised).
#[derive(Serialize, Deserialize)]
struct Record {
    version: u32,
    cloud: String,
    authority: String,
    tenant: String,
    client_id: String,
    resource: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    user_name: Option<String>,
    /// `os` when the refresh token is in the OS store (absent: in this file).
    #[serde(default, skip_serializing_if = "KeptIn::is_file")]
    refresh_token_in: KeptIn,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "no config directory: set env PCBULK_CONFIG_DIR (or HOME) to the directory where pcbulk may keep its sign-in"
    )]
    NoConfigDir,
    #[error("tenant {0:?}: give the tenant's id (a GUID) or its domain, like contoso.onmicrosoft.com")]
    Tenant(String),
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a pcbulk sign-in ({reason}): remove it with `pcbulk logout` and sign in again")]
    Unreadable { path: PathBuf, reason: String },
    #[error("env PCBULK_CREDENTIAL_STORE: value {0:?}: give file or os, or leave it unset (the OS store, else a file)")]
    Choice(String),
    #[error("env PCBULK_CREDENTIAL_STORE=os, but {0}: unset it to keep the sign-in in a 0600 file")]
    NoOsStore(String),
    #[error("cannot {action} the refresh token in {store}: {reason}")]
    OsStore { store: &'static str, action: &'static str, reason: String },
    #[error("the refresh token is no longer in {store} (removed outside pcbulk)")]
    MissingInOsStore { store: &'static str },
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StoreError + 'a {
    move |source| StoreError::Io { action, path: path.to_path_buf(), source }
}

/// Where `login` will keep the refresh token, and why not in the OS store when not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    pub kept_in: KeptIn,
    /// Why the file, when the OS store was not taken: the line the warning says.
    pub fallback: Option<String>,
}

/// What `save` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Saved {
    pub path: PathBuf,
    pub kept_in: KeptIn,
    /// Why the file, when the OS store was wanted and failed (or was never to be had).
    pub fallback: Option<String>,
}

/// What `remove` removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Removed {
    /// The sign-in's file, when there was one.
    pub file: Option<PathBuf>,
    /// The OS store, when it held the refresh token.
    pub os_store: Option<&'static str>,
    /// The OS store held the refresh token and could not remove it: why.
    pub left_in_os_store: Option<String>,
}

impl Removed {
    pub fn anything(&self) -> bool {
        self.file.is_some() || self.os_store.is_some()
    }
}

/// The sign-ins of this user.
#[derive(Clone, Debug)]
pub struct Store {
    dir: PathBuf,
    os: Option<Arc<dyn CredentialStore>>,
    choice: Choice,
}

/// The lock of one tenant's sign-in, held while it is renewed; released when dropped.
#[derive(Debug)]
pub struct RenewalLock {
    _file: File,
}

impl Store {
    /// The store under `PCBULK_CONFIG_DIR`, else the platform's config directory (`$XDG_CONFIG_HOME/pcbulk` or
    /// `~/.config/pcbulk` on Linux, `~/Library/Application Support/pcbulk` on macOS, `%APPDATA%\pcbulk` on Windows),
    /// with the platform's OS credential store and the choice of `PCBULK_CREDENTIAL_STORE`.
    pub fn locate(environment: &dyn Fn(&str) -> Option<String>) -> Result<Store, StoreError> {
        let base = if let Some(dir) = environment("PCBULK_CONFIG_DIR") {
            PathBuf::from(dir)
        } else if cfg!(windows) {
            PathBuf::from(environment("APPDATA").ok_or(StoreError::NoConfigDir)?).join("pcbulk")
        } else if cfg!(target_os = "macos") {
            PathBuf::from(environment("HOME").ok_or(StoreError::NoConfigDir)?)
                .join("Library/Application Support/pcbulk")
        } else if let Some(xdg) = environment("XDG_CONFIG_HOME") {
            PathBuf::from(xdg).join("pcbulk")
        } else {
            PathBuf::from(environment("HOME").ok_or(StoreError::NoConfigDir)?).join(".config/pcbulk")
        };
        let choice = match environment("PCBULK_CREDENTIAL_STORE").map(|value| value.trim().to_ascii_lowercase()) {
            None => Choice::Auto,
            Some(value) if value == "file" => Choice::File,
            Some(value) if value == "os" => Choice::Os,
            Some(value) => return Err(StoreError::Choice(value)),
        };
        // An absolute directory: the OS store's entries are named by the file's path.
        let dir = std::path::absolute(base.join("sign-ins")).unwrap_or_else(|_| base.join("sign-ins"));
        Ok(Store { dir, os: super::os_store::platform().map(Arc::from), choice })
    }

    /// A store in `dir` with the given OS store (tests: one in memory).
    #[cfg(test)]
    pub(crate) fn with(dir: PathBuf, os: Option<Arc<dyn CredentialStore>>, choice: Choice) -> Store {
        Store { dir, os, choice }
    }

    /// Where a tenant's sign-in is (or would be) kept.
    pub fn path(&self, tenant: &str) -> Result<PathBuf, StoreError> {
        Ok(self.dir.join(format!("{}.json", file_stem(tenant)?)))
    }

    /// Where a kept sign-in's refresh token is, in words for `login`, `whoami` and `logout`.
    pub fn describe(&self, sign_in: &SignIn) -> String {
        let path = self.path(&sign_in.tenant).unwrap_or_default();
        match (sign_in.kept_in, &self.os) {
            (KeptIn::Os, Some(os)) => {
                format!("{} (service \"pcbulk sign-in\", account {})", os.describe(), path.display())
            }
            (KeptIn::Os, None) => "an OS credential store this build cannot reach".into(),
            (KeptIn::File, _) => format!("a file, {} (mode 0600)", path.display()),
        }
    }

    /// Where `login` will keep the refresh token: the OS store when it answers (or when forced), else the file.
    /// Blocking: call before the runtime or off it.
    pub fn choose(&self) -> Result<Placement, StoreError> {
        let file = |why: String| Placement { kept_in: KeptIn::File, fallback: Some(why) };
        match (self.choice, &self.os) {
            (Choice::File, _) => Ok(Placement { kept_in: KeptIn::File, fallback: None }),
            (Choice::Auto, None) => {
                Ok(file("this build of pcbulk has no OS credential store for this platform".into()))
            }
            (Choice::Os, None) => {
                Err(StoreError::NoOsStore("this build has no OS credential store for this platform".into()))
            }
            (choice, Some(os)) => match os.probe() {
                Ok(()) => Ok(Placement { kept_in: KeptIn::Os, fallback: None }),
                Err(reason) if choice == Choice::Os => {
                    Err(StoreError::NoOsStore(format!("{} cannot be reached ({reason})", os.describe())))
                }
                Err(reason) => Ok(file(format!("no OS credential store answered ({}: {reason})", os.describe()))),
            },
        }
    }

    /// Keeps a sign-in and its refresh token where `sign_in.kept_in` says, replacing the tenant's earlier one (and
    /// its refresh token wherever that was). An OS store that fails here leaves the token in the file, unless
    /// `PCBULK_CREDENTIAL_STORE=os` forced it.
    pub fn save(&self, sign_in: &SignIn, refresh_token: &Secret) -> Result<Saved, StoreError> {
        let _lock = self.lock(&sign_in.tenant)?;
        let path = self.path(&sign_in.tenant)?;
        let earlier = read(&path).ok().flatten().map(|(earlier, _)| earlier.kept_in);
        let account = path.display().to_string();
        if sign_in.kept_in == KeptIn::Os
            && let Some(os) = &self.os
        {
            match os.set(&account, refresh_token) {
                Ok(()) => {
                    return match self.write(sign_in, None) {
                        Ok(path) => Ok(Saved { path, kept_in: KeptIn::Os, fallback: None }),
                        Err(error) => {
                            // Best effort: the file failed, so the token must not stay behind alone.
                            let _ = os.delete(&account);
                            Err(error)
                        }
                    };
                }
                Err(reason) if self.choice == Choice::Os => {
                    return Err(StoreError::OsStore { store: os.describe(), action: "keep", reason });
                }
                Err(reason) => {
                    let fallback = Some(format!("{} refused it ({reason})", os.describe()));
                    let file = SignIn { kept_in: KeptIn::File, ..sign_in.clone() };
                    let path = self.write(&file, Some(refresh_token))?;
                    return Ok(Saved { path, kept_in: KeptIn::File, fallback });
                }
            }
        }
        let file = SignIn { kept_in: KeptIn::File, ..sign_in.clone() };
        let path = self.write(&file, Some(refresh_token))?;
        if earlier == Some(KeptIn::Os) {
            self.forget_in_os_store(&account);
        }
        let fallback = (sign_in.kept_in == KeptIn::Os).then(|| "no OS credential store in this build".to_string());
        Ok(Saved { path, kept_in: KeptIn::File, fallback })
    }

    /// The sign-in of a tenant, if one is kept (what is not secret: no call to the OS store).
    pub fn load(&self, tenant: &str) -> Result<Option<SignIn>, StoreError> {
        Ok(read(&self.path(tenant)?)?.map(|(sign_in, _)| sign_in))
    }

    /// The sign-in of a tenant and its refresh token, from wherever it is kept.
    pub fn load_with_token(&self, tenant: &str) -> Result<Option<(SignIn, Secret)>, StoreError> {
        let path = self.path(tenant)?;
        let Some((sign_in, in_file)) = read(&path)? else { return Ok(None) };
        let token = match (sign_in.kept_in, in_file, &self.os) {
            (KeptIn::File, Some(token), _) => token,
            (KeptIn::File, None, _) => {
                return Err(StoreError::Unreadable { path, reason: "it holds no refresh token".into() });
            }
            (KeptIn::Os, _, None) => {
                let reason = "this build has no OS credential store for this platform".into();
                return Err(StoreError::OsStore { store: "the OS credential store", action: "read", reason });
            }
            (KeptIn::Os, _, Some(os)) => match os.get(&path.display().to_string()) {
                Ok(Some(token)) => token,
                Ok(None) => return Err(StoreError::MissingInOsStore { store: os.describe() }),
                Err(reason) => return Err(StoreError::OsStore { store: os.describe(), action: "read", reason }),
            },
        };
        Ok(Some((sign_in, token)))
    }

    /// Every sign-in kept, in the order of their tenants.
    pub fn list(&self) -> Result<Vec<SignIn>, StoreError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(StoreError::Io { action: "read", path: self.dir.clone(), source }),
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|extension| extension == "json"))
            .collect();
        paths.sort();
        let mut sign_ins = Vec::new();
        for path in paths {
            sign_ins.extend(read(&path)?.map(|(sign_in, _)| sign_in));
        }
        Ok(sign_ins)
    }

    /// Forgets a tenant's sign-in: its file, and its entry in the OS store (tried whatever the file says, so an
    /// entry left by an interrupted login goes too).
    pub fn remove(&self, tenant: &str) -> Result<Removed, StoreError> {
        let path = self.path(tenant)?;
        let _lock = self.lock(tenant)?;
        let kept_in = read(&path).ok().flatten().map(|(sign_in, _)| sign_in.kept_in);
        let mut removed = Removed::default();
        match std::fs::remove_file(&path) {
            Ok(()) => removed.file = Some(path.clone()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(StoreError::Io { action: "remove", path, source }),
        }
        if let Some(os) = &self.os
            && (self.choice != Choice::File || kept_in == Some(KeptIn::Os))
        {
            match os.delete(&path.display().to_string()) {
                Ok(true) => removed.os_store = Some(os.describe()),
                Ok(false) => {}
                Err(reason) if kept_in == Some(KeptIn::Os) => removed.left_in_os_store = Some(reason),
                // The file said the token was not there: a store that cannot be reached holds nothing of ours.
                Err(reason) => tracing::debug!(%reason, "the OS credential store was not reached at logout"),
            }
        }
        Ok(removed)
    }

    /// Takes the tenant's renewal lock, waiting while another process holds it (blocking: call off the runtime).
    pub fn lock(&self, tenant: &str) -> Result<RenewalLock, StoreError> {
        self.create_dir()?;
        let path = self.dir.join(format!("{}.lock", file_stem(tenant)?));
        let file = private_options().read(true).write(true).truncate(false).open(&path).map_err(io("open", &path))?;
        file.lock().map_err(io("lock", &path))?;
        Ok(RenewalLock { _file: file })
    }

    /// Replaces the refresh token of a kept sign-in wherever it lives (call with its lock held; blocking). An OS
    /// store that fails gets the token kept in the file instead: answers the warning to say then.
    pub fn replace_refresh_token(&self, tenant: &str, newest: &Secret) -> Result<Option<String>, StoreError> {
        let path = self.path(tenant)?;
        let (sign_in, _) = read(&path)?.ok_or_else(|| StoreError::Unreadable {
            path: path.clone(),
            reason: "it was removed while in use".into(),
        })?;
        if sign_in.kept_in == KeptIn::Os
            && let Some(os) = &self.os
        {
            let Err(reason) = os.set(&path.display().to_string(), newest) else { return Ok(None) };
            let file = SignIn { kept_in: KeptIn::File, ..sign_in };
            self.write(&file, Some(newest))?;
            return Ok(Some(format!(
                "{} failed to keep the rotated refresh token ({reason}): it is now kept in a file, {} (mode 0600)",
                os.describe(),
                path.display()
            )));
        }
        let file = SignIn { kept_in: KeptIn::File, ..sign_in };
        self.write(&file, Some(newest)).map(|_| None)
    }

    /// Best effort: an entry of the OS store that no file names any more.
    fn forget_in_os_store(&self, account: &str) {
        if let Some(os) = &self.os
            && let Err(reason) = os.delete(account)
        {
            tracing::warn!(%reason, store = os.describe(), "an earlier refresh token could not be removed");
        }
    }

    /// Writes the whole file beside its place, flushes it, and renames it into place.
    fn write(&self, sign_in: &SignIn, refresh_token: Option<&Secret>) -> Result<PathBuf, StoreError> {
        self.create_dir()?;
        let path = self.path(&sign_in.tenant)?;
        let record = Record {
            version: VERSION,
            cloud: sign_in.cloud.clone(),
            authority: sign_in.authority.clone(),
            tenant: sign_in.tenant.clone(),
            client_id: sign_in.client_id.clone(),
            resource: sign_in.resource.clone(),
            user: sign_in.user.clone(),
            user_name: sign_in.user_name.clone(),
            refresh_token_in: sign_in.kept_in,
            refresh_token: refresh_token
                .filter(|_| sign_in.kept_in == KeptIn::File)
                .map(|token| token.expose().to_string()),
        };
        let text = serde_json::to_vec_pretty(&record)
            .map_err(|error| StoreError::Unreadable { path: path.clone(), reason: error.to_string() })?;
        let temporary = path.with_extension(format!("json.{}.tmp", std::process::id()));
        let mut file =
            private_options().write(true).truncate(true).open(&temporary).map_err(io("create", &temporary))?;
        file.write_all(&text).map_err(io("write", &temporary))?;
        file.sync_all().map_err(io("flush", &temporary))?;
        std::fs::rename(&temporary, &path).map_err(io("replace", &path))?;
        if let Ok(dir) = File::open(&self.dir) {
            // Best effort: the rename is durable once the directory is flushed; a failure here loses no data.
            let _ = dir.sync_all();
        }
        Ok(path)
    }

    fn create_dir(&self) -> Result<(), StoreError> {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&self.dir).map_err(io("create", &self.dir))
    }
}

fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.create(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// A kept sign-in, and the refresh token when the file holds it.
fn read(path: &Path) -> Result<Option<(SignIn, Option<Secret>)>, StoreError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(StoreError::Io { action: "read", path: path.to_path_buf(), source }),
    };
    let unreadable = |reason: String| StoreError::Unreadable { path: path.to_path_buf(), reason };
    let record: Record = serde_json::from_slice(&bytes).map_err(|error| unreadable(error.to_string()))?;
    if record.version != VERSION {
        return Err(unreadable(format!("version {} where {VERSION} is expected", record.version)));
    }
    let sign_in = SignIn {
        cloud: record.cloud,
        authority: record.authority,
        tenant: record.tenant,
        client_id: record.client_id,
        resource: record.resource,
        user: record.user,
        user_name: record.user_name,
        kept_in: record.refresh_token_in,
    };
    Ok(Some((sign_in, record.refresh_token.map(Secret::new))))
}

/// A tenant as a file name: a GUID or a domain, lower-cased; anything else is refused.
fn file_stem(tenant: &str) -> Result<String, StoreError> {
    let tenant = tenant.trim().to_ascii_lowercase();
    let fits = !tenant.is_empty()
        && !tenant.starts_with('.')
        && tenant.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if fits { Ok(tenant) } else { Err(StoreError::Tenant(tenant)) }
}

#[cfg(test)]
pub(crate) mod memory;
#[cfg(test)]
mod tests;
