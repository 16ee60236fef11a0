//! `pcbulk login`, `pcbulk whoami`, `pcbulk logout`: the sign-in kept for the API commands, and which kept sign-in a
//! command uses when no other credential is given (`select`).

use super::{Cloud, Environment, Exit};
use crate::auth::{Auth, AuthConfig, Credentials};
use crate::signin::browser::Browser;
use crate::signin::store::{KeptIn, Removed, SignIn, Store};
use crate::signin::{self, LoginConfig};
use anyhow::Context;
use clap::Args;
use std::io::Write;
use std::time::Duration;

/// Sign in as a user of the partner's tenant (App+User), in a browser or with a device code; the sign-in is kept.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The partner's Entra ID tenant: its id or its domain (contoso.onmicrosoft.com).
    #[arg(long)]
    pub tenant: String,
    /// The application (client) id of the partner's app registration (a public client allowed
    /// `http://localhost` as a redirect URI, with the Partner Center API's delegated permission).
    #[arg(long)]
    pub client_id: String,
    /// The Partner Center cloud: sets the sign-in authority and the token audience.
    #[arg(long, env = "PCBULK_CLOUD", value_enum, default_value_t = Cloud::Public)]
    pub cloud: Cloud,
    /// The sign-in authority [default: the cloud's].
    #[arg(long)]
    pub authority: Option<String>,
    /// Sign in with a code entered on another device (for machines without a browser).
    #[arg(long)]
    pub device_code: bool,
    /// Print the sign-in page's address without opening a browser.
    #[arg(long)]
    pub no_browser: bool,
    /// Seconds to wait for the browser's answer.
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    pub wait: u64,
}

/// Who is signed in: cloud, tenant, app, user, where the sign-in is kept, and whether it still works.
#[derive(Debug, Args)]
pub struct WhoamiArgs {
    /// The tenant whose kept sign-in to show (needed when several are kept).
    #[arg(long)]
    pub tenant: Option<String>,
    /// Do not check with the token endpoint that the sign-in still works.
    #[arg(long)]
    pub offline: bool,
}

/// Forget a kept sign-in (every kept one without --tenant).
#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// The tenant whose kept sign-in to forget.
    #[arg(long)]
    pub tenant: Option<String>,
}

pub fn login(args: LoginArgs, environment: Environment) -> anyhow::Result<Exit> {
    let store = Store::locate(environment)?;
    let authority = super::resolve_authority(args.authority.as_deref(), args.cloud)?;
    anyhow::ensure!(args.wait > 0, "--wait: value \"0\": give at least 1 second");
    let config = LoginConfig {
        cloud: cloud_name(args.cloud).to_string(),
        authority,
        tenant: args.tenant.trim().to_string(),
        client_id: args.client_id.trim().to_string(),
        resource: args.cloud.token_resource().to_string(),
        wait: Duration::from_secs(args.wait),
    };
    // Refuse a tenant that cannot be kept, or a credential store that cannot be had, before anyone signs in.
    store.path(&config.tenant)?;
    let placement = store.choose()?;
    let has_display = cfg!(any(windows, target_os = "macos"))
        || environment("DISPLAY").is_some()
        || environment("WAYLAND_DISPLAY").is_some();
    let browser = if args.no_browser || !has_display { Browser::PrintOnly } else { Browser::Open };
    let runtime = super::runtime()?;
    let mut err = std::io::stderr();
    let answer = runtime.block_on(async {
        if args.device_code {
            signin::device::sign_in(&config, &mut err).await
        } else {
            signin::browser::sign_in(&config, browser, &mut err).await
        }
    })?;
    let (sign_in, refresh_token) = signin::finish(&config, answer, placement.kept_in)?;
    let saved = store.save(&sign_in, &refresh_token)?;
    eprintln!(
        "signed in to tenant {} as {} (app {})",
        sign_in.tenant,
        sign_in.user.as_deref().unwrap_or("an unnamed user"),
        sign_in.client_id
    );
    let kept = SignIn { kept_in: saved.kept_in, ..sign_in };
    let file = saved.path.display();
    match (saved.kept_in, saved.fallback.or(placement.fallback)) {
        (KeptIn::Os, _) => eprintln!("the refresh token is kept in {}; the rest in {file}", store.describe(&kept)),
        (KeptIn::File, Some(why)) => eprintln!("warning: the sign-in is kept in a file, {file} (mode 0600): {why}"),
        (KeptIn::File, None) => {
            eprintln!("the sign-in is kept in a file, {file} (mode 0600), as PCBULK_CREDENTIAL_STORE=file asks")
        }
    }
    Ok(Exit::Clean)
}

