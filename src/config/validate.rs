//! The configuration's rules, checked on the data alone: nothing here reads the
//! environment or the filesystem.

use super::{
    Config, ConfigError, KeyConfig, MAX_ID_JAG_LIFETIME_SECONDS, MAX_ROTATION_DELAY_SECONDS,
    MAX_SESSION_TTL_SECONDS, MAX_UNUSED_CLIENT_DAYS, SUPPORTED_ALGS,
};

impl Config {
    /// Checks every rule and reports all problems at once.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        if let Err(why) = validate_issuer(&self.issuer) {
            problems.push(format!("issuer: {why}"));
        }
        if !self.database_url.is_sqlite() && !self.database_url.is_postgres() {
            problems.push(format!(
                "database_url: {} is neither sqlite://… nor postgres://…",
                self.database_url.redacted()
            ));
        }
        if self.database.max_connections == 0 {
            problems.push("database.max_connections: must be at least 1".to_owned());
        }
        if self.rate_limit.per_second == 0 {
            problems.push("rate_limit.per_second: must be at least 1".to_owned());
        }
        if self.rate_limit.burst == 0 {
            problems.push("rate_limit.burst: must be at least 1".to_owned());
        }
        if self.rate_limit.metadata_per_second == 0 || self.rate_limit.metadata_burst == 0 {
            problems.push(
                "rate_limit.metadata_per_second, rate_limit.metadata_burst: must be at least 1"
                    .to_owned(),
            );
        }
        if self.rate_limit.auth_failure_window_seconds == 0 {
            problems.push("rate_limit.auth_failure_window_seconds: must be at least 1".to_owned());
        }
        if self.rate_limit.inactive_window_seconds == 0 {
            problems.push("rate_limit.inactive_window_seconds: must be at least 1".to_owned());
        }
        if self.rate_limit.password_failure_window_seconds == 0 {
            problems
                .push("rate_limit.password_failure_window_seconds: must be at least 1".to_owned());
        }
        if !(1..=MAX_SESSION_TTL_SECONDS).contains(&self.login.session_ttl_seconds) {
            problems.push(format!(
                "login.session_ttl_seconds: must be between 1 and {MAX_SESSION_TTL_SECONDS}"
            ));
        }
        if !(1..=MAX_ID_JAG_LIFETIME_SECONDS).contains(&self.login.id_jag_max_lifetime_seconds) {
            problems.push(format!(
                "login.id_jag_max_lifetime_seconds: must be between 1 and \
                 {MAX_ID_JAG_LIFETIME_SECONDS}"
            ));
        }
        if self.events.retention_days == 0 {
            problems.push("events.retention_days: must be at least 1".to_owned());
        }
        problems.extend(self.registration_problems());
        problems.extend(self.provider_problems());
        if self.metrics.enabled && self.metrics.listen == self.listen && self.listen.port() != 0 {
            problems.push(format!(
                "metrics.listen: {} is the main listener's address; give metrics their own",
                self.metrics.listen
            ));
        }
        if self.tokens.access_token_ttl == 0 {
            problems.push("tokens.access_token_ttl: must be at least 1".to_owned());
        }
        if self.tokens.refresh_token_ttl == 0 {
            problems.push("tokens.refresh_token_ttl: must be at least 1".to_owned());
        }
        if self.http.tls.is_some() && !self.issuer.starts_with("https://") {
            problems.push(format!(
                "issuer: {:?} must be https:// when http.tls is set (the listener then speaks \
                 HTTPS only)",
                self.issuer
            ));
        }
        if self.http.max_body_bytes < 1024 {
            problems.push("http.max_body_bytes: must be at least 1024".to_owned());
        }
        if self.http.header_read_timeout_ms == 0 {
            problems.push("http.header_read_timeout_ms: must be at least 1".to_owned());
        }
        if self.http.max_headers < 16 {
            problems.push("http.max_headers: must be at least 16".to_owned());
        }
        if self.http.max_header_bytes < 8 * 1024 {
            problems.push("http.max_header_bytes: must be at least 8192".to_owned());
        }
        if self.http.request_timeout_ms == 0 {
            problems.push("http.request_timeout_ms: must be at least 1".to_owned());
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            problems.push(format!(
                "log.format: {:?} is neither \"text\" nor \"json\"",
                self.log.format
            ));
        }
        if self.jwt.leeway_seconds > 600 {
            problems.push("jwt.leeway_seconds: at most 600".to_owned());
        }
        if let Some(issuers) = &self.jwt.issuers {
            if issuers.is_empty() {
                problems.push("jwt.issuers: must not be empty".to_owned());
            }
        }
        if self
            .jwt
            .key_encryption_key_env
            .as_ref()
            .is_some_and(String::is_empty)
        {
            problems.push("jwt.key_encryption_key_env: must name a variable".to_owned());
        }
        if let Some(path) = &self.jwt.key_encryption_key_file {
            if self.jwt.key_encryption_key_env.is_some() {
                problems.push(
                    "jwt.key_encryption_key_file: set this or jwt.key_encryption_key_env, not both"
                        .to_owned(),
                );
            } else if path.file_name().is_none() {
                problems.push("jwt.key_encryption_key_file: must name a file".to_owned());
            }
        }
        if self
            .registration
            .initial_access_token_env
            .as_ref()
            .is_some_and(String::is_empty)
        {
            problems.push("registration.initial_access_token_env: must name a variable".to_owned());
        }
        if self.jwt.rotation_delay_seconds > MAX_ROTATION_DELAY_SECONDS {
            problems.push(format!(
                "jwt.rotation_delay_seconds: at most {MAX_ROTATION_DELAY_SECONDS}"
            ));
        }
        for (i, key) in self.jwt.keys.iter().enumerate() {
            problems.extend(
                validate_key(key)
                    .into_iter()
                    .map(|why| format!("jwt.keys[{i}]: {why}")),
            );
            if self.jwt.keys[..i].iter().any(|k| k.kid == key.kid) {
                problems.push(format!("jwt.keys[{i}]: kid {:?} is used twice", key.kid));
            }
        }
        for (name, value) in &self.metadata {
            if name == "issuer" {
                problems.push("metadata.issuer: set `issuer` instead".to_owned());
            } else if name.ends_with("_endpoint") || name.ends_with("_uri") {
                match value.as_str().map(url::Url::parse) {
                    Some(Ok(url)) if matches!(url.scheme(), "https" | "http") => {}
                    _ => problems.push(format!("metadata.{name}: must be an http(s) URL")),
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError(problems))
        }
    }
    /// Problems of `[[login.providers]]`, each under its key.
    fn provider_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let providers = &self.login.providers;
        for (i, provider) in providers.iter().enumerate() {
            for why in provider.problems() {
                problems.push(format!("login.providers[{i}].{why}"));
            }
            if providers[..i].iter().any(|p| p.id == provider.id) {
                problems.push(format!("login.providers[{i}].id: used twice"));
            }
        }
        problems
    }

    fn registration_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let registration = &self.registration;
        if !(1..=MAX_UNUSED_CLIENT_DAYS).contains(&registration.unused_client_days) {
            problems.push(format!(
                "registration.unused_client_days: must be between 1 and {MAX_UNUSED_CLIENT_DAYS}"
            ));
        }
        if let Some(scope) = &registration.max_scope {
            if crate::policy::normalize_scope(scope).is_err() {
                problems.push(
                    "registration.max_scope: must be scope tokens separated by spaces".to_owned(),
                );
            }
        }
        for (i, pattern) in registration.allowed_hosts.iter().enumerate() {
            if !crate::policy::address::valid_host_pattern(pattern) {
                problems.push(format!(
                    "registration.allowed_hosts[{i}]: must be a lower-case host name or \
                     *. followed by one"
                ));
            }
        }
        problems
    }
}

