//! Reading the configuration: its sources layered (defaults, file, environment, flags),
//! every unreadable key reported at once in our words, and what the configuration names
//! in the environment and the filesystem checked as it is read.

use std::net::SocketAddr;
use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use super::{Config, ConfigError, DEFAULT_CONFIG_PATH, MIN_INITIAL_ACCESS_TOKEN_LEN};

/// Values given on the command line; they override the file and the environment.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
}

/// Reads `10.0.0.0/8` as a range and `10.0.0.1` as that one address.
pub(super) fn addresses_or_ranges<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<ipnet::IpNet>, D::Error> {
    let items = Vec::<String>::deserialize(deserializer)?;
    items
        .iter()
        .map(|item| {
            let item = item.trim();
            item.parse::<ipnet::IpNet>()
                .or_else(|_| item.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    serde::de::Error::custom(format!("{item:?} is not an address or CIDR range"))
                })
        })
        .collect()
}

/// Prefix of configuration environment variables.
pub const ENV_PREFIX: &str = "INTROSPECTD_";

/// Top-level configuration keys, as environment variables name them.
fn top_level_keys() -> Vec<String> {
    match serde_json::to_value(Config::default()) {
        Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

fn first_segment(key: &str) -> String {
    key.split('.').next().unwrap_or(key).to_ascii_lowercase()
}

/// `INTROSPECTD_*` variables that name no configuration key, for a start-up warning.
pub fn unrelated_env_vars() -> Vec<String> {
    let sections = top_level_keys();
    std::env::vars()
        .filter_map(|(name, _)| {
            let key = name.strip_prefix(ENV_PREFIX)?;
            let section = first_segment(&key.replace("__", "."));
            (!sections.contains(&section)).then_some(name)
        })
        .collect()
}

impl Config {
    /// Loads defaults, the file, the environment and the overrides, then validates,
    /// reporting every problem at once: unknown keys (with the nearest known one),
    /// values of the wrong kind, and broken rules. `INTROSPECTD_*` variables that name no
    /// configuration key at all are left alone (see [`unrelated_env_vars`]); a wrong
    /// nested key is an error. When `issuer` is given nowhere, it follows `listen`.
    pub fn load(path: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        let sections = top_level_keys();
        let env = Env::prefixed(ENV_PREFIX)
            .split("__")
            .filter(move |key| sections.iter().any(|s| first_segment(key.as_str()) == *s));
        let mut given = Figment::new();
        match path {
            Some(path) => {
                if !path.is_file() {
                    return Err(ConfigError(vec![format!(
                        "config file {} does not exist or is not a file",
                        path.display()
                    )]));
                }
                given = given.merge(Toml::file_exact(path));
            }
            None if Path::new(DEFAULT_CONFIG_PATH).is_file() => {
                given = given.merge(Toml::file_exact(DEFAULT_CONFIG_PATH));
            }
            None => {}
        }
        let given = given.merge(env).merge(Serialized::defaults(overrides));
        let issuer_given = given.contains("issuer");
        let figment = Figment::from(Serialized::defaults(Config::default())).merge(given);
        let (mut config, mut problems) = extract_reporting_all(&figment);
        if !issuer_given {
            config.issuer = issuer_following(config.listen, config.http.tls.is_some());
        }
        if let Err(ConfigError(more)) = config.check() {
            problems.extend(more);
        }
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError(problems))
        }
    }

    /// Every problem `load` reports of a configuration already built: its rules
    /// ([`Config::validate`]), then what it names in the environment and the filesystem.
    pub fn check(&self) -> Result<(), ConfigError> {
        let mut problems = self.validate().err().map(|e| e.0).unwrap_or_default();
        problems.extend(self.source_problems());
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError(problems))
        }
    }

    /// What the configuration names in the environment and the filesystem that cannot be
    /// used: the initial access token's variable, the CA file, the key-encryption key
    /// file's place. Checked as the configuration is read, after its rules.
    fn source_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let registration = &self.registration;
        if let Err(why) = self.initial_access_token() {
            problems.push(why);
        }
        if let Some(path) = &registration.ca_file {
            match std::fs::read(path) {
                Ok(pem)
                    if ::pem::parse_many(&pem).is_ok_and(|certs| {
                        !certs.is_empty() && certs.iter().all(|c| c.tag() == "CERTIFICATE")
                    }) => {}
                Ok(_) => problems.push(format!(
                    "registration.ca_file: {} holds no PEM certificates",
                    path.display()
                )),
                Err(err) => problems.push(format!(
                    "registration.ca_file: cannot read {}: {err}",
                    path.display()
                )),
            }
        }
        if let Some(path) = &self.jwt.key_encryption_key_file {
            if path.is_dir() {
                problems.push(format!(
                    "jwt.key_encryption_key_file: {} is a directory",
                    path.display()
                ));
            }
        }
        problems
    }

    /// What only `serve` needs beyond a valid configuration: the providers' client
    /// secrets named in `client_secret_env`, each under its key.
    pub fn serving_problems(&self) -> Vec<String> {
        let providers = self.login.providers.iter().enumerate();
        providers
            .filter_map(|(i, provider)| {
                let why = provider.secret().err()?;
                Some(format!("login.providers[{i}].{why}"))
            })
            .collect()
    }
    /// The initial access token registration requires, read from the environment;
    /// `Ok(None)` when none is configured.
    pub fn initial_access_token(
        &self,
    ) -> Result<Option<crate::secret::InitialAccessToken>, String> {
        let Some(name) = &self.registration.initial_access_token_env else {
            return Ok(None);
        };
        match std::env::var(name) {
            Ok(value) if value.len() >= MIN_INITIAL_ACCESS_TOKEN_LEN => {
                Ok(Some(crate::secret::InitialAccessToken::new(value)))
            }
            Ok(_) => Err(format!(
                "registration.initial_access_token_env: {name} must hold at least \
                 {MIN_INITIAL_ACCESS_TOKEN_LEN} characters"
            )),
            Err(_) => Err(format!(
                "registration.initial_access_token_env: {name} is not set"
            )),
        }
    }
}

