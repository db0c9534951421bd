//! Rampart: one binary that puts every layer of web defense in front of an application. This
//! crate wires the layers into the request path (`pipeline`) and runs them; the layers
//! themselves live in their own crates and never depend on this one.
#![forbid(unsafe_code)]

mod acme;
mod admin;
mod auth;
mod demo;
mod events;
mod pipeline;
mod problem;
mod redirect;
mod runtime;
mod serve;
mod tls;
mod waf;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc: the request path allocates small, short-lived buffers on many threads, where
/// glibc's allocator spent a sixth of the CPU in profiles.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "rampart",
    version,
    about = "A security gateway: auth, TLS, firewall, rate limits, WAF, validation and CORS in front of any web app or API."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway in front of a built-in demo app, on embedded defaults.
    Demo {
        /// Public address.
        #[arg(long, default_value = "127.0.0.1:8080")]
        bind: SocketAddr,
        /// Admin address (metrics, health).
        #[arg(long, default_value = "127.0.0.1:9901")]
        admin: SocketAddr,
        /// Access-token lifetime (shorten it, to "20s" say, to watch silent refresh).
        #[arg(long, default_value = "15m")]
        access_ttl: String,
        /// Another origin allowed by the demo API's CORS policy (a SPA dev server); repeatable.
        #[arg(long = "allow-origin")]
        allow_origins: Vec<String>,
    },
    /// Run the gateway.
    Serve {
        /// The config file.
        #[arg(long, short, env = "RAMPART_CONFIG")]
        config: PathBuf,
    },
    /// Check a config file: exit 0, or print every error with its key path and exit 1.
    CheckConfig {
        /// The config file.
        file: PathBuf,
    },
    /// Users of the auth server.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// API keys (shown once at creation, stored hashed).
    Apikey {
        #[command(subcommand)]
        command: ApikeyCommand,
    },
    /// OAuth 2.0 clients of the authorization server.
    Client {
        #[command(subcommand)]
        command: ClientCommand,
    },
    /// Signing keys of the auth server.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// WAF tools.
    Waf {
        #[command(subcommand)]
        command: WafCommand,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Add a user; the password is read from standard input (never from the command line).
    Add {
        /// The config file.
        #[arg(long, short, env = "RAMPART_CONFIG")]
        config: PathBuf,
        /// User name.
        name: String,
    },
    /// List users.
    List {
        /// The config file.
        #[arg(long, short, env = "RAMPART_CONFIG")]
        config: PathBuf,
    },
    /// Disable a user and revoke every one of its sessions.
    Disable {
        /// The config file.
        #[arg(long, short, env = "RAMPART_CONFIG")]
        config: PathBuf,
        /// User name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum ClientCommand {
    /// Register a client; prints its id, and its secret once (confidential clients).
    Add {
        /// The config file.
        #[arg(long, short, env = "RAMPART_CONFIG")]
        config: PathBuf,
        /// Display name, shown on the consent page.
        name: String,
        /// An exact redirect URI (repeatable): https, or http on a loopback host.
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// A scope the client may ask for (repeatable); `openid` for ID tokens.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// A grant type (repeatable): authorization_code, refresh_token, client_credentials.
        /// Default: authorization_code and refresh_token.
        #[arg(long = "grant")]
        grants: Vec<String>,
        /// A public client (browser or native app): no secret, PKCE only.
        #[arg(long)]
        public: bool,
    },
    /// List clients (never secrets).
    List {
        /// The config file.
        #[arg(long, short, env = "RAMPART_CONFIG")]
        config: PathBuf,
    },
    /// Remove a client and its pending codes.
    Remove {
        /// The config file.
        #[arg(long, short, env = "RAMPART_CONFIG")]
        config: PathBuf,
        /// Client id.
        client_id: String,
    },
}

#[derive(Debug, Subcommand)]
enum ApikeyCommand {
    /// Create a key and print it once.
    Create {
        /// The config file.
        #[arg(long, short, env = "RAMPART_CONFIG")]
        config: PathBuf,
        /// A label for the key.
        name: String,
        /// A scope the key grants (repeatable).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Who the key belongs to (forwarded as the subject).
        #[arg(long)]
        owner: Option<String>,
        /// Lifetime, like "90d".
        #[arg(long)]
        expires: Option<String>,
    },
    /// List keys (prefixes, never secrets).
    List {
        /// The config file.
        #[arg(long, short, env = "RAMPART_CONFIG")]
        config: PathBuf,
    },
    /// Revoke a key by id or prefix; effective at once on every node.
    Revoke {
        /// The config file.
        #[arg(long, short, env = "RAMPART_CONFIG")]
        config: PathBuf,
        /// Key id or prefix.
        key: String,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// List signing keys.
    List {
        /// The config file.
        #[arg(long, short, env = "RAMPART_CONFIG")]
        config: PathBuf,
    },
    /// Make a new signing key: published in the JWKS at once, signing after a short delay;
    /// old keys keep verifying until their tokens have expired.
    Rotate {
        /// The config file.
        #[arg(long, short, env = "RAMPART_CONFIG")]
        config: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum WafCommand {
    /// Parse rule files (globs allowed) and report every error with file, line and rule id.
    Check {
        /// Rule files, in load order.
        #[arg(required = true)]
        rules: Vec<PathBuf>,
    },
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RAMPART_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(1)
        .thread_name("rampart")
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { file } => check_config(&file),
        Command::User { command } => finish(admin_command(Admin::User(command))),
        Command::Keys { command } => finish(admin_command(Admin::Keys(command))),
        Command::Apikey { command } => finish(admin_command(Admin::Apikey(command))),
        Command::Client { command } => finish(admin_command(Admin::Client(command))),
        Command::Waf {
            command: WafCommand::Check { rules },
        } => {
            let errors = rampart_waf::check(&rules);
            for e in &errors {
                eprintln!("{e}");
            }
            if errors.is_empty() {
                println!("{} file argument(s): ok", rules.len());
                ExitCode::SUCCESS
            } else {
                eprintln!("{} error(s)", errors.len());
                ExitCode::FAILURE
            }
        }
        Command::Serve { config } => {
            init_tracing();
            let result = rampart_config::load(&config)
                .map_err(|e| e.to_string())
                .and_then(|cfg| runtime()?.block_on(serve::run(cfg, |_| {})));
            finish(result)
        }
        Command::Demo {
            bind,
            admin,
            access_ttl,
            allow_origins,
        } => {
            init_tracing();
            finish(run_demo(demo::DemoOptions {
                bind,
                admin,
                access_ttl,
                allow_origins,
            }))
        }
    }
}

enum Admin {
    User(UserCommand),
    Keys(KeysCommand),
    Apikey(ApikeyCommand),
    Client(ClientCommand),
}

/// Commands that change the store: they open it as the gateway does, so running nodes see
/// the change (revocations are published through the shared store when one is configured).
fn admin_command(cmd: Admin) -> Result<(), String> {
    let config_path = match &cmd {
        Admin::User(
            UserCommand::Add { config, .. }
            | UserCommand::List { config }
            | UserCommand::Disable { config, .. },
        ) => config,
        Admin::Keys(KeysCommand::List { config } | KeysCommand::Rotate { config }) => config,
        Admin::Apikey(
            ApikeyCommand::Create { config, .. }
            | ApikeyCommand::List { config }
            | ApikeyCommand::Revoke { config, .. },
        ) => config,
        Admin::Client(
            ClientCommand::Add { config, .. }
            | ClientCommand::List { config }
            | ClientCommand::Remove { config, .. },
        ) => config,
    };
    let config = rampart_config::load(config_path).map_err(|e| e.to_string())?;
    runtime()?.block_on(async move {
        let server = auth::AuthServer::open(&config)
            .await?
            .ok_or("the config has no [auth] section")?;
        if config.shared.url.starts_with("redis://") {
            // Publish revocations to running nodes.
            if let Ok(r) = rampart_auth::redis_sync::RedisRevocations::new(&config.shared.url) {
                server.svc.set_revocation_sink(std::sync::Arc::new(r));
            }
        }
        let svc = &server.svc;
        match cmd {
            Admin::User(UserCommand::Add { name, .. }) => {
                let mut password = String::new();
                std::io::stdin()
                    .read_line(&mut password)
                    .map_err(|e| format!("reading the password: {e}"))?;
                let password = password.trim_end_matches(['\r', '\n']);
                let user = svc
                    .add_user(&name, password)
                    .await
                    .map_err(|e| format!("user add: {e}"))?;
                println!("added user {} ({})", user.username, user.id);
            }
            Admin::User(UserCommand::List { .. }) => {
                for u in svc.list_users().await.map_err(|e| e.to_string())? {
                    println!(
                        "{}\t{}\t{}",
                        u.username,
                        u.id,
                        if u.disabled { "disabled" } else { "active" }
                    );
                }
            }
            Admin::User(UserCommand::Disable { name, .. }) => {
                let sids = svc
                    .disable_user(&name)
                    .await
                    .map_err(|e| format!("user disable: {e}"))?;
                println!("disabled {name}; revoked {} session(s)", sids.len());
            }
            Admin::Apikey(ApikeyCommand::Create {
                name,
                scopes,
                owner,
                expires,
                ..
            }) => {
                let expires_at = match expires {
                    Some(d) => {
                        let d: rampart_config::DurationStr =
                            d.parse().map_err(|e| format!("--expires: {e}"))?;
                        let now = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .unwrap_or_default();
                        Some((now + d.get()).as_secs() as i64)
                    }
                    None => None,
                };
                let created = svc
                    .create_api_key(&name, owner.as_deref(), &scopes, expires_at)
                    .await
                    .map_err(|e| format!("apikey create: {e}"))?;
                eprintln!(
                    "API key {} created; it is shown once:",
                    created.record.prefix
                );
                println!("{}", created.key);
            }
            Admin::Apikey(ApikeyCommand::List { .. }) => {
                for k in svc.list_api_keys().await.map_err(|e| e.to_string())? {
                    println!("{}\t{}\t{}\t{}", k.prefix, k.id, k.name, k.scopes.join(" "));
                }
            }
            Admin::Apikey(ApikeyCommand::Revoke { key, .. }) => {
                svc.revoke_api_key(&key)
                    .await
                    .map_err(|e| format!("apikey revoke: {e}"))?;
                println!("revoked {key}");
            }
            Admin::Client(ClientCommand::Add {
                name,
                redirect_uris,
                scopes,
                grants,
                public,
                ..
            }) => {
                let oauth = rampart_oauth::OAuthServer::new(std::sync::Arc::clone(svc));
                let (client, secret) = oauth
                    .add_client(rampart_oauth::NewClient {
                        name,
                        redirect_uris,
                        scopes,
                        grant_types: grants,
                        public,
                    })
                    .await
                    .map_err(|e| format!("client add: {}", e.description))?;
                println!("client_id: {}", client.client_id);
                if let Some(secret) = secret {
                    eprintln!("the client secret is shown once:");
                    println!("client_secret: {secret}");
                }
            }
            Admin::Client(ClientCommand::List { .. }) => {
                for c in svc
                    .store()
                    .list_clients()
                    .await
                    .map_err(|e| e.to_string())?
                {
                    println!(
                        "{}\t{}\t{}\t{}\t{}\t{}",
                        c.client_id,
                        c.name,
                        if c.secret_hash.is_some() {
                            "confidential"
                        } else {
                            "public"
                        },
                        c.grant_types.join(","),
                        c.scopes.join(" "),
                        c.redirect_uris.join(" ")
                    );
                }
            }
            Admin::Client(ClientCommand::Remove { client_id, .. }) => {
                let removed = svc
                    .store()
                    .delete_client(&client_id)
                    .await
                    .map_err(|e| format!("client remove: {e}"))?;
                if !removed {
                    return Err(format!("client remove: no client {client_id}"));
                }
                println!("removed {client_id}");
            }
            Admin::Keys(KeysCommand::List { .. }) => {
                for k in svc.list_keys() {
                    println!("{k:?}");
                }
            }
            Admin::Keys(KeysCommand::Rotate { .. }) => {
                let k = svc
                    .rotate_keys(None)
                    .await
                    .map_err(|e| format!("keys rotate: {e}"))?;
                println!("new signing key {k:?}");
            }
        }
        Ok(())
    })
}

fn finish(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rampart: {e}");
            ExitCode::FAILURE
        }
    }
}

fn check_config(file: &std::path::Path) -> ExitCode {
    match rampart_config::load(file) {
        Ok(cfg) => {
            let tls = acme::AcmeSet::new(&cfg)
                .map_err(|e| vec![e])
                .and_then(|a| tls::build_all(&cfg, &a));
            if let Err(errors) = runtime::Runtime::build(cfg.clone(), 1).and(tls) {
                for e in &errors {
                    eprintln!("{e}");
                }
                eprintln!("{}: {} error(s)", file.display(), errors.len());
                return ExitCode::FAILURE;
            }
            for w in cfg.warnings() {
                println!("warning: {w}");
            }
            println!(
                "{}: ok ({} listener(s), {} route(s))",
                file.display(),
                cfg.listener.len(),
                cfg.route.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            for err in &e.errors {
                eprintln!("{err}");
            }
            eprintln!("{}: {} error(s)", file.display(), e.errors.len());
            ExitCode::FAILURE
        }
    }
}

fn run_demo(opts: demo::DemoOptions) -> Result<(), String> {
    let dir = tempfile::Builder::new()
        .prefix("rampart-demo-")
        .tempdir()
        .map_err(|e| format!("temp dir: {e}"))?;
    let rt = runtime()?;
    let mut opts = opts;
    if opts.bind.port() == 0 {
        // The issuer names the port, so pick it before the config is written.
        let probe = std::net::TcpListener::bind(opts.bind)
            .map_err(|e| format!("cannot bind {}: {e}", opts.bind))?;
        opts.bind = probe.local_addr().map_err(|e| e.to_string())?;
    }
    rt.block_on(async {
        let app = demo::start_app().await?;
        let path = dir.path().join("rampart.toml");
        std::fs::write(&path, demo::config_text(&opts, opts.bind.port(), app))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let config = rampart_config::load(&path).map_err(|e| e.to_string())?;
        // A demo user with a fresh password, shown once.
        let password = {
            let server = auth::AuthServer::open(&config)
                .await?
                .ok_or("the demo config has no [auth] section")?;
            let password = demo::generate_password()?;
            server
                .svc
                .add_user("demo", &password)
                .await
                .map_err(|e| format!("demo user: {e}"))?;
            password
        };
        serve::run(config, |bound| {
            let public = bound
                .iter()
                .find(|(n, _)| n == "public")
                .map(|(_, a)| *a)
                .unwrap_or(opts.bind);
            let admin = bound
                .iter()
                .find(|(n, _)| n == "admin")
                .map(|(_, a)| *a)
                .unwrap_or(opts.admin);
            let port = public.port();
            eprintln!(
                "\nRampart demo is running.\n\
                 \x20 open    http://localhost:{port}/   sign in as  demo / {password}\n\
                 \x20         (the password is shown only now; the user lives in the demo's temp folder)\n\
                 \x20 tour    http://localhost:{port}/tour   security headers, WAF, allow_from, errors\n\
                 \x20 try     curl -i http://{public}/echo\n\
                 \x20         curl -i http://{public}/api/hello   (401: needs an access token)\n\
                 \x20         curl -i http://{public}/admin/     (403: allow_from 10.0.0.0/8)\n\
                 \x20 admin   http://{admin}/metrics   /healthz   /readyz\n\
                 \x20 config  {}   (edit and save: changes apply live)\n\
                 \x20 Events follow, one JSON line each. Ctrl-C stops.\n",
                path.display()
            );
        })
        .await
    })
}