/// RFC 8414 §2: the issuer is an https URL (http allowed for local use) with no query or
/// fragment.
fn validate_issuer(issuer: &str) -> Result<(), String> {
    let url = url::Url::parse(issuer).map_err(|e| format!("{issuer:?} is not a URL ({e})"))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(format!("{issuer:?} must use https or http"));
    }
    if url.host_str().is_none() {
        return Err(format!("{issuer:?} has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{issuer:?} must not have a query or fragment"));
    }
    Ok(())
}

fn validate_key(key: &KeyConfig) -> Vec<String> {
    let mut problems = Vec::new();
    if key.kid.is_empty() {
        problems.push("kid must not be empty".to_owned());
    }
    if !SUPPORTED_ALGS.contains(&key.alg.as_str()) {
        problems.push(format!(
            "alg {:?} is not one of {}",
            key.alg,
            SUPPORTED_ALGS.join(", ")
        ));
    }
    let sources = [
        key.private_key_file.is_some(),
        key.public_key_file.is_some(),
        key.secret_env.is_some(),
    ];
    if sources.iter().filter(|s| **s).count() != 1 {
        problems
            .push("give exactly one of private_key_file, public_key_file, secret_env".to_owned());
    } else if key.alg == "HS256" && key.secret_env.is_none() {
        problems.push("HS256 keys take their secret from secret_env".to_owned());
    } else if key.alg != "HS256" && key.secret_env.is_some() {
        problems.push(format!("{} keys are read from a PEM file", key.alg));
    }
    problems
}

