//! The words every layer shares: how clients authenticate, what tokens are for, which
//! grants a client may use and how many inactive answers it may receive.

/// How a client authenticates (RFC 7591 `token_endpoint_auth_method`).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    /// RFC 7523 §2.2: a JWT signed with a key from the client's registered JWK Set.
    PrivateKeyJwt,
    /// RFC 7591 §2: a public client, which has no credentials; it only names itself
    /// with `client_id`, and PKCE proves it is the one that asked (RFC 7636).
    None,
}

impl AuthMethod {
    pub const ALL: [AuthMethod; 4] = [
        AuthMethod::ClientSecretBasic,
        AuthMethod::ClientSecretPost,
        AuthMethod::PrivateKeyJwt,
        AuthMethod::None,
    ];

    /// The methods that prove a client with a credential: what endpoints that require
    /// client authentication accept.
    pub const WITH_CREDENTIALS: [AuthMethod; 3] = [
        AuthMethod::ClientSecretBasic,
        AuthMethod::ClientSecretPost,
        AuthMethod::PrivateKeyJwt,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::PrivateKeyJwt => "private_key_jwt",
            AuthMethod::None => "none",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == value)
    }

    /// Whether the client holds a secret (`client_secret_basic` or `client_secret_post`).
    pub fn uses_secret(self) -> bool {
        matches!(
            self,
            AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost
        )
    }
}

/// What a token is for (`token_use` in introspection answers).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum TokenUse {
    AccessToken,
    RefreshToken,
}

impl TokenUse {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenUse::AccessToken => "access_token",
            TokenUse::RefreshToken => "refresh_token",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "access_token" => Some(TokenUse::AccessToken),
            "refresh_token" => Some(TokenUse::RefreshToken),
            _ => None,
        }
    }
}

/// A grant type a client may use at the token endpoint (RFC 7591 `grant_types`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    ClientCredentials,
    RefreshToken,
    /// Sign-in of users (RFC 6749 §4.1); registered ahead of the endpoints that use it.
    AuthorizationCode,
    /// RFC 8693: a resource server trades a user's token for one to another service.
    #[serde(rename = "urn:ietf:params:oauth:grant-type:token-exchange")]
    TokenExchange,
    /// RFC 7523 §2.1 with an identity assertion (ID-JAG) from the organisation's
    /// provider: the MCP enterprise-managed authorization extension.
    #[serde(rename = "urn:ietf:params:oauth:grant-type:jwt-bearer")]
    JwtBearer,
}

impl GrantType {
    pub const ALL: [GrantType; 5] = [
        GrantType::ClientCredentials,
        GrantType::RefreshToken,
        GrantType::AuthorizationCode,
        GrantType::TokenExchange,
        GrantType::JwtBearer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::ClientCredentials => "client_credentials",
            GrantType::RefreshToken => "refresh_token",
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::TokenExchange => TOKEN_EXCHANGE,
            GrantType::JwtBearer => JWT_BEARER,
        }
    }

    /// The short name an operator may type for a grant type named by a URN.
    pub fn alias(self) -> Option<&'static str> {
        match self {
            GrantType::TokenExchange => Some("token-exchange"),
            GrantType::JwtBearer => Some("jwt-bearer"),
            _ => None,
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == value)
    }
}

/// RFC 8693 §2.1's `grant_type`.
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// RFC 7523 §2.1's `grant_type`, here for identity assertions (ID-JAG).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// RFC 8693 §3: the only token type exchanged or issued here.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// How many `{"active": false}` answers (and other answers that tell whether a token
/// exists) a client may receive per window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum InactiveBudget {
    /// `rate_limit.inactive_per_client`.
    #[default]
    Configured,
    /// No limit: for a gateway that forwards the public's tokens.
    Off,
    Limit(u32),
}

/// How a client came to be registered: by an operator (`client create`), by itself at
/// `POST /register` (RFC 7591), or from a Client ID Metadata Document. Only operator
/// clients were vetted; the consent page says so of the others, and unused ones are
/// deleted (`registration.unused_client_days`).
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ClientOrigin {
    #[default]
    Operator,
    Dynamic,
    MetadataDocument,
}

impl ClientOrigin {
    pub const ALL: [ClientOrigin; 3] = [
        ClientOrigin::Operator,
        ClientOrigin::Dynamic,
        ClientOrigin::MetadataDocument,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ClientOrigin::Operator => "operator",
            ClientOrigin::Dynamic => "dynamic",
            ClientOrigin::MetadataDocument => "metadata_document",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == value)
    }

    /// Whether the client registered itself, unvetted by the operator.
    pub fn self_registered(self) -> bool {
        self != ClientOrigin::Operator
    }
}

/// What kind of application a self-registered client is (OpenID Connect Dynamic Client
/// Registration §2 `application_type`, as MCP 2026-07-28 asks of registration): `native`
/// runs on the user's device and returns to a loopback or private-use redirect URI,
/// `web` is a web site with https redirect URIs.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ApplicationType {
    Native,
    Web,
}

impl ApplicationType {
    pub const ALL: [ApplicationType; 2] = [ApplicationType::Native, ApplicationType::Web];

    pub fn as_str(self) -> &'static str {
        match self {
            ApplicationType::Native => "native",
            ApplicationType::Web => "web",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == value)
    }
}

/// An OAuth error code, in a JSON error body (RFC 6749 §5.2, RFC 7591 §3.2.2, RFC 6750
/// §3.1) or an error redirect to a client (OAuth 2.1 §4.1.2.1): RFC 6749's codes,
/// RFC 8707's `invalid_target`, `slow_down` and `temporarily_unavailable` for refusals to
/// answer now, and `not_found` for paths this server does not serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    SlowDown,
    TemporarilyUnavailable,
    NotFound,
    ServerError,
    InvalidGrant,
    InvalidScope,
    UnsupportedGrantType,
    InvalidTarget,
    UnauthorizedClient,
    InvalidRedirectUri,
    InvalidClientMetadata,
    InvalidToken,
    AccessDenied,
    UnsupportedResponseType,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::SlowDown => "slow_down",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorCode::NotFound => "not_found",
            ErrorCode::ServerError => "server_error",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::InvalidTarget => "invalid_target",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::InvalidRedirectUri => "invalid_redirect_uri",
            ErrorCode::InvalidClientMetadata => "invalid_client_metadata",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
        }
    }
}

#[cfg(test)]
mod error_code_tests {
    use super::ErrorCode;

    #[test]
    fn codes_read_as_they_serialize() {
        for code in [
            ErrorCode::InvalidRequest,
            ErrorCode::SlowDown,
            ErrorCode::AccessDenied,
            ErrorCode::UnsupportedResponseType,
            ErrorCode::InvalidClientMetadata,
        ] {
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, code.as_str());
        }
    }
}