/// Most problems one configuration is read for: past them, the rest go unreported.
const MAX_PROBLEMS: usize = 64;

/// Reads the configuration, carrying on past a key that cannot be read: each unknown key
/// and each value of the wrong kind is reported, in our words and under its full key, and
/// left out (its default applies) so that every other key is still read.
fn extract_reporting_all(figment: &Figment) -> (Config, Vec<String>) {
    let mut value = match figment.extract::<serde_json::Value>() {
        Ok(value) => value,
        // The file itself cannot be read or parsed: nothing in it can be judged.
        Err(err) => {
            return (
                Config::default(),
                err.into_iter().map(|e| e.to_string()).collect(),
            );
        }
    };
    let mut problems = Vec::new();
    while problems.len() < MAX_PROBLEMS {
        let err = match Figment::from(Serialized::defaults(&value)).extract::<Config>() {
            Ok(config) => return (config, problems),
            Err(err) => err,
        };
        problems.push(describe_key_problem(figment, &err));
        if err.path.is_empty() || !remove_key(&mut value, &err.path) {
            break;
        }
    }
    (Config::default(), problems)
}

/// One unreadable key, said the way an operator writes it, with where it came from.
fn describe_key_problem(figment: &Figment, err: &figment::Error) -> String {
    use figment::error::Kind;
    let key = dotted_key(&err.path);
    let source = figment
        .find_metadata(&err.path.join("."))
        .map(|metadata| match &metadata.source {
            Some(figment::Source::File(path)) => format!(" (in {})", path.display()),
            _ if metadata.name.contains("environment") => {
                format!(" (from {ENV_PREFIX}{})", err.path.join("__").to_uppercase())
            }
            _ => String::new(),
        })
        .unwrap_or_default();
    match &err.kind {
        Kind::UnknownField(name, known) => {
            let parent = dotted_key(&err.path[..err.path.len().saturating_sub(1)]);
            let within = |name: &str| match parent.as_str() {
                "" => name.to_owned(),
                parent => format!("{parent}.{name}"),
            };
            match nearest(name, known) {
                Some(guess) => format!(
                    "unknown key `{key}`{source}; did you mean `{}`?",
                    within(guess)
                ),
                None => format!("unknown key `{key}`{source}"),
            }
        }
        Kind::InvalidType(actual, expected) | Kind::InvalidValue(actual, expected) => {
            format!("`{key}`{source}: expected {expected}, found {actual}")
        }
        Kind::UnknownVariant(actual, expected) => format!(
            "`{key}`{source}: {actual:?} is not one of {}",
            expected.join(", ")
        ),
        Kind::MissingField(field) => format!("`{key}`{source}: `{field}` is required"),
        Kind::Message(message) => format!("`{key}`{source}: {message}"),
        other => format!("`{key}`{source}: {other}"),
    }
}