#[cfg(test)]
// figment's Jail closures return figment's own (large) error type.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use crate::config::*;
    #[test]
    fn defaults_serve_a_single_machine() {
        let config = Config::default();
        config.validate().unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.metrics.listen.to_string(), "127.0.0.1:9464");
        assert_eq!(config.trusted_issuers(), vec!["http://127.0.0.1:8080"]);
        assert!(config.database_url.is_sqlite());
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let mut config = Config {
            issuer: "ftp://x".to_owned(),
            ..Config::default()
        };
        config.rate_limit.per_second = 0;
        config.jwt.keys.push(KeyConfig {
            kid: "k".to_owned(),
            alg: "none".to_owned(),
            private_key_file: None,
            public_key_file: None,
            secret_env: None,
        });
        config
            .metadata
            .insert("issuer".to_owned(), "https://other".into());
        let err = config.validate().unwrap_err().0;
        let text = err.join("\n");
        assert!(text.contains("issuer:"), "{text}");
        assert!(text.contains("rate_limit.per_second"), "{text}");
        assert!(text.contains("jwt.keys[0]: alg"), "{text}");
        assert!(text.contains("jwt.keys[0]: give exactly one"), "{text}");
        assert!(text.contains("metadata.issuer"), "{text}");
    }

    #[test]
    fn session_lifetime_is_bounded() {
        let mut config = Config::default();
        config.login.session_ttl_seconds = 0;
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("login.session_ttl_seconds"), "{err}");
        config.login.session_ttl_seconds = MAX_SESSION_TTL_SECONDS + 1;
        assert!(config.validate().is_err());
        config.login.session_ttl_seconds = MAX_SESSION_TTL_SECONDS;
        assert!(config.validate().is_ok());
    }

    #[test]
    fn identity_assertion_lifetime_is_bounded() {
        let mut config = Config::default();
        assert_eq!(config.login.id_jag_max_lifetime_seconds, 300);
        config.login.id_jag_max_lifetime_seconds = 0;
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("login.id_jag_max_lifetime_seconds"), "{err}");
        config.login.id_jag_max_lifetime_seconds = MAX_ID_JAG_LIFETIME_SECONDS + 1;
        assert!(config.validate().is_err());
        config.login.id_jag_max_lifetime_seconds = MAX_ID_JAG_LIFETIME_SECONDS;
        assert!(config.validate().is_ok());
    }

    #[test]
    fn metrics_need_a_listener_of_their_own() {
        let mut config = Config::default();
        config.metrics.listen = config.listen;
        let text = config.validate().unwrap_err().0.join("\n");
        assert!(text.contains("metrics.listen"), "{text}");
        config.metrics.enabled = false;
        config.validate().unwrap();
        config.metrics.enabled = true;
        config.listen.set_port(0);
        config.metrics.listen.set_port(0);
        config.validate().unwrap();
    }

    #[test]
    fn self_registered_scope_defaults_to_the_scopes_supported() {
        let mut config = Config::default();
        assert_eq!(
            config.registration_max_scope(),
            "",
            "none unless configured"
        );
        config.metadata.insert(
            "scopes_supported".to_owned(),
            serde_json::json!(["mcp", "files"]),
        );
        assert_eq!(config.registration_max_scope(), "mcp files");
        config.registration.max_scope = Some(" mcp ".to_owned());
        assert_eq!(config.registration_max_scope(), "mcp");
        assert!(config.registration_enabled());
        assert!(config.metadata_documents_enabled(), "on by default");
        assert!(
            !config.registration.allow_private_networks,
            "public addresses only"
        );
        config.login.enabled = false;
        assert!(!config.registration_enabled(), "registration needs sign-in");
        assert!(
            !config.metadata_documents_enabled(),
            "documents need sign-in"
        );
    }

    #[test]
    fn issuer_with_query_is_rejected() {
        assert!(validate_issuer("https://a.example/?x=1").is_err());
        assert!(validate_issuer("https://a.example/tenant").is_ok());
    }
}
