//! The key document: the private keys of the signing functions, each with its algorithm and
//! its place in a rotation (ARCHITECTURE.md, *Signing keys and their rotation*).
//!
//! Two forms are read:
//!
//! - **PEM** (what the secret held before algorithms and rotation): one or more private keys
//!   concatenated, RSA (PKCS#1 or PKCS#8), EC P-256 (PKCS#8 or SEC1) or Ed25519 (PKCS#8). Each
//!   is `current`, its algorithm follows from its type (RSA: RS256, EC: ES256, Ed25519:
//!   EdDSA), and derived secrets come from the first.
//! - **JSON** (rotation, PS256): `{"keys": [{"alg", "state", "pem"}…], "derive_from": kid}`,
//!   `state` one of `next`, `current`, `previous`, `retired`.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::{KeyError, SigningAlg};

/// Where a key stands in a rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KeyState {
    /// Signs the tokens of its algorithm (one per algorithm); published; verifies.
    Current,
    /// Published so that relying parties' caches hold it before it signs; verifies (nothing
    /// is signed with it yet); does not sign.
    Next,
    /// Signed before the last rotation: published and verifies until its tokens have expired;
    /// does not sign.
    Previous,
    /// Neither published nor accepted; kept in the document only when it seeds the derived
    /// secrets (`derive_from`).
    Retired,
}

impl KeyState {
    pub const ALL: [Self; 4] = [Self::Current, Self::Next, Self::Previous, Self::Retired];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Next => "next",
            Self::Current => "current",
            Self::Previous => "previous",
            Self::Retired => "retired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether its public key is in the JWKS and verifies our tokens.
    pub fn published(self) -> bool {
        self != Self::Retired
    }
}

/// One private key of the document, as written (not yet parsed).
pub struct DocumentKey {
    pub alg: Option<SigningAlg>,
    pub state: KeyState,
    pub pem: SecretString,
}

/// The key document, as written (not yet parsed).
pub struct KeyDocument {
    pub keys: Vec<DocumentKey>,
    /// The `kid` of the key whose private half seeds the derived secrets.
    pub derive_from: Option<String>,
    /// The algorithm of the access tokens for `/userinfo` (`TokenSigner::userinfo_alg`); none:
    /// each client's own. Named only once its key is published where `/userinfo` verifies.
    pub userinfo_alg: Option<SigningAlg>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireDocument {
    keys: Vec<WireKey>,
    #[serde(default)]
    derive_from: Option<String>,
    #[serde(default)]
    userinfo_alg: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireKey {
    alg: String,
    state: String,
    pem: String,
}

impl KeyDocument {
    /// Reads either form (a document starting with `{` is JSON). Errors never quote the
    /// input: it holds private keys.
    pub fn parse(text: &SecretString) -> Result<Self, KeyError> {
        let text = text.expose_secret().trim();
        if !text.starts_with('{') {
            let blocks = pem_blocks(text)?;
            let keys = blocks.into_iter().map(|pem| DocumentKey { alg: None, state: KeyState::Current, pem }).collect();
            return Ok(Self { keys, derive_from: None, userinfo_alg: None });
        }
        let wire: WireDocument = serde_json::from_str(text).map_err(|e| {
            KeyError::Document(format!(
                "not a key document ({:?} at line {} column {}): expected {{\"keys\": [{{\"alg\", \"state\", \"pem\"}}], \"derive_from\", \"userinfo_alg\"}}",
                e.classify(),
                e.line(),
                e.column()
            ))
        })?;
        let mut keys = Vec::with_capacity(wire.keys.len());
        for (i, k) in wire.keys.into_iter().enumerate() {
            let alg = alg_named(&k.alg, &format!("keys[{i}].alg"))?;
            let state = KeyState::parse(&k.state).ok_or_else(|| {
                KeyError::Document(format!("keys[{i}].state must be next, current, previous or retired"))
            })?;
            let mut blocks = pem_blocks(&k.pem)?;
            let pem = match (blocks.pop(), blocks.is_empty()) {
                (Some(pem), true) => pem,
                _ => return Err(KeyError::Document(format!("keys[{i}].pem must hold exactly one private key"))),
            };
            keys.push(DocumentKey { alg: Some(alg), state, pem });
        }
        let userinfo_alg = wire.userinfo_alg.map(|name| alg_named(&name, "userinfo_alg")).transpose()?;
        Ok(Self { keys, derive_from: wire.derive_from, userinfo_alg })
    }

    /// The JSON form, for `cargo xtask dev` and the tests (it holds the private keys).
    pub fn to_json(&self) -> SecretString {
        let keys: Vec<serde_json::Value> = self
            .keys
            .iter()
            .map(|k| {
                serde_json::json!({
                    "alg": k.alg.unwrap_or_default().as_str(),
                    "state": k.state.as_str(),
                    "pem": k.pem.expose_secret(),
                })
            })
            .collect();
        let mut doc = serde_json::json!({ "keys": keys });
        if let (Some(kid), serde_json::Value::Object(o)) = (&self.derive_from, &mut doc) {
            o.insert("derive_from".into(), kid.clone().into());
        }
        if let (Some(alg), serde_json::Value::Object(o)) = (self.userinfo_alg, &mut doc) {
            o.insert("userinfo_alg".into(), alg.as_str().into());
        }
        SecretString::from(serde_json::to_string_pretty(&doc).unwrap_or_default())
    }
}

/// The algorithm a document's `field` names (JOSE's exact names).
fn alg_named(name: &str, field: &str) -> Result<SigningAlg, KeyError> {
    SigningAlg::parse(name).ok_or_else(|| KeyError::Document(format!("{field} must be RS256, PS256, ES256 or EdDSA")))
}

/// Each `-----BEGIN …-----` … `-----END …-----` block of `text`, armor included.
fn pem_blocks(text: &str) -> Result<Vec<SecretString>, KeyError> {
    let mut out = vec![];
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let from = rest.get(start..).unwrap_or_default();
        let end = from.find("-----END ").ok_or(KeyError::Document("a PEM block has no END line".into()))?;
        let after_end = from.get(end + "-----END ".len()..).unwrap_or_default();
        let close = after_end.find("-----").ok_or(KeyError::Document("a PEM END line is not closed".into()))?;
        let len = end + "-----END ".len() + close + "-----".len();
        out.push(SecretString::from(from.get(..len).unwrap_or_default().to_owned()));
        rest = from.get(len..).unwrap_or_default();
    }
    if out.is_empty() {
        return Err(KeyError::Document("no PEM private key (-----BEGIN PRIVATE KEY-----) found".into()));
    }
    Ok(out)
}