/// `jwt.keys[0].kid` from the path `["jwt", "keys", "0", "kid"]`.
fn dotted_key(path: &[String]) -> String {
    let mut key = String::new();
    for segment in path {
        if segment.parse::<usize>().is_ok() {
            key.push_str(&format!("[{segment}]"));
        } else {
            if !key.is_empty() {
                key.push('.');
            }
            key.push_str(segment);
        }
    }
    key
}

/// The known name a misspelt one most likely meant: at most two edits away, or one for
/// names of up to four characters.
fn nearest<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    let most = if name.chars().count() <= 4 { 1 } else { 2 };
    known
        .iter()
        .map(|k| (edit_distance(name, k), *k))
        .filter(|(distance, _)| *distance <= most)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, k)| k)
}

/// Edits (insert, delete, replace, swap two neighbours) that turn `a` into `b`: the
/// optimal string alignment distance, for the short names of configuration keys.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    // Three rows of the table: two back (for swaps), the last, and this one.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut last: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut row = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            row[j] = (last[j] + 1).min(row[j - 1] + 1).min(last[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                row[j] = row[j].min(before[j - 2] + 1);
            }
        }
        before = std::mem::replace(&mut last, row);
    }
    last[b.len()]
}

/// Removes the key at `path` (object keys and array indexes); false when it is not there.
fn remove_key(value: &mut serde_json::Value, path: &[String]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut at = value;
    for segment in parents {
        let next = match at {
            serde_json::Value::Object(map) => map.get_mut(segment),
            serde_json::Value::Array(items) => {
                segment.parse::<usize>().ok().and_then(|i| items.get_mut(i))
            }
            _ => None,
        };
        let Some(next) = next else {
            return false;
        };
        at = next;
    }
    match at {
        serde_json::Value::Object(map) => map.remove(last).is_some(),
        serde_json::Value::Array(items) => match last.parse::<usize>() {
            Ok(i) if i < items.len() => {
                items.remove(i);
                true
            }
            _ => false,
        },
        _ => false,
    }
}

/// The issuer when none is configured: this server at its `listen` address, with an
/// unspecified address (`0.0.0.0`, `::`) read as loopback, over https when the listener
/// has TLS.
pub fn issuer_following(listen: SocketAddr, tls: bool) -> String {
    let mut addr = listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://{addr}")
}

