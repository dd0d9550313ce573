pub mod binding;
pub mod key;
pub mod pkce;
