//! `pcbulk login`, `pcbulk whoami`, `pcbulk logout`: the sign-in kept for the API commands, and which kept sign-in a
//! command uses when no other credential is given (`select`).

use super::{Cloud, Environment, Exit};
use crate::auth::{Auth, AuthConfig, Credentials};
use crate::signin::browser::Browser;
use crate::signin::store::{SignIn, Store};
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

/// The one line said wherever a sign-in is kept, since no OS credential store is used.
fn kept_in(path: &std::path::Path) -> String {
    format!("a file, {} (mode 0600; pcbulk uses no OS credential store)", path.display())
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
    // Refuse a tenant that cannot be kept before anyone signs in.
    store.path(&config.tenant)?;
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
    let sign_in = signin::finish(&config, answer)?;
    let path = store.save(&sign_in)?;
    eprintln!(
        "signed in to tenant {} as {} (app {})",
        sign_in.tenant,
        sign_in.user.as_deref().unwrap_or("an unnamed user"),
        sign_in.client_id
    );
    eprintln!("warning: the sign-in is kept in {}", kept_in(&path));
    Ok(Exit::Clean)
}

pub fn whoami(args: WhoamiArgs, environment: Environment) -> anyhow::Result<Exit> {
    let store = Store::locate(environment)?;
    let sign_in = select(&store, args.tenant.as_deref(), None)?;
    let path = store.path(&sign_in.tenant)?;
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
    writeln!(out, "kept in:   {}", kept_in(&path))?;
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
        if let Some(path) = store.remove(tenant)? {
            eprintln!("signed out of tenant {tenant}: removed {}", path.display());
            removed += 1;
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

fn cloud_name(cloud: Cloud) -> &'static str {
    match cloud {
        Cloud::Public => "public",
        Cloud::China => "china",
    }
}