#[cfg(test)]
// figment's Jail closures return figment's own (large) error type.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use crate::config::*;
    #[test]
    fn environment_nests_with_double_underscore() {
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            jail.set_env("INTROSPECTD_RATE_LIMIT__PER_SECOND", "500");
            jail.set_env("INTROSPECTD_ISSUER", "https://auth.example.com/tenant");
            let config = Config::load(None, &Overrides::default()).unwrap();
            assert_eq!(config.rate_limit.per_second, 500);
            assert_eq!(config.issuer, "https://auth.example.com/tenant");
            Ok(())
        });
    }

    #[test]
    fn providers_are_read_from_the_file_with_default_scopes() {
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file(
                "providers.toml",
                r#"
                [login]
                local_users = false

                [[login.providers]]
                id = "corp"
                name = "Corp SSO"
                issuer = "https://login.example.com/realms/staff"
                client_id = "introspectd"
                client_secret_env = "CORP_OIDC_SECRET"
                allowed_email_domains = ["example.com"]
                "#,
            )?;
            jail.set_env("CORP_OIDC_SECRET", "from-the-environment");
            let path = std::path::Path::new("providers.toml");
            let config = Config::load(Some(path), &Overrides::default()).unwrap();
            assert!(!config.login.local_users);
            let provider = &config.login.providers[0];
            assert_eq!(provider.scopes, ["openid", "email", "profile"]);
            assert_eq!(provider.secret().unwrap().expose(), "from-the-environment");
            Ok(())
        });
    }

    #[test]
    fn trusted_proxies_take_ranges_and_addresses() {
        figment::Jail::expect_with(|jail| {
            jail.set_env(
                "INTROSPECTD_RATE_LIMIT__TRUSTED_PROXIES",
                "[10.0.0.0/8, 127.0.0.1, \"::1\"]",
            );
            let config = Config::load(None, &Overrides::default()).unwrap();
            let nets: Vec<String> = config
                .rate_limit
                .trusted_proxies
                .iter()
                .map(|n| n.to_string())
                .collect();
            assert_eq!(nets, vec!["10.0.0.0/8", "127.0.0.1/32", "::1/128"]);
            jail.set_env("INTROSPECTD_RATE_LIMIT__TRUSTED_PROXIES", "[bogus]");
            let err = Config::load(None, &Overrides::default()).unwrap_err();
            assert!(
                err.to_string().to_lowercase().contains("trusted_proxies"),
                "{err}"
            );
            Ok(())
        });
    }

    #[test]
    fn client_ip_header_is_one_of_two_names() {
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            let config = Config::load(None, &Overrides::default()).unwrap();
            assert_eq!(config.http.client_ip_header, ClientIpHeader::XForwardedFor);
            jail.set_env("INTROSPECTD_HTTP__CLIENT_IP_HEADER", "forwarded");
            let config = Config::load(None, &Overrides::default()).unwrap();
            assert_eq!(config.http.client_ip_header, ClientIpHeader::Forwarded);
            jail.set_env("INTROSPECTD_HTTP__CLIENT_IP_HEADER", "x-real-ip");
            let err = Config::load(None, &Overrides::default()).unwrap_err();
            assert!(
                err.to_string().to_lowercase().contains("client_ip_header"),
                "{err}"
            );
            Ok(())
        });
    }

    #[test]
    fn unrelated_environment_variables_are_left_alone() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("INTROSPECTD_VERSION", "1.2.3");
            let config = Config::load(None, &Overrides::default()).unwrap();
            assert_eq!(config.listen, Config::default().listen);
            assert!(unrelated_env_vars().contains(&"INTROSPECTD_VERSION".to_owned()));
            jail.set_env("INTROSPECTD_RATE_LIMIT__PER_SECNOD", "5");
            let err = Config::load(None, &Overrides::default()).unwrap_err();
            assert!(err.to_string().contains("per_secnod"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn flags_override_file_and_environment() {
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file(
                "c.toml",
                "listen = \"127.0.0.1:9000\"\nissuer = \"https://a.example\"",
            )?;
            jail.set_env("INTROSPECTD_ISSUER", "https://b.example");
            let overrides = Overrides {
                listen: Some("0.0.0.0:9100".parse().unwrap()),
                ..Overrides::default()
            };
            let config = Config::load(Some(Path::new("c.toml")), &overrides).unwrap();
            assert_eq!(config.listen.to_string(), "0.0.0.0:9100");
            assert_eq!(config.issuer, "https://b.example");
            Ok(())
        });
    }

    #[test]
    fn issuer_follows_listen_unless_set() {
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            let listen = |addr: &str| Overrides {
                listen: Some(addr.parse().unwrap()),
                ..Overrides::default()
            };
            let load = |overrides: &Overrides| Config::load(None, overrides).unwrap().issuer;
            assert_eq!(load(&Overrides::default()), "http://127.0.0.1:8080");
            assert_eq!(load(&listen("127.0.0.1:9000")), "http://127.0.0.1:9000");
            assert_eq!(load(&listen("0.0.0.0:9000")), "http://127.0.0.1:9000");
            assert_eq!(load(&listen("[::]:9000")), "http://[::1]:9000");
            assert_eq!(load(&listen("[::1]:9001")), "http://[::1]:9001");
            assert_eq!(
                issuer_following("0.0.0.0:8443".parse().unwrap(), true),
                "https://127.0.0.1:8443"
            );
            jail.set_env("INTROSPECTD_LISTEN", "127.0.0.1:9100");
            assert_eq!(load(&Overrides::default()), "http://127.0.0.1:9100");
            jail.set_env("INTROSPECTD_ISSUER", "https://auth.example.com");
            assert_eq!(load(&listen("127.0.0.1:9000")), "https://auth.example.com");
            Ok(())
        });
    }

    #[test]
    fn every_unreadable_key_is_reported_at_once_in_our_words() {
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file(
                "c.toml",
                "lisen = \"127.0.0.1:9000\"\n\
                 [rate_limit]\nper_secnd = 5\nburst = \"lots\"\n\
                 [[jwt.keys]]\nkid = \"k\"\nalg = \"EdDSA\"\nsecret_env = \"X\"\nprivte_key_file = \"k.pem\"\n\
                 [tokens]\nwhatever = 1\n",
            )?;
            jail.set_env("INTROSPECTD_HTTP__CLIENT_IP_HEADER", "x-real-ip");
            let err = Config::load(Some(Path::new("c.toml")), &Overrides::default()).unwrap_err();
            let problems = err.0;
            for expected in [
                "unknown key `lisen` (in ",
                "did you mean `listen`?",
                "unknown key `rate_limit.per_secnd` (in ",
                "did you mean `rate_limit.per_second`?",
                "`rate_limit.burst` (in ",
                "unknown key `jwt.keys[0].privte_key_file`; did you mean \
                 `jwt.keys[0].private_key_file`?",
                "`http.client_ip_header` (from INTROSPECTD_HTTP__CLIENT_IP_HEADER): \
                 \"x-real-ip\" is not one of x-forwarded-for, forwarded",
            ] {
                assert!(
                    problems.iter().any(|p| p.contains(expected)),
                    "{expected:?} in {problems:#?}"
                );
            }
            // Too far from any key for a guess.
            let whatever = problems
                .iter()
                .find(|p| p.contains("tokens.whatever"))
                .unwrap();
            assert!(!whatever.contains("did you mean"), "{whatever}");
            Ok(())
        });
    }

    #[test]
    fn edit_distance_counts_swaps_as_one() {
        for (a, b, d) in [
            ("", "", 0),
            ("", "abc", 3),
            ("listen", "listen", 0),
            ("lisen", "listen", 1),
            ("lsiten", "listen", 1),
            ("per_secnd", "per_second", 1),
            ("burts", "burst", 1),
            ("kitten", "sitting", 3),
        ] {
            assert_eq!(edit_distance(a, b), d, "{a} {b}");
            assert_eq!(edit_distance(b, a), d, "{b} {a}");
        }
    }

    #[test]
    fn near_names_are_suggested_far_ones_not() {
        let known = ["listen", "issuer", "per_second", "burst", "log"];
        assert_eq!(nearest("lisen", &known), Some("listen"));
        assert_eq!(nearest("isuser", &known), Some("issuer"));
        assert_eq!(nearest("per_secodn", &known), Some("per_second"));
        assert_eq!(nearest("lgo", &known), Some("log"));
        assert_eq!(nearest("xyz", &known), None);
        assert_eq!(nearest("threads", &known), None);
        assert_eq!(
            dotted_key(&["jwt".into(), "keys".into(), "0".into(), "kid".into()]),
            "jwt.keys[0].kid"
        );
    }

    #[test]
    fn unknown_key_is_named() {
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file("c.toml", "lisen = \"127.0.0.1:9000\"")?;
            let err = Config::load(Some(Path::new("c.toml")), &Overrides::default()).unwrap_err();
            assert!(err.to_string().contains("lisen"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn tls_is_read_whole_and_wants_an_https_issuer() {
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file(
                "tls.toml",
                "[http.tls]\ncert_file = \"/etc/tls.crt\"\nkey_file = \"/etc/tls.key\"\n",
            )?;
            let config = Config::load(Some(Path::new("tls.toml")), &Overrides::default()).unwrap();
            assert_eq!(
                config.issuer, "https://127.0.0.1:8080",
                "follows listen, over https"
            );
            jail.set_env("INTROSPECTD_ISSUER", "http://auth.example");
            let err = Config::load(Some(Path::new("tls.toml")), &Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("must be https:// when http.tls is set"),
                "{err}"
            );
            jail.set_env("INTROSPECTD_ISSUER", "https://auth.example");
            let config = Config::load(Some(Path::new("tls.toml")), &Overrides::default()).unwrap();
            let tls = config.http.tls.unwrap();
            assert_eq!(tls.cert_file, Path::new("/etc/tls.crt"));
            assert_eq!(tls.key_file, Path::new("/etc/tls.key"));
            jail.create_file("half.toml", "[http.tls]\ncert_file = \"/etc/tls.crt\"\n")?;
            let err = Config::load(Some(Path::new("half.toml")), &Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(err.contains("key_file"), "{err}");
            assert!(Config::default().http.tls.is_none());
            Ok(())
        });
    }

    #[test]
    fn example_config_is_valid() {
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            let path =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("config/introspectd.example.toml");
            let config = Config::load(Some(&path), &Overrides::default()).unwrap();
            assert_eq!(
                config.jwt.leeway_seconds,
                Config::default().jwt.leeway_seconds
            );
            Ok(())
        });
    }

    #[test]
    fn key_encryption_key_variable_is_named_not_read() {
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            jail.set_env("INTROSPECTD_JWT__KEY_ENCRYPTION_KEY_ENV", "");
            let err = Config::load(None, &Overrides::default()).unwrap_err();
            assert!(
                err.to_string()
                    .contains("jwt.key_encryption_key_env: must name a variable"),
                "{err}"
            );
            // The configuration names the variable; reading it is the key's own business
            // (`token::kek::check_named`), so an unset one loads.
            jail.set_env("INTROSPECTD_JWT__KEY_ENCRYPTION_KEY_ENV", "INTROSPECTD_KEK");
            let config = Config::load(None, &Overrides::default()).unwrap();
            assert_eq!(config.secret_env_vars(), vec!["INTROSPECTD_KEK"]);
            assert!(
                !unrelated_env_vars()
                    .into_iter()
                    .any(|name| !config.secret_env_vars().contains(&name)),
                "the named variable is not reported as an unknown setting"
            );
            jail.set_env("INTROSPECTD_JWT__ROTATION_DELAY_SECONDS", "99999999");
            let err = Config::load(None, &Overrides::default()).unwrap_err();
            assert!(
                err.to_string().contains("jwt.rotation_delay_seconds"),
                "{err}"
            );
            Ok(())
        });
    }

    /// Every problem `load` reports of a configuration: its rules, then its sources.
    fn all_problems(config: &Config) -> Vec<String> {
        config.check().err().map(|e| e.0).unwrap_or_default()
    }

    #[test]
    fn registration_keys_are_checked_at_start_up() {
        let mut config = Config::default();
        config.registration.unused_client_days = 0;
        config.registration.max_scope = Some("read \"quoted\"".to_owned());
        config.registration.initial_access_token_env =
            Some("INTROSPECTD_TEST_NEVER_SET_REGISTRATION_TOKEN".to_owned());
        let rules = config.validate().unwrap_err().0;
        assert!(
            !rules.iter().any(|p| p.contains("initial_access_token_env")),
            "the rules alone read no environment: {rules:?}"
        );
        let problems = all_problems(&config);
        for key in [
            "registration.unused_client_days",
            "registration.max_scope",
            "registration.initial_access_token_env",
        ] {
            assert!(
                problems.iter().any(|p| p.starts_with(key)),
                "{key}: {problems:?}"
            );
        }
        assert!(
            !problems.iter().any(|p| p.contains("quoted")),
            "values are not echoed: {problems:?}"
        );
    }

    #[test]
    fn key_encryption_key_file_names_a_file_and_excludes_the_variable() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.jwt.key_encryption_key_file = Some(dir.path().join("kek"));
        assert!(all_problems(&config).is_empty());
        config.jwt.key_encryption_key_file = Some(dir.path().to_owned());
        let problems = all_problems(&config);
        assert!(problems[0].contains("is a directory"), "{problems:?}");
        config.jwt.key_encryption_key_file = Some(PathBuf::from("/"));
        let problems = all_problems(&config);
        assert!(problems[0].contains("must name a file"), "{problems:?}");
        config.jwt.key_encryption_key_file = Some(dir.path().join("kek"));
        config.jwt.key_encryption_key_env = Some("SOME_KEK".to_owned());
        let problems = all_problems(&config);
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("jwt.key_encryption_key_file: set this or")),
            "{problems:?}"
        );
    }
}
