//! Use case: `POST /oauth/token`. This release: `grant_type=client_credentials` for the
//! Management API (machine-to-machine clients, RFC 6749 §4.4).

use crate::claims::AccessTokenClaims;
use crate::client::GRANT_CLIENT_CREDENTIALS;
use crate::clock::Timestamp;
use crate::ids::ClientId;
use crate::ports::{ClientStore, Freshness, SignError, StoreError, TokenSigner};
use crate::scope::Scope;
use crate::token::SecretHash;

/// Lifetime of Management API access tokens (Auth0's default).
pub const ACCESS_TOKEN_LIFETIME_SECS: i64 = 86_400;

/// Why `client_credentials` refused or failed. The descriptions are what the client reads;
/// `rt_http::oauth` decides the status and the RFC 6749 code.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("Unauthorized")]
    InvalidClient,
    #[error("Grant type '{0}' not allowed for the client.")]
    UnauthorizedClient(&'static str),
    #[error("{0}")]
    AccessDenied(String),
    #[error("{0}")]
    InvalidScope(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot sign the access token")]
    Sign(#[source] SignError),
}

/// Client credentials as presented: HTTP Basic (`client_secret_basic`) or in the body
/// (`client_secret_post`).
#[derive(Debug)]
pub struct ClientAuth {
    pub client_id: String,
    pub client_secret: Option<secrecy::SecretString>,
}

#[derive(Debug)]
pub struct Issued {
    pub access_token: String,
    pub expires_in: i64,
    pub scope: String,
}

/// What a `client_credentials` request asks for, as sent.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientCredentialsRequest<'a> {
    pub audience: Option<&'a str>,
    pub scope: Option<&'a str>,
}

/// `grant_type=client_credentials` for `audience = {issuer}api/v2/`.
pub async fn client_credentials<S: ClientStore, T: TokenSigner>(
    store: &S,
    signer: &T,
    issuer: &str,
    auth: &ClientAuth,
    p: ClientCredentialsRequest<'_>,
    now: Timestamp,
) -> Result<Issued, TokenError> {
    use secrecy::ExposeSecret as _;
    let id = ClientId::parse(&auth.client_id).map_err(|_| TokenError::InvalidClient)?;
    let client = store.get_client(&id, Freshness::Cached).await?;
    // Same answer for an unknown client and a wrong secret; the comparison is constant-time.
    let presented = auth.client_secret.as_ref().map(|s| SecretHash::of(s.expose_secret().as_bytes()));
    let client = match (client, presented) {
        (Some(c), Some(p)) if c.secret_hash.as_ref().is_some_and(|h| h.ct_eq(&p)) => c,
        _ => return Err(TokenError::InvalidClient),
    };
    if !client.allows_grant(GRANT_CLIENT_CREDENTIALS) {
        return Err(TokenError::UnauthorizedClient(GRANT_CLIENT_CREDENTIALS));
    }
    let api = format!("{issuer}api/v2/");
    let audience =
        p.audience.ok_or_else(|| TokenError::InvalidRequest("Missing required parameter: audience".into()))?;
    if audience != api {
        return Err(TokenError::AccessDenied(format!("Service not found: {audience}")));
    }
    let granted: Scope = client.management_scopes.iter().map(String::as_str).collect();
    if granted.is_empty() {
        return Err(TokenError::AccessDenied(format!(
            "Client is not authorized to access \"{api}\". Grant it Management API scopes first."
        )));
    }
    let scope = match p.scope {
        None => granted,
        Some(s) => {
            let asked = Scope::parse(s).map_err(|e| TokenError::InvalidScope(e.to_string()))?;
            if !asked.is_subset(&granted) {
                return Err(TokenError::AccessDenied(
                    "Client has not been granted scopes: ".to_owned()
                        + &asked.iter().filter(|s| !granted.contains(s)).collect::<Vec<_>>().join(","),
                ));
            }
            asked
        }
    };
    let iat = now.secs();
    let claims = AccessTokenClaims {
        iss: issuer.to_owned(),
        sub: format!("{}@clients", client.id),
        aud: api,
        iat,
        exp: iat + ACCESS_TOKEN_LIFETIME_SECS,
        scope: scope.to_string(),
        azp: client.id.to_string(),
        gty: Some("client-credentials".into()),
    };
    let access_token = signer.sign_access_token(&claims).map_err(TokenError::Sign)?;
    Ok(Issued { access_token, expires_in: ACCESS_TOKEN_LIFETIME_SECS, scope: claims.scope })
}
