//! The command line. Each command prints JSON on stdout; bad input gets one line on
//! stderr and a non-zero exit.

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::json;

use crate::admin::{self, ClientChanges, IssueToken, NewClient, NewUser};
use crate::audit::{self, Event, EventType};
use crate::config::{Config, ConfigError, LogConfig, Overrides};
use crate::secret::{Password, RawToken};
use crate::service::{self, open_store};
use crate::store::{EventQuery, Store};
use crate::token::jwt::KeySet;
use crate::token::mint::TokenFormat;
use crate::token::now;
use crate::vocabulary::TokenUse;

#[derive(Debug, Parser)]
#[command(
    name = "introspectd",
    version,
    about = "OAuth 2.0 token introspection service"
)]
pub struct Cli {
    /// TOML configuration file [default: config/introspectd.toml when it exists]
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Socket address to listen on (overrides `listen`)
    #[arg(long, global = true, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Issuer URL (overrides `issuer`)
    #[arg(long, global = true, value_name = "URL")]
    pub issuer: Option<String>,
    /// Database URL, sqlite://… or postgres://… (overrides `database_url`)
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (the default); applies pending migrations first
    Serve,
    /// Apply pending migrations and exit
    Migrate,
    /// Manage registered clients
    #[command(subcommand)]
    Client(ClientCommand),
    /// Manage the local users who sign in to authorize clients
    #[command(subcommand)]
    User(UserCommand),
    /// Mint and revoke tokens
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage the generated signing keys published at /jwks (rotate, promote, list, remove)
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The audit trail, oldest first, one JSON object a line
    Events(EventsArgs),
    /// Exit 0 when the server on the configured listen address answers GET /healthz
    Healthcheck,
}

impl Command {
    /// Whether the command opens the database (every one but `serve`, which logs it, and
    /// `healthcheck`).
    fn uses_store(&self) -> bool {
        !matches!(self, Command::Serve | Command::Healthcheck)
    }

    /// Whether the command only reads: it must never create a database.
    fn only_reads(&self) -> bool {
        matches!(
            self,
            Command::Client(ClientCommand::List | ClientCommand::Show { .. })
                | Command::User(UserCommand::List | UserCommand::Show { .. })
                | Command::Keys(KeysCommand::List)
                | Command::Events(_)
        )
    }
}

