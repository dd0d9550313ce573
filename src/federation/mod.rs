//! Signing users in through the organisation's OpenID Connect providers
//! (`[[login.providers]]`): this server is a relying party of each (OIDC Core §3.1, the
//! authorization code flow with PKCE). [`provider`] speaks to one provider through the
//! `openidconnect` crate over our own [`client`]; [`identity`] holds the rules that turn
//! the user it names into a local user, and [`link`] finds or creates that user. The
//! browser's side is `crate::signin::federated`; [`id_jag`] holds the rules of the
//! identity assertions a provider issues for use without a browser (`crate::grant`).

pub mod client;
pub mod id_jag;
pub mod identity;
pub mod link;
pub mod provider;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use utoipa::ToSchema;

use crate::config::Config;
use client::HttpClient;
pub use provider::{Provider, ProviderError};

/// Every configured provider, in configuration order.
#[derive(Debug, Default)]
pub struct Providers(Vec<Arc<Provider>>);

/// Whether a provider can be offered: discovered, or not (yet).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProviderStatus {
    Available,
    Unavailable,
}

impl Providers {
    /// The configured providers, their discovery started in the background.
    pub fn start(config: &Config) -> Result<Self, String> {
        if config.login.providers.is_empty() {
            return Ok(Providers::default());
        }
        let http = HttpClient::new().map_err(|err| err.to_string())?;
        let mut providers = Vec::new();
        for provider in &config.login.providers {
            let provider = Arc::new(Provider::new(provider, &config.issuer, http.clone())?);
            provider.start_discovery();
            providers.push(provider);
        }
        Ok(Providers(providers))
    }

    pub fn get(&self, id: &str) -> Option<&Arc<Provider>> {
        self.0.iter().find(|p| p.id == id)
    }

    /// The provider with `id_jag = true` whose issuer is `issuer`.
    pub fn asserting(&self, issuer: &str) -> Option<&Arc<Provider>> {
        self.0.iter().find(|p| p.id_jag && p.issuer() == issuer)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Provider>> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Each provider's status, by id (`/readyz` details).
    pub fn status(&self) -> BTreeMap<String, ProviderStatus> {
        self.0
            .iter()
            .map(|p| {
                let status = match p.available() {
                    true => ProviderStatus::Available,
                    false => ProviderStatus::Unavailable,
                };
                (p.id.clone(), status)
            })
            .collect()
    }
}
