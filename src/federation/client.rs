//! The HTTP client the relying party speaks to providers with: our one reqwest, driven
//! by `openidconnect` through its `AsyncHttpClient` trait. It follows no redirects (a
//! provider's endpoints are where its metadata says), gives up after a timeout, and reads
//! at most [`MAX_RESPONSE_BYTES`] of an answer.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use axum::http;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use openidconnect::{AsyncHttpClient, HttpRequest, HttpResponse};

/// The most of a provider's answer read: metadata, key sets and token responses are a
/// few kilobytes.
pub const MAX_RESPONSE_BYTES: usize = 512 * 1024;

/// How long one request to a provider may take, connection included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a request to a provider failed. Shows no request or response content.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("request to the provider failed: {0}")]
    Request(#[source] reqwest::Error),
    #[error("the provider's answer is larger than {MAX_RESPONSE_BYTES} bytes")]
    TooLarge,
    #[error("the provider's answer could not be read")]
    Response,
}

impl From<reqwest::Error> for FetchError {
    fn from(err: reqwest::Error) -> Self {
        // Without the URL: a query may carry a code.
        FetchError::Request(err.without_url())
    }
}

/// A reqwest client set up for providers.
#[derive(Clone, Debug)]
pub struct HttpClient(reqwest::Client);

impl HttpClient {
    pub fn new() -> Result<Self, FetchError> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("introspectd/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(HttpClient(client))
    }

    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, FetchError> {
        let request = reqwest::Request::try_from(request)?;
        let response = self.0.execute(request).await?;
        if response
            .content_length()
            .is_some_and(|length| length > MAX_RESPONSE_BYTES as u64)
        {
            return Err(FetchError::TooLarge);
        }
        let (parts, body) = http::Response::from(response).into_parts();
        let body = match Limited::new(body, MAX_RESPONSE_BYTES).collect().await {
            Ok(collected) => collected.to_bytes().to_vec(),
            Err(err) if err.is::<LengthLimitError>() => return Err(FetchError::TooLarge),
            Err(err) => match err.downcast::<reqwest::Error>() {
                Ok(err) => return Err(FetchError::from(*err)),
                Err(_) => return Err(FetchError::Response),
            },
        };
        Ok(http::Response::from_parts(parts, body))
    }
}

impl<'c> AsyncHttpClient<'c> for HttpClient {
    type Error = FetchError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, FetchError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(self.send(request))
    }
}
