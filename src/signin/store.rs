//! Where a sign-in is kept: one file per tenant under the user's config directory (`PCBULK_CONFIG_DIR` overrides it),
//! mode 0600 in a 0700 directory, replaced whole by an atomic rename, renewals serialised across processes by an
//! exclusive lock on a file beside it.
//!
//! No OS credential store is used: the crates that reach the Secret Service need libdbus headers (a system package),
//! which the build must not need. The file holds only what renewing and `whoami` need: the cloud, the authority, the
//! tenant, the app, the user's name from the ID token, and the refresh token. Never an access token or an ID token.

use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The version of the file's shape.
const VERSION: u32 = 1;

/// A stored sign-in.
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
    pub refresh_token: Secret,
}

impl SignIn {
    /// The command that signs in again to the same tenant and app.
    pub fn login_command(&self) -> String {
        login_command(&self.cloud, &self.authority, &self.tenant, &self.client_id)
    }
}

/// `pcbulk login --tenant T --client-id C`, with `--cloud` and `--authority` when they are not the defaults.
pub fn login_command(cloud: &str, authority: &str, tenant: &str, client_id: &str) -> String {
    let mut command = format!("pcbulk login --tenant {tenant} --client-id {client_id}");
    let cloud_authority =
        if cloud == "china" { "https://login.chinacloudapi.cn" } else { crate::wire::DEFAULT_AUTHORITY };
    if cloud != "public" {
        command.push_str(&format!(" --cloud {cloud}"));
    }
    if authority.trim_end_matches('/') != cloud_authority {
        command.push_str(&format!(" --authority {authority}"));
    }
    command
}

/// The file's shape (the only place the refresh token is serialised).
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
    refresh_token: String,
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
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StoreError + 'a {
    move |source| StoreError::Io { action, path: path.to_path_buf(), source }
}

/// The sign-ins of this user.
#[derive(Clone, Debug)]
pub struct Store {
    dir: PathBuf,
}

/// The lock of one tenant's sign-in, held while it is renewed; released when dropped.
#[derive(Debug)]
pub struct RenewalLock {
    _file: File,
}

impl Store {
    /// The store under `PCBULK_CONFIG_DIR`, else the platform's config directory (`$XDG_CONFIG_HOME/pcbulk` or
    /// `~/.config/pcbulk` on Linux, `~/Library/Application Support/pcbulk` on macOS, `%APPDATA%\pcbulk` on Windows).
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
        Ok(Store { dir: base.join("sign-ins") })
    }

    /// Where a tenant's sign-in is (or would be) kept.
    pub fn path(&self, tenant: &str) -> Result<PathBuf, StoreError> {
        Ok(self.dir.join(format!("{}.json", file_stem(tenant)?)))
    }

    /// Keeps a sign-in, replacing the tenant's earlier one. Answers where it is.
    pub fn save(&self, sign_in: &SignIn) -> Result<PathBuf, StoreError> {
        let _lock = self.lock(&sign_in.tenant)?;
        self.write(sign_in)
    }

    /// The sign-in of a tenant, if one is kept.
    pub fn load(&self, tenant: &str) -> Result<Option<SignIn>, StoreError> {
        read(&self.path(tenant)?)
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
            sign_ins.extend(read(&path)?);
        }
        Ok(sign_ins)
    }

    /// Forgets a tenant's sign-in; answers the file removed, or `None` when there was none.
    pub fn remove(&self, tenant: &str) -> Result<Option<PathBuf>, StoreError> {
        let path = self.path(tenant)?;
        let _lock = self.lock(tenant)?;
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(Some(path)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreError::Io { action: "remove", path, source }),
        }
    }

    /// Takes the tenant's renewal lock, waiting while another process holds it (blocking: call off the runtime).
    pub fn lock(&self, tenant: &str) -> Result<RenewalLock, StoreError> {
        self.create_dir()?;
        let path = self.dir.join(format!("{}.lock", file_stem(tenant)?));
        let file = private_options().read(true).write(true).truncate(false).open(&path).map_err(io("open", &path))?;
        file.lock().map_err(io("lock", &path))?;
        Ok(RenewalLock { _file: file })
    }

    /// Replaces the refresh token of a kept sign-in (call with its lock held).
    pub fn replace_refresh_token(&self, tenant: &str, newest: Secret) -> Result<(), StoreError> {
        let path = self.path(tenant)?;
        let mut sign_in = read(&path)?.ok_or_else(|| StoreError::Unreadable {
            path: path.clone(),
            reason: "it was removed while in use".into(),
        })?;
        sign_in.refresh_token = newest;
        self.write(&sign_in).map(drop)
    }

    /// Writes the whole file beside its place, flushes it, and renames it into place.
    fn write(&self, sign_in: &SignIn) -> Result<PathBuf, StoreError> {
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
            refresh_token: sign_in.refresh_token.expose().to_string(),
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

fn read(path: &Path) -> Result<Option<SignIn>, StoreError> {
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
    Ok(Some(SignIn {
        cloud: record.cloud,
        authority: record.authority,
        tenant: record.tenant,
        client_id: record.client_id,
        resource: record.resource,
        user: record.user,
        user_name: record.user_name,
        refresh_token: Secret::new(record.refresh_token),
    }))
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
mod tests {
    use super::*;

    fn sign_in(tenant: &str) -> SignIn {
        SignIn {
            cloud: "public".into(),
            authority: crate::wire::DEFAULT_AUTHORITY.into(),
            tenant: tenant.into(),
            client_id: "app".into(),
            resource: crate::wire::TOKEN_RESOURCE.into(),
            user: Some("admin@contoso.onmicrosoft.com".into()),
            user_name: None,
            refresh_token: Secret::new("refresh-1"),
        }
    }

    #[test]
    fn a_sign_in_is_kept_replaced_listed_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().display().to_string();
        let store = Store::locate(&|name: &str| (name == "PCBULK_CONFIG_DIR").then(|| root.clone())).unwrap();
        let path = store.save(&sign_in("contoso.onmicrosoft.com")).unwrap();
        assert!(path.starts_with(dir.path()));
        store.replace_refresh_token("Contoso.onmicrosoft.com", Secret::new("refresh-2")).unwrap();
        let kept = store.load("contoso.onmicrosoft.com").unwrap().unwrap();
        assert_eq!(kept.refresh_token, Secret::new("refresh-2"));
        assert_eq!(store.list().unwrap().len(), 1);
        assert_eq!(store.remove("contoso.onmicrosoft.com").unwrap(), Some(path));
        assert_eq!(store.remove("contoso.onmicrosoft.com").unwrap(), None);
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
            login_command("china", "https://login.chinacloudapi.cn", "t", "c"),
            "pcbulk login --tenant t --client-id c --cloud china"
        );
    }
}