// Generated ids, kids and opaque tokens are base64url and may begin with '-', so the
// positional arguments that take them accept leading hyphens.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate a new Ed25519 key: published in /jwks at once, it signs after jwt.rotation_delay_seconds (or when promoted); older keys keep verifying
    Rotate,
    /// Make the key waiting after `keys rotate` sign now; running servers sign with it from their next request on
    Promote {
        #[arg(allow_hyphen_values = true)]
        kid: String,
    },
    /// List generated keys with their state (signing, next, retired) and activation time, latest first
    List,
    /// Remove a generated key; tokens it signed read inactive from the servers' next request on
    Remove {
        #[arg(allow_hyphen_values = true)]
        kid: String,
    },
    /// Re-encrypt every stored private key and the sign-in key under the key-encryption key in variable NAME, in one transaction; then switch jwt.key_encryption_key_env to NAME on every instance
    Reseal {
        /// The environment variable holding the new key-encryption key (32 random bytes, base64 or hex)
        #[arg(long, value_name = "NAME")]
        new_key_env: String,
        /// For a lost key-encryption key: delete the keys it sealed (every token they signed reads inactive, every sign-in session ends) and generate a signing key that signs at once
        #[arg(long)]
        discard_unreadable: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client; prints its id and its secret, which is shown only this once
    Create(CreateClient),
    /// Change a client in place: each flag given replaces that attribute, each one omitted keeps it; an empty value (`--scope ""`, `--resource ""`) clears it
    Update(UpdateClient),
    /// List every client
    List,
    /// Show one client
    Show {
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
    /// Give a client a new secret; the old one keeps working for --grace seconds (default 0: it stops at once)
    RotateSecret {
        #[arg(allow_hyphen_values = true)]
        client_id: String,
        /// Seconds the old secret keeps working, while the new one is deployed
        #[arg(long, value_name = "SECONDS", default_value_t = 0)]
        grace: u64,
    },
    /// Replace a private_key_jwt client's public JWK Set; assertions signed by keys no longer in it fail at once
    SetJwks {
        #[arg(allow_hyphen_values = true)]
        client_id: String,
        #[command(flatten)]
        jwks: JwksArgs,
    },
    /// Stop a client from authenticating; its tokens read inactive
    Disable {
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
    /// Let a disabled client authenticate again, from every instance's next request on
    Enable {
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
    /// Delete a client and the opaque tokens it holds
    Delete {
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Only events since then: a duration back from now (90s, 15m, 12h, 7d) or an RFC 3339 time
    #[arg(long, value_name = "DURATION|TIME")]
    since: Option<String>,
    /// Only events of this type (signin.failed, client.updated, …); repeatable
    #[arg(long = "type", value_name = "T")]
    types: Vec<String>,
    /// Only events of this client
    #[arg(long, allow_hyphen_values = true)]
    client_id: Option<String>,
    /// Only events of this user, by id or username
    #[arg(long, value_name = "ID|USERNAME", allow_hyphen_values = true)]
    user: Option<String>,
    /// Keep printing events as they are recorded, until interrupted
    #[arg(long)]
    follow: bool,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Register a user; prints its id and, unless --password-stdin is given, a generated password shown only this once
    Create(CreateUser),
    /// List every user
    List,
    /// Show one user, by id or username
    Show {
        #[arg(allow_hyphen_values = true, value_name = "ID|USERNAME")]
        user: String,
    },
    /// Give a user a new password (generated and shown once unless --password-stdin); signs the user out everywhere
    SetPassword {
        #[arg(allow_hyphen_values = true, value_name = "ID|USERNAME")]
        user: String,
        /// Read the password from the first line of stdin
        #[arg(long)]
        password_stdin: bool,
    },
    /// Stop a user from signing in; ends their sessions and revokes every token issued to them
    Disable {
        #[arg(allow_hyphen_values = true, value_name = "ID|USERNAME")]
        user: String,
    },
    /// Let a disabled user sign in again (tokens revoked by the disable stay revoked)
    Enable {
        #[arg(allow_hyphen_values = true, value_name = "ID|USERNAME")]
        user: String,
    },
    /// Delete a user with their sessions and consents; every token issued to them reads inactive
    Delete {
        #[arg(allow_hyphen_values = true, value_name = "ID|USERNAME")]
        user: String,
    },
    /// Forget what a user allowed a client (or every client) and revoke the tokens it was given
    RevokeConsent {
        #[arg(allow_hyphen_values = true, value_name = "ID|USERNAME")]
        user: String,
        #[arg(long, allow_hyphen_values = true)]
        client_id: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct CreateUser {
    /// 1 to 64 characters of a-z, 0-9 and . _ @ + - (stored lower-cased)
    #[arg(long)]
    pub username: String,
    #[arg(long)]
    pub email: Option<String>,
    /// The user's display name
    #[arg(long)]
    pub name: Option<String>,
    /// Read the password from the first line of stdin
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Args)]
pub struct CreateClient {
    #[arg(long)]
    pub name: String,
    #[command(flatten)]
    pub policy: PolicyArgs,
    #[command(flatten)]
    pub jwks: JwksArgs,
}

#[derive(Debug, Args)]
pub struct UpdateClient {
    #[arg(allow_hyphen_values = true)]
    pub client_id: String,
    #[arg(long)]
    pub name: Option<String>,
    #[command(flatten)]
    pub policy: PolicyArgs,
}

/// What a client may do, shared by `client create` and `client update`. Nothing is
/// granted unless given. A list flag given once with an empty value clears the list.
#[derive(Debug, Args)]
pub struct PolicyArgs {
    /// An audience (absolute URI) whose tokens this client may introspect; repeatable
    #[arg(long = "audience", value_name = "URI")]
    pub audiences: Option<Vec<String>>,
    /// A resource (absolute URI) this client may obtain tokens for (RFC 8707); repeatable
    #[arg(long = "resource", value_name = "URI")]
    pub resources: Option<Vec<String>>,
    /// A target (absolute URI: a resource or audience) this client may exchange a user's token for (RFC 8693, with --grant-type token-exchange); repeatable
    #[arg(long = "exchange-target", value_name = "URI")]
    pub exchange_targets: Option<Vec<String>>,
    /// A grant type this client may use at /token: client_credentials, refresh_token, authorization_code, token-exchange or jwt-bearer (identity assertions from a provider with id_jag = true); repeatable. With --redirect-uri and none given: authorization_code and refresh_token
    #[arg(long = "grant-type", value_name = "G")]
    pub grant_types: Option<Vec<String>>,
    /// Where this client may receive authorization codes: https, http on 127.0.0.1, [::1] or localhost (any port), or a private-use scheme like com.example.app:/cb; repeatable
    #[arg(long = "redirect-uri", value_name = "URI")]
    pub redirect_uris: Option<Vec<String>>,
    /// Space-separated scopes the client may hold; none unless given
    #[arg(long)]
    pub scope: Option<String>,
    /// client_secret_basic (default), client_secret_post, private_key_jwt, or none (a public client: no secret, PKCE)
    #[arg(long, value_name = "M")]
    pub auth_method: Option<String>,
    /// Accept only the registered --auth-method, not client_secret_basic and client_secret_post alike
    #[arg(long, conflicts_with = "no_strict_auth_method")]
    pub strict_auth_method: bool,
    /// Accept client_secret_basic and client_secret_post alike (the default)
    #[arg(long)]
    pub no_strict_auth_method: bool,
    /// Inactive answers allowed per window: a number, off (gateways), or configured (rate_limit.inactive_per_client, the default)
    #[arg(long, value_name = "N|off")]
    pub inactive_budget: Option<String>,
}

/// A list flag as given: `None` when absent; empty strings drop out, so `--scope ""`
/// style clearing works for lists too.
fn list(values: Option<Vec<String>>) -> Option<Vec<String>> {
    values.map(|v| v.into_iter().filter(|s| !s.is_empty()).collect())
}

impl PolicyArgs {
    fn strict(&self) -> Option<bool> {
        match (self.strict_auth_method, self.no_strict_auth_method) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        }
    }

    fn changes(self, name: Option<String>) -> ClientChanges {
        ClientChanges {
            name,
            strict_auth_method: self.strict(),
            audiences: list(self.audiences),
            scope: self.scope,
            auth_method: self.auth_method,
            grant_types: list(self.grant_types),
            resources: list(self.resources),
            exchange_targets: list(self.exchange_targets),
            redirect_uris: list(self.redirect_uris),
            inactive_budget: self.inactive_budget,
        }
    }
}

/// A client's public JWK Set, given inline or in a file.
#[derive(Debug, Args)]
pub struct JwksArgs {
    /// The client's public JWK Set, for private_key_jwt
    #[arg(long, value_name = "JSON", conflicts_with = "jwks_file")]
    pub jwks: Option<String>,
    /// A file holding the client's public JWK Set, for private_key_jwt
    #[arg(long, value_name = "PATH")]
    pub jwks_file: Option<PathBuf>,
}

impl JwksArgs {
    /// The JWK Set's text, read from the file when one is named.
    fn read(self) -> Result<Option<String>, String> {
        match (self.jwks, self.jwks_file) {
            (Some(jwks), _) => Ok(Some(jwks)),
            (None, Some(path)) => std::fs::read_to_string(&path)
                .map(Some)
                .map_err(|e| format!("--jwks-file: cannot read {}: {e}", path.display())),
            (None, None) => Ok(None),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Mint a token for a client
    Issue(IssueArgs),
    /// Revoke a token (`-` reads it from stdin)
    Revoke {
        #[arg(allow_hyphen_values = true)]
        token: String,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum TypeArg {
    Access,
    Refresh,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum FormatArg {
    Jwt,
    Opaque,
}

#[derive(Debug, Args)]
pub struct IssueArgs {
    #[arg(long, allow_hyphen_values = true)]
    pub client_id: String,
    #[arg(long)]
    pub subject: String,
    #[arg(long)]
    pub username: Option<String>,
    #[arg(long)]
    pub scope: Option<String>,
    #[arg(long = "audience", value_name = "URI")]
    pub audiences: Vec<String>,
    /// Lifetime in seconds
    #[arg(long, value_name = "SECONDS")]
    pub ttl: Option<u64>,
    #[arg(long = "type", value_enum, default_value = "access")]
    pub token_type: TypeArg,
    /// Access tokens default to jwt; refresh tokens are always opaque
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
}

/// Parses the command line, runs the command and turns any failure into one line.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) if !err.use_stderr() => {
            let _ = err.print();
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            // clap's message without its usage block, on one line.
            let text = err.to_string();
            let message = text
                .split("\n\nUsage")
                .next()
                .unwrap_or("invalid arguments");
            eprintln!("{}", one_line(message));
            return ExitCode::from(2);
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {}", one_line(&message));
            ExitCode::FAILURE
        }
    }
}

fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn run(cli: Cli) -> Result<(), String> {
    let overrides = Overrides {
        listen: cli.listen,
        issuer: cli.issuer,
        database_url: cli.database_url,
    };
    let config = Config::load(cli.config.as_deref(), &overrides).map_err(|e| e.to_string())?;
    // The key-encryption key is read from the environment here, not by the configuration:
    // a variable that is unset or holds no key stops every command before it runs.
    crate::token::kek::check_named(&config)
        .map_err(|e| ConfigError(vec![e.to_string()]).to_string())?;
    let serving = matches!(cli.command, None | Some(Command::Serve));
    if serving {
        crate::telemetry::init(&config.log);
    } else {
        crate::telemetry::init(&LogConfig {
            level: "warn".to_owned(),
            ..config.log.clone()
        });
    }
    if let Some(command) = cli.command.as_ref().filter(|c| c.uses_store()) {
        // From another working directory, a relative SQLite path names another file:
        // say which database this is, before anything is written to it.
        eprintln!(
            "introspectd: database {}",
            service::describe_database(&config)
        );
        if command.only_reads() {
            service::require_existing_database(&config)?;
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    runtime.block_on(async move {
        // The command's one time: everything it records or judges is at `now`.
        let now = now();
        match cli.command {
            None | Some(Command::Serve) => service::serve(config).await.map_err(|e| e.to_string()),
            Some(Command::Healthcheck) => {
                let addr =
                    crate::healthcheck::healthcheck(config.listen, config.http.tls.is_some())
                        .await?;
                print_json(&json!({"healthy": true, "address": addr.to_string()}))
            }
            Some(Command::Migrate) => {
                let store = open_store(&config).await.map_err(|e| e.to_string())?;
                store.close().await;
                print_json(&json!({"migrated": true, "store": store.backend()}))
            }
            Some(Command::Client(command)) => {
                let store = open_store(&config).await.map_err(|e| e.to_string())?;
                let result = client_command(&store, command, now).await;
                store.close().await;
                result
            }
            Some(Command::User(command)) => {
                let store = open_store(&config).await.map_err(|e| e.to_string())?;
                let result = user_command(&store, command, now).await;
                store.close().await;
                result
            }
            Some(Command::Token(command)) => {
                let store = open_store(&config).await.map_err(|e| e.to_string())?;
                let result = token_command(&config, &store, command, now).await;
                store.close().await;
                result
            }
            Some(Command::Events(args)) => {
                let store = open_store(&config).await.map_err(|e| e.to_string())?;
                let result = events_command(&store, args).await;
                store.close().await;
                result
            }
            Some(Command::Keys(command)) => {
                let store = open_store(&config).await.map_err(|e| e.to_string())?;
                let result = keys_command(&config, &store, command, now).await;
                store.close().await;
                result
            }
        }
    })
}

async fn client_command(store: &Store, command: ClientCommand, now: i64) -> Result<(), String> {
    let err = |e: admin::AdminError| e.to_string();
    match command {
        ClientCommand::Create(args) => {
            let jwks = args.jwks.read()?;
            let changes = args.policy.changes(None);
            let signs_in_nowhere = changes
                .redirect_uris
                .as_ref()
                .is_some_and(|u| !u.is_empty())
                && changes.resources.as_ref().is_none_or(Vec::is_empty);
            let created = admin::create_client(
                store,
                NewClient {
                    name: args.name,
                    audiences: changes.audiences.unwrap_or_default(),
                    scope: changes.scope,
                    auth_method: changes.auth_method,
                    jwks,
                    grant_types: changes.grant_types.unwrap_or_default(),
                    resources: changes.resources.unwrap_or_default(),
                    exchange_targets: changes.exchange_targets.unwrap_or_default(),
                    redirect_uris: changes.redirect_uris.unwrap_or_default(),
                    strict_auth_method: changes.strict_auth_method.unwrap_or(false),
                    inactive_budget: changes.inactive_budget,
                    ..NewClient::default()
                },
                now,
            )
            .await
            .map_err(err)?;
            note(
                store,
                Event::new(EventType::ClientCreated)
                    .client(&created.client_id)
                    .detail("auth_method", created.auth_method.as_str()),
            )
            .await;
            if signs_in_nowhere {
                eprintln!(
                    "introspectd: warning: client {} signs users in without --resource: unless \
                     it sends resource, its tokens name no audience and no resource server can \
                     introspect them (client update {} --resource URI)",
                    created.client_id, created.client_id
                );
            }
            print_json(&created.to_json())
        }
        ClientCommand::Update(args) => {
            let changes = args.policy.changes(args.name);
            let changed = changes.named();
            let updated = admin::update_client(store, &args.client_id, changes, now)
                .await
                .map_err(err)?;
            let event = Event::new(EventType::ClientUpdated).detail("changed", changed);
            note(store, event.client(&args.client_id)).await;
            print_json(&updated)
        }
        ClientCommand::List => print_json(&admin::list_clients(store).await.map_err(err)?),
        ClientCommand::Show { client_id } => {
            print_json(&admin::show_client(store, &client_id).await.map_err(err)?)
        }
        ClientCommand::RotateSecret { client_id, grace } => {
            let rotated = admin::rotate_secret(store, &client_id, grace, now)
                .await
                .map_err(err)?;
            let event = Event::new(EventType::ClientSecretRotated).client(&client_id);
            note(store, event.detail("grace_seconds", grace)).await;
            print_json(&rotated.to_json())
        }
        ClientCommand::SetJwks { client_id, jwks } => {
            let jwks = jwks
                .read()?
                .ok_or("client set-jwks needs --jwks or --jwks-file")?;
            let set = admin::set_client_jwks(store, &client_id, &jwks, now)
                .await
                .map_err(err)?;
            let event = Event::new(EventType::ClientUpdated).detail("changed", ["jwks"]);
            note(store, event.client(&client_id)).await;
            print_json(&set)
        }
        ClientCommand::Disable { client_id } => {
            let disabled = admin::disable_client(store, &client_id, now)
                .await
                .map_err(err)?;
            note(
                store,
                Event::new(EventType::ClientDisabled).client(&client_id),
            )
            .await;
            print_json(&disabled)
        }
        ClientCommand::Enable { client_id } => {
            let enabled = admin::enable_client(store, &client_id, now)
                .await
                .map_err(err)?;
            let event = Event::new(EventType::ClientUpdated).detail("changed", ["enabled"]);
            note(store, event.client(&client_id)).await;
            print_json(&enabled)
        }
        ClientCommand::Delete { client_id } => {
            admin::delete_client(store, &client_id).await.map_err(err)?;
            note(
                store,
                Event::new(EventType::ClientDeleted).client(&client_id),
            )
            .await;
            print_json(&json!({"client_id": client_id, "deleted": true}))
        }
    }
}

async fn user_command(store: &Store, command: UserCommand, now: i64) -> Result<(), String> {
    let err = |e: admin::AdminError| e.to_string();
    match command {
        UserCommand::Create(args) => {
            let password = args
                .password_stdin
                .then(read_password_from_stdin)
                .transpose()?;
            let new = NewUser {
                username: args.username,
                email: args.email,
                name: args.name,
                password,
            };
            let created = admin::create_user(store, new, now).await.map_err(err)?;
            note(
                store,
                Event::new(EventType::UserCreated).user(&created.user_id),
            )
            .await;
            print_json(&created.to_json())
        }
        UserCommand::List => print_json(&admin::list_users(store).await.map_err(err)?),
        UserCommand::Show { user } => {
            print_json(&admin::show_user(store, &user).await.map_err(err)?)
        }
        UserCommand::SetPassword {
            user,
            password_stdin,
        } => {
            let password = password_stdin.then(read_password_from_stdin).transpose()?;
            let changed = admin::set_user_password(store, &user, password, now)
                .await
                .map_err(err)?;
            let event = Event::new(EventType::UserUpdated).detail("changed", ["password"]);
            note(store, event.user(&changed.user_id)).await;
            print_json(&changed.to_json())
        }
        UserCommand::Disable { user } => {
            let disabled = admin::disable_user(store, &user, now).await.map_err(err)?;
            note(
                store,
                Event::new(EventType::UserDisabled).user(&disabled.user_id),
            )
            .await;
            print_json(&disabled)
        }
        UserCommand::Enable { user } => {
            let enabled = admin::enable_user(store, &user, now).await.map_err(err)?;
            let event = Event::new(EventType::UserUpdated).detail("changed", ["enabled"]);
            note(store, event.user(&enabled.user_id)).await;
            print_json(&enabled)
        }
        UserCommand::Delete { user } => {
            let user_id = admin::delete_user(store, &user, now).await.map_err(err)?;
            note(store, Event::new(EventType::UserDeleted).user(&user_id)).await;
            print_json(&json!({"user_id": user_id, "deleted": true}))
        }
        UserCommand::RevokeConsent { user, client_id } => {
            let revoked = admin::revoke_consent(store, &user, client_id.as_deref(), now)
                .await
                .map_err(err)?;
            let mut event = Event::new(EventType::ConsentRevoked)
                .user(&revoked.user_id)
                .detail("tokens_revoked", revoked.tokens_revoked);
            if let Some(client_id) = &revoked.client_id {
                event = event.client(client_id);
            }
            note(store, event).await;
            print_json(&revoked)
        }
    }
}

async fn token_command(
    config: &Config,
    store: &Store,
    command: TokenCommand,
    now: i64,
) -> Result<(), String> {
    let keys = KeySet::load(config, store)
        .await
        .map_err(|e| e.to_string())?;
    match command {
        TokenCommand::Issue(args) => {
            let token_use = match args.token_type {
                TypeArg::Access => TokenUse::AccessToken,
                TypeArg::Refresh => TokenUse::RefreshToken,
            };
            let format = args.format.map(|f| match f {
                FormatArg::Jwt => TokenFormat::Jwt,
                FormatArg::Opaque => TokenFormat::Opaque,
            });
            let client_id = args.client_id;
            let minted = admin::issue_token(
                store,
                &keys,
                config,
                IssueToken {
                    client_id: client_id.clone(),
                    subject: args.subject,
                    username: args.username,
                    scope: args.scope,
                    audiences: args.audiences,
                    ttl: args.ttl,
                    token_use,
                    format,
                },
                now,
            )
            .await
            .map_err(|e| e.to_string())?;
            let event = Event::new(EventType::TokenIssued)
                .client(&client_id)
                .detail("grant_type", "operator")
                .detail("token_use", minted.token_use.as_str())
                .detail("jti", minted.jti.as_str())
                .detail("aud", minted.audiences.clone());
            note(store, event).await;
            print_json(&json!({
                "token": minted.token.expose(),
                "token_type_hint": minted.token_use.as_str(),
                "exp": minted.exp,
            }))
        }
        TokenCommand::Revoke { token } => {
            let token = if token == "-" {
                read_token_from_stdin()?
            } else {
                RawToken::new(token)
            };
            let revoked = admin::revoke_token(store, &keys, &token, now)
                .await
                .map_err(|e| e.to_string())?;
            let event = Event::new(EventType::TokenRevoked)
                .detail("jti", revoked.jti.as_str())
                .detail("token_use", revoked.token_use.as_str())
                .detail("by", "operator");
            note(store, event).await;
            print_json(&revoked)
        }
    }
}

async fn keys_command(
    config: &Config,
    store: &Store,
    command: KeysCommand,
    now: i64,
) -> Result<(), String> {
    let err = |e: admin::AdminError| e.to_string();
    match command {
        KeysCommand::Rotate => {
            let key = admin::rotate_key(store, config, now).await.map_err(err)?;
            let event = Event::new(EventType::KeyRotated).detail("kid", key.kid.as_str());
            note(store, event.detail("alg", key.alg.as_str())).await;
            print_json(&key)
        }
        KeysCommand::Promote { kid } => {
            let key = admin::promote_key(store, config, &kid, now)
                .await
                .map_err(err)?;
            note(store, Event::new(EventType::KeyPromoted).detail("kid", kid)).await;
            print_json(&key)
        }
        KeysCommand::List => print_json(&admin::list_keys(store, config, now).await.map_err(err)?),
        KeysCommand::Remove { kid } => {
            admin::remove_key(store, config, &kid, now)
                .await
                .map_err(err)?;
            note(
                store,
                Event::new(EventType::KeyRemoved).detail("kid", kid.as_str()),
            )
            .await;
            print_json(&json!({"kid": kid, "removed": true}))
        }
        KeysCommand::Reseal {
            new_key_env,
            discard_unreadable,
        } => {
            use crate::token::kek::{KeyEncryptionKey, Origin};
            let text = std::env::var(&new_key_env).map_err(|_| {
                format!("--new-key-env: environment variable {new_key_env} is not set")
            })?;
            let new = KeyEncryptionKey::from_text(&text, Origin::Env(new_key_env.clone()))
                .ok_or_else(|| {
                    format!(
                        "--new-key-env: {new_key_env} must hold 32 random bytes in base64 or \
                         hex (for example from `openssl rand -base64 32`)"
                    )
                })?;
            let resealed =
                crate::token::reseal::reseal(store, config, &new, discard_unreadable, now)
                    .await
                    .map_err(|e| e.to_string())?;
            let event = Event::new(EventType::KeyResealed)
                .detail("key_encryption_key", resealed.key_encryption_key.as_str())
                .detail("resealed", resealed.resealed.clone())
                .detail("discarded", resealed.discarded.clone());
            note(store, event).await;
            print_json(&resealed)
        }
    }
}

fn read_token_from_stdin() -> Result<RawToken, String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the token from stdin: {e}"))?;
    let token = line.trim();
    if token.is_empty() {
        return Err("no token on stdin".to_owned());
    }
    Ok(RawToken::new(token))
}

/// The first line of stdin without its line ending, as a password.
fn read_password_from_stdin() -> Result<Password, String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    let password = (!password.is_empty()).then(|| Password::new(password));
    secrecy::zeroize::Zeroize::zeroize(&mut line);
    password.ok_or_else(|| "no password on stdin".to_owned())
}

/// Events read per query.
const EVENTS_PAGE: i64 = 1_000;
/// How often `events --follow` looks for new events.
const FOLLOW_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// `introspectd events`: the events the filters select, oldest first; with `--follow`,
/// then each new one as it is stored.
async fn events_command(store: &Store, args: EventsArgs) -> Result<(), String> {
    let types = args
        .types
        .iter()
        .map(|name| {
            EventType::parse(name).ok_or_else(|| {
                let known: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
                format!("--type must be one of {}, not {name:?}", known.join(", "))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let since = match &args.since {
        Some(since) => audit::parse_since(since, audit::now_ms())?,
        None => 0,
    };
    // A user deleted since is still named by their id.
    let user_id = match args.user {
        Some(user) => Some(match admin::show_user(store, &user).await {
            Ok(found) => found.user_id,
            Err(_) => user,
        }),
        None => None,
    };
    let mut query = EventQuery {
        after_id: 0,
        since,
        client_id: args.client_id.as_deref(),
        user_id: user_id.as_deref(),
        limit: EVENTS_PAGE,
    };
    loop {
        let rows = store.events(&query).await.map_err(|e| e.to_string())?;
        let mut out = std::io::stdout().lock();
        for row in &rows {
            query.after_id = row.id;
            if types.is_empty() || types.iter().any(|t| t.as_str() == row.kind) {
                match writeln!(out, "{}", audit::view(row)) {
                    Ok(()) => {}
                    // The reader went away (`| head`): nothing more to say.
                    Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                    Err(err) => return Err(format!("cannot write output: {err}")),
                }
            }
        }
        let _ = out.flush();
        drop(out);
        if (rows.len() as i64) < EVENTS_PAGE {
            if !args.follow {
                return Ok(());
            }
            tokio::time::sleep(FOLLOW_EVERY).await;
        }
    }
}

/// Records an operator's change in the audit trail. The change is made already: a
/// failure to record it is said, not returned.
async fn note(store: &Store, event: Event) {
    let event = event.detail("by", "operator");
    if let Err(err) = audit::write_now(store, event).await {
        eprintln!("introspectd: warning: the audit trail did not record this: {err}");
    }
}

fn print_json<T: serde::Serialize>(value: &T) -> Result<(), String> {
    let text = serde_json::to_string(value).map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}").map_err(|e| format!("cannot write output: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_subcommand_means_serve() {
        let cli = Cli::try_parse_from(["introspectd"]).unwrap();
        assert!(cli.command.is_none());
    }

    #[test]
    fn issue_parses_repeated_audiences() {
        let cli = Cli::try_parse_from([
            "introspectd",
            "token",
            "issue",
            "--client-id",
            "c",
            "--subject",
            "s",
            "--audience",
            "https://a",
            "--audience",
            "https://b",
            "--type",
            "refresh",
        ])
        .unwrap();
        let Some(Command::Token(TokenCommand::Issue(args))) = cli.command else {
            panic!("expected token issue");
        };
        assert_eq!(args.audiences, vec!["https://a", "https://b"]);
        assert!(matches!(args.token_type, TypeArg::Refresh));
    }

    #[test]
    fn ids_may_begin_with_a_hyphen() {
        let cli = Cli::try_parse_from(["introspectd", "client", "show", "-Kx_1"]).unwrap();
        let Some(Command::Client(ClientCommand::Show { client_id })) = cli.command else {
            panic!("expected client show");
        };
        assert_eq!(client_id, "-Kx_1");
        let cases: [&[&str]; 13] = [
            &["introspectd", "token", "revoke", "-abc"],
            &["introspectd", "client", "enable", "-abc"],
            &["introspectd", "user", "enable", "-abc"],
            &["introspectd", "user", "show", "-abc"],
            &["introspectd", "user", "set-password", "-abc"],
            &["introspectd", "user", "disable", "-abc"],
            &["introspectd", "user", "delete", "-abc"],
            &["introspectd", "user", "revoke-consent", "-abc"],
            &[
                "introspectd",
                "user",
                "revoke-consent",
                "u",
                "--client-id",
                "-abc",
            ],
            &["introspectd", "keys", "remove", "-abc"],
            &["introspectd", "keys", "promote", "-abc"],
            &["introspectd", "client", "delete", "-abc"],
            &[
                "introspectd",
                "token",
                "issue",
                "--client-id",
                "-abc",
                "--subject",
                "s",
            ],
        ];
        for args in cases {
            assert!(Cli::try_parse_from(args).is_ok(), "{args:?}");
        }
    }

    #[test]
    fn update_flags_replace_keep_or_clear() {
        let cli = Cli::try_parse_from([
            "introspectd",
            "client",
            "update",
            "-id",
            "--grant-type",
            "client_credentials",
            "--grant-type",
            "refresh_token",
            "--resource",
            "",
            "--scope",
            "",
            "--no-strict-auth-method",
            "--inactive-budget",
            "off",
        ])
        .unwrap();
        let Some(Command::Client(ClientCommand::Update(args))) = cli.command else {
            panic!("expected client update");
        };
        assert_eq!(args.client_id, "-id");
        let changes = args.policy.changes(args.name);
        assert_eq!(
            changes.grant_types,
            Some(vec![
                "client_credentials".to_owned(),
                "refresh_token".to_owned()
            ])
        );
        assert_eq!(changes.resources, Some(vec![]), "an empty value clears");
        assert_eq!(changes.scope.as_deref(), Some(""));
        assert_eq!(changes.audiences, None, "omitted: kept");
        assert_eq!(changes.name, None);
        assert_eq!(changes.strict_auth_method, Some(false));
        assert_eq!(changes.redirect_uris, None, "omitted: kept");
        assert_eq!(changes.inactive_budget.as_deref(), Some("off"));
        let both = [
            "introspectd",
            "client",
            "update",
            "x",
            "--strict-auth-method",
            "--no-strict-auth-method",
        ];
        assert!(Cli::try_parse_from(both).is_err());
    }

    #[test]
    fn redirect_uris_repeat_and_clear() {
        let parse = |extra: &[&str]| {
            let mut args = vec!["introspectd", "client", "update", "id"];
            args.extend_from_slice(extra);
            let Some(Command::Client(ClientCommand::Update(args))) =
                Cli::try_parse_from(args).unwrap().command
            else {
                panic!("expected client update");
            };
            args.policy.changes(None).redirect_uris
        };
        assert_eq!(
            parse(&[
                "--redirect-uri",
                "https://a.example/cb",
                "--redirect-uri",
                "http://127.0.0.1/cb"
            ]),
            Some(vec![
                "https://a.example/cb".to_owned(),
                "http://127.0.0.1/cb".to_owned()
            ])
        );
        assert_eq!(parse(&["--redirect-uri", ""]), Some(vec![]));
    }

    #[test]
    fn errors_fold_into_one_line() {
        assert_eq!(one_line("a\n  b\tc"), "a b c");
    }
}