pub fn whoami(args: WhoamiArgs, environment: Environment) -> anyhow::Result<Exit> {
    let store = Store::locate(environment)?;
    let sign_in = select(&store, args.tenant.as_deref(), None)?;
    let user = match (&sign_in.user, &sign_in.user_name) {
        (Some(user), Some(name)) => format!("{user} ({name})"),
        (Some(user), None) => user.clone(),
        (None, Some(name)) => name.clone(),
        (None, None) => "not named by the sign-in".into(),
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "cloud:     {}", sign_in.cloud)?;
    writeln!(out, "authority: {}", sign_in.authority)?;
    writeln!(out, "tenant:    {}", sign_in.tenant)?;
    writeln!(out, "app:       {}", sign_in.client_id)?;
    writeln!(out, "user:      {user}")?;
    writeln!(out, "kept in:   {}", store.describe(&sign_in))?;
    if args.offline {
        writeln!(out, "works:     not checked (--offline)")?;
        return Ok(Exit::Clean);
    }
    let credentials = Credentials::SignedIn { store, sign_in: sign_in.clone() };
    let config = AuthConfig { resource: sign_in.resource.clone(), ..AuthConfig::default() };
    let runtime = super::runtime()?;
    let checked = runtime.block_on(async { Auth::new(credentials, config)?.token().await.map(drop) });
    match checked {
        Ok(()) => {
            writeln!(out, "works:     yes (the token endpoint issued a token just now)")?;
            Ok(Exit::Clean)
        }
        Err(error) => {
            writeln!(out, "works:     no")?;
            Err(error.into())
        }
    }
}

pub fn logout(args: LogoutArgs, environment: Environment) -> anyhow::Result<Exit> {
    let store = Store::locate(environment)?;
    let tenants: Vec<String> = match &args.tenant {
        Some(tenant) => vec![tenant.trim().to_string()],
        None => store.list()?.into_iter().map(|sign_in| sign_in.tenant).collect(),
    };
    let mut removed = 0;
    for tenant in &tenants {
        let gone = store.remove(tenant)?;
        if let Some(words) = removed_words(&gone) {
            eprintln!("signed out of tenant {tenant}: removed {words}");
            removed += 1;
        }
        if let Some(reason) = &gone.left_in_os_store {
            eprintln!(
                "warning: the refresh token could not be removed from the OS credential store ({reason}): remove the \
                 entry of service \"pcbulk sign-in\", account {}, by hand",
                store.path(tenant)?.display()
            );
        }
    }
    if removed == 0 {
        match &args.tenant {
            Some(tenant) => eprintln!("no sign-in is kept for tenant {tenant}: nothing to remove"),
            None => eprintln!("no sign-in is kept: nothing to remove"),
        }
    }
    Ok(Exit::Clean)
}

/// What `logout` removed, in words: the file, and the refresh token from the OS store.
fn removed_words(removed: &Removed) -> Option<String> {
    let mut places: Vec<String> = removed.file.iter().map(|path| path.display().to_string()).collect();
    places.extend(removed.os_store.map(|store| format!("the refresh token from {store}")));
    (!places.is_empty()).then(|| places.join(" and "))
}

/// The kept sign-in a command uses: the one of `tenant` (of app `client_id` when given), or the only one kept.
pub(crate) fn select(store: &Store, tenant: Option<&str>, client_id: Option<&str>) -> anyhow::Result<SignIn> {
    let sign_in = match tenant {
        Some(tenant) => store.load(tenant)?.with_context(|| {
            let app = client_id.unwrap_or("C");
            format!("no sign-in is kept for tenant {tenant}: sign in with `pcbulk login --tenant {tenant} --client-id {app}`")
        })?,
        None => {
            let mut kept = store.list()?;
            match kept.len() {
                0 => anyhow::bail!(
                    "no credentials: sign in with `pcbulk login --tenant T --client-id C`, or for automation set env \
                     PCBULK_TOKEN (or --token-file FILE), or give --tenant and --client-id with env \
                     PCBULK_REFRESH_TOKEN or PCBULK_CLIENT_SECRET"
                ),
                1 => kept.remove(0),
                _ => {
                    let tenants: Vec<&str> = kept.iter().map(|sign_in| sign_in.tenant.as_str()).collect();
                    anyhow::bail!(
                        "sign-ins are kept for several tenants ({}): say which with --tenant",
                        tenants.join(", ")
                    )
                }
            }
        }
    };
    if let Some(client_id) = client_id
        && client_id.trim() != sign_in.client_id
    {
        anyhow::bail!(
            "the sign-in kept for tenant {} is of app {}, not {client_id}: sign in with `pcbulk login --tenant {} \
             --client-id {client_id}`, or leave --client-id out",
            sign_in.tenant,
            sign_in.client_id,
            sign_in.tenant
        );
    }
    Ok(sign_in)
}

/// Refuses a kept sign-in of another cloud than the command's (`--cloud`, env `PCBULK_CLOUD`): its token would be
/// for another API.
pub(crate) fn same_cloud(sign_in: &SignIn, cloud: Cloud) -> anyhow::Result<()> {
    let wanted = cloud_name(cloud);
    anyhow::ensure!(
        sign_in.cloud == wanted,
        "the sign-in kept for tenant {} is of the {} cloud, not {wanted}: add --cloud {} (or env PCBULK_CLOUD={}), or \
         sign in to the {wanted} cloud with `pcbulk login --tenant {} --client-id {} --cloud {wanted}`",
        sign_in.tenant,
        sign_in.cloud,
        sign_in.cloud,
        sign_in.cloud,
        sign_in.tenant,
        sign_in.client_id
    );
    Ok(())
}

fn cloud_name(cloud: Cloud) -> &'static str {
    match cloud {
        Cloud::Public => "public",
        Cloud::China => "china",
    }
}
