//! JWTs with `jsonwebtoken`: signing with RS256, PS256, ES256 or EdDSA (keys parsed once per
//! process), verification of our own access tokens by `kid`, the JWKS document, and secrets
//! derived from a designated key.
//!
//! [`SigningKeys`] holds the private keys of a rotation (the key document, [`keys`]): at most
//! one `current` key per algorithm signs, `next` and `previous` keys are published and
//! verify, `retired` ones are neither. [`VerifyingKeys`] is the published public half (from a
//! public key bundle, or [`SigningKeys::verifying_keys`]) and is all that a function which only
//! verifies tokens or publishes the JWKS needs: both give the same `kid`s and JWKs.
//!
//! Signing does not go through `jsonwebtoken::encode`: that asks a process-wide crypto provider
//! for a signer on every call, the stock aws-lc one re-parses and re-validates the key each
//! time (RSA: 0.56 ms on top of 0.22 ms for the signature, TOOLCHAIN.md), and a provider of our
//! own only applies if it is installed before anything else in the process touches
//! `jsonwebtoken` (the benchmark showed it losing that race: RS256 at 1.24 ms instead of
//! 0.66). Each key pair is parsed once, when the [`SigningKeys`] are loaded, and signs the
//! compact JWS itself ([`PrivateKey::sign`]: base64url of the header's and the claims' JSON,
//! joined by a dot, and of the signature; the header is `jsonwebtoken`'s). `jsonwebtoken`
//! verifies.

pub mod keys;

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::signature::{self as sig, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair};
use base64::Engine as _;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, EllipticCurveKeyParameters, EllipticCurveKeyType, Jwk,
    JwkSet, KeyAlgorithm, OctetKeyPairParameters, OctetKeyPairType, PublicKeyUse, RSAKeyParameters, RSAKeyType,
    ThumbprintHash,
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rt_domain::claims::{AccessTokenClaims, IdTokenClaims};
pub use rt_domain::client::SigningAlg;
use rt_domain::ports::{SignError, TokenSigner};
use secrecy::{ExposeSecret, SecretBox, SecretString};
use serde::Serialize;

pub use keys::{DocumentKey, KeyDocument, KeyState};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Never carries key material.
    #[error("signing key: {0}")]
    Parse(String),
    #[error("signing key: an RSA key must be at least 2048 bits")]
    TooSmall,
    #[error("could not generate a key")]
    Generate,
    /// The key document is malformed or breaks a rule (never quotes it).
    #[error("key document: {0}")]
    Document(String),
    /// Never carries key material: the input may have been a private key by mistake.
    #[error(
        "public keys: {0} (expected PEM public keys — SPKI `PUBLIC KEY`, or PKCS#1 `RSA PUBLIC KEY` — or the base64 body of one RSA key, or a JWK set)"
    )]
    PublicParse(String),
}

/// A parsed private key of one of the supported types.
enum Pair {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

impl Pair {
    fn fits(&self, alg: SigningAlg) -> bool {
        matches!(
            (self, alg),
            (Pair::Rsa(_), SigningAlg::RS256 | SigningAlg::PS256)
                | (Pair::Ec(_), SigningAlg::ES256)
                | (Pair::Ed(_), SigningAlg::EdDSA)
        )
    }

    /// The algorithm a key in a PEM bundle (which names none) signs with.
    fn default_alg(&self) -> SigningAlg {
        match self {
            Pair::Rsa(_) => SigningAlg::RS256,
            Pair::Ec(_) => SigningAlg::ES256,
            Pair::Ed(_) => SigningAlg::EdDSA,
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            Pair::Rsa(_) => "an RSA key",
            Pair::Ec(_) => "an EC P-256 key",
            Pair::Ed(_) => "an Ed25519 key",
        }
    }
}

fn jwt_alg(alg: SigningAlg) -> Algorithm {
    match alg {
        SigningAlg::RS256 => Algorithm::RS256,
        SigningAlg::PS256 => Algorithm::PS256,
        SigningAlg::ES256 => Algorithm::ES256,
        SigningAlg::EdDSA => Algorithm::EdDSA,
    }
}

fn our_alg(alg: Algorithm) -> Option<SigningAlg> {
    Some(match alg {
        Algorithm::RS256 => SigningAlg::RS256,
        Algorithm::PS256 => SigningAlg::PS256,
        Algorithm::ES256 => SigningAlg::ES256,
        Algorithm::EdDSA => SigningAlg::EdDSA,
        _ => return None,
    })
}

/// One private key of the document, parsed.
struct PrivateKey {
    state: KeyState,
    pair: Pair,
    public: PublicKey,
    /// Input of the derived secrets: PKCS#1 DER for RSA (what a single RSA key gave before
    /// the key document), PKCS#8 DER otherwise.
    der: SecretBox<Vec<u8>>,
}

impl PrivateKey {
    /// The same key for `jsonwebtoken` (the tests forge tokens with it).
    #[cfg(test)]
    fn encoding(&self) -> EncodingKey {
        let der = self.der.expose_secret();
        match self.pair {
            Pair::Rsa(_) => EncodingKey::from_rsa_der(der),
            Pair::Ec(_) => EncodingKey::from_ec_der(der),
            Pair::Ed(_) => EncodingKey::from_ed_der(der),
        }
    }

    /// The compact JWS of `claims`, signed by this key with its algorithm, its `kid` in the
    /// header.
    fn sign<C: Serialize>(&self, claims: &C) -> Result<String, SignError> {
        let alg = self.public.alg;
        let mut header = Header::new(jwt_alg(alg));
        header.kid = Some(self.public.kid.clone());
        let mut jws = json_part(&header)?;
        jws.push('.');
        jws.push_str(&json_part(claims)?);
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let failed = |_| SignError(format!("{} signature failed", alg.as_str()));
        let signature = match (&self.pair, alg) {
            (Pair::Rsa(kp), SigningAlg::RS256 | SigningAlg::PS256) => {
                let padding = if alg == SigningAlg::PS256 { &sig::RSA_PSS_SHA256 } else { &sig::RSA_PKCS1_SHA256 };
                let mut out = vec![0; kp.public_modulus_len()];
                kp.sign(padding, &rng, jws.as_bytes(), &mut out).map_err(failed)?;
                out
            }
            (Pair::Ec(kp), SigningAlg::ES256) => kp.sign(&rng, jws.as_bytes()).map_err(failed)?.as_ref().to_vec(),
            (Pair::Ed(kp), SigningAlg::EdDSA) => kp.sign(jws.as_bytes()).as_ref().to_vec(),
            (pair, _) => return Err(SignError(format!("{} cannot sign {}", pair.type_name(), alg.as_str()))),
        };
        jws.push('.');
        jws.push_str(&b64url(&signature));
        Ok(jws)
    }
}

/// The private keys of a rotation and their published public halves.
pub struct SigningKeys {
    keys: Vec<PrivateKey>,
    public: VerifyingKeys,
    /// Index in `keys` of the key that seeds the derived secrets.
    derive_from: usize,
    /// The document's `userinfo_alg`: a current key of it exists.
    userinfo: Option<SigningAlg>,
}

impl std::fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<String> = self
            .keys
            .iter()
            .map(|k| format!("{} {} {}", k.public.alg.as_str(), k.state.as_str(), k.public.kid))
            .collect();
        f.debug_struct("SigningKeys").field("keys", &keys).finish_non_exhaustive()
    }
}

impl SigningKeys {
    /// Parses the key document (a PEM key or bundle, or the JSON form: [`keys`]), once,
    /// and checks its rules: each key fits its algorithm, no key twice, at most one
    /// `current` key per algorithm and one for RS256 (every client's default), `derive_from`
    /// names a key of the document (required when it holds more than one key in JSON), and
    /// every algorithm with a published key has a current one (so that the algorithms the
    /// public keys show are the ones signed).
    pub fn from_pem(text: &SecretString) -> Result<Self, KeyError> {
        let doc = KeyDocument::parse(text)?;
        let json = text.expose_secret().trim_start().starts_with('{');
        let mut keys: Vec<PrivateKey> = Vec::with_capacity(doc.keys.len());
        for (i, k) in doc.keys.iter().enumerate() {
            let (pair, der) = private_key(&k.pem)?;
            let alg = k.alg.unwrap_or_else(|| pair.default_alg());
            if !pair.fits(alg) {
                return Err(KeyError::Document(format!(
                    "keys[{i}] is {} and cannot sign {}",
                    pair.type_name(),
                    alg.as_str()
                )));
            }
            let public = PublicKey::of_pair(alg, &pair)?;
            if let Some(j) = keys.iter().position(|o| o.public.kid == public.kid) {
                return Err(KeyError::Document(format!("keys[{j}] and keys[{i}] are the same key ({})", public.kid)));
            }
            if k.state == KeyState::Current && keys.iter().any(|o| o.state == KeyState::Current && o.public.alg == alg)
            {
                return Err(KeyError::Document(format!(
                    "two current {} keys: make one next or previous{}",
                    alg.as_str(),
                    if json { "" } else { " (use the JSON form to give states)" }
                )));
            }
            keys.push(PrivateKey { state: k.state, pair, public, der: SecretBox::new(Box::new(der)) });
        }
        if !keys.iter().any(|k| k.state == KeyState::Current && k.public.alg == SigningAlg::RS256) {
            return Err(KeyError::Document("no current RS256 key (the default algorithm of every client)".into()));
        }
        // The algorithms published are the algorithms signed: what the functions holding only
        // the public keys offer (Management API, discovery) can be signed.
        for (i, k) in keys.iter().enumerate() {
            let alg = k.public.alg;
            if k.state.published() && !keys.iter().any(|o| o.state == KeyState::Current && o.public.alg == alg) {
                return Err(KeyError::Document(format!(
                    "keys[{i}] is a {} {} key but no {} key is current: a new algorithm's first key is current at once, an algorithm is dropped by retiring its keys",
                    k.state.as_str(),
                    alg.as_str(),
                    alg.as_str()
                )));
            }
        }
        let derive_from = match &doc.derive_from {
            Some(kid) => keys
                .iter()
                .position(|k| k.public.kid == *kid)
                .ok_or_else(|| KeyError::Document(format!("derive_from {kid} is not a key of the document")))?,
            None if json && keys.len() > 1 => {
                return Err(KeyError::Document(
                    "derive_from is required with several keys: the kid of the key the derived secrets come from"
                        .into(),
                ));
            }
            None => 0,
        };
        // Published: current keys first, then next, then previous; by algorithm within each.
        let mut published: Vec<&PrivateKey> = keys.iter().filter(|k| k.state.published()).collect();
        published.sort_by_key(|k| (k.state, k.public.alg));
        let public = VerifyingKeys { keys: published.into_iter().map(|k| k.public.clone()).collect() };
        let signing = Self { keys, public, derive_from, userinfo: doc.userinfo_alg };
        if let Some(alg) = signing.userinfo
            && signing.current(alg).is_none()
        {
            let alg = alg.as_str();
            return Err(KeyError::Document(format!("userinfo_alg is {alg} but no {alg} key is current")));
        }
        Ok(signing)
    }

    fn current(&self, alg: SigningAlg) -> Option<&PrivateKey> {
        self.keys.iter().find(|k| k.state == KeyState::Current && k.public.alg == alg)
    }

    /// The `kid` of the current RS256 key (every client's default).
    pub fn kid(&self) -> &str {
        self.current(SigningAlg::RS256).map(|k| k.public.kid.as_str()).unwrap_or_default()
    }

    /// The `kid` of the key that signs `alg`, if one does.
    pub fn kid_for(&self, alg: SigningAlg) -> Option<&str> {
        self.current(alg).map(|k| k.public.kid.as_str())
    }

    /// The algorithms a current key signs, in [`SigningAlg::ALL`]'s order.
    pub fn algorithms(&self) -> Vec<SigningAlg> {
        SigningAlg::ALL.into_iter().filter(|a| self.current(*a).is_some()).collect()
    }

    /// The published public keys: what verifies these keys' tokens and is the JWKS.
    pub fn verifying_keys(&self) -> &VerifyingKeys {
        &self.public
    }

    /// Signs any claim set with the current RS256 key.
    pub fn sign<C: Serialize>(&self, claims: &C) -> Result<String, SignError> {
        self.sign_with(SigningAlg::RS256, claims)
    }

    /// Signs any claim set with the current key of `alg`, its `kid` in the header.
    pub fn sign_with<C: Serialize>(&self, alg: SigningAlg, claims: &C) -> Result<String, SignError> {
        self.current(alg).ok_or_else(|| SignError(format!("no current {} key", alg.as_str())))?.sign(claims)
    }

    /// A 32-byte secret derived (HKDF-SHA256) for `purpose` from the designated key
    /// (`derive_from`, or the only or first key of a PEM), so that one secret to manage
    /// yields the HMAC keys of the login transaction, sessions and refresh-token rotation,
    /// and a rotation of the signing keys keeps them.
    pub fn derive_secret(&self, purpose: &str) -> SecretBox<[u8; 32]> {
        use aws_lc_rs::hkdf;
        let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, b"refresh-token-service derived keys v1");
        let seed = self.keys.get(self.derive_from).map(|k| k.der.expose_secret().as_slice()).unwrap_or_default();
        let prk = salt.extract(seed);
        let info = [purpose.as_bytes()];
        let mut out = [0u8; 32];
        let ok = prk.expand(&info, hkdf::HKDF_SHA256).and_then(|okm| okm.fill(&mut out)).is_ok();
        if !ok {
            // HKDF-SHA256 can produce 32 bytes for any input; failure would be a bug in aws-lc.
            std::process::abort();
        }
        SecretBox::new(Box::new(out))
    }
}

impl TokenSigner for SigningKeys {
    fn sign_id_token(&self, alg: SigningAlg, claims: &IdTokenClaims) -> Result<String, SignError> {
        self.sign_with(alg, claims)
    }
    fn sign_access_token(&self, alg: SigningAlg, claims: &AccessTokenClaims) -> Result<String, SignError> {
        self.sign_with(alg, claims)
    }
    /// The document's `userinfo_alg`, else the client's algorithm. Named by the operator, never
    /// picked from the keys present: a key the signers hold is not yet one `/userinfo` verifies
    /// with (its public keys are a deploy parameter of their own, README *Signing keys*).
    /// Measured per signature by `cargo xtask bench`: EdDSA 12–16 µs, ES256 23–25 µs, RS256
    /// and PS256 350–370 µs.
    fn userinfo_alg(&self, client_alg: SigningAlg) -> SigningAlg {
        self.userinfo.unwrap_or(client_alg)
    }
}

/// The pair and the derivation input of one PEM private key.
fn private_key(pem: &SecretString) -> Result<(Pair, Vec<u8>), KeyError> {
    let (label, der) = decode_pem(pem.expose_secret()).map_err(KeyError::Parse)?;
    let der = SecretBox::new(Box::new(der));
    let der = der.expose_secret();
    let rsa = |pkcs1: &[u8]| -> Result<(Pair, Vec<u8>), KeyError> {
        let pair = RsaKeyPair::from_der(pkcs1).map_err(|e| KeyError::Parse(format!("RSA key: {e}")))?;
        if pair.public_modulus_len() < 256 {
            return Err(KeyError::TooSmall);
        }
        Ok((Pair::Rsa(pair), pkcs1.to_vec()))
    };
    match label.as_str() {
        "RSA PRIVATE KEY" => rsa(der),
        "EC PRIVATE KEY" => {
            let pair = EcdsaKeyPair::from_private_key_der(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, der)
                .map_err(|_| KeyError::Parse("an EC PRIVATE KEY must be on the P-256 curve".into()))?;
            let pkcs8 = pair.to_pkcs8v1().map_err(|_| KeyError::Parse("cannot encode the EC key".into()))?;
            let pkcs8 = pkcs8.as_ref().to_vec();
            Ok((Pair::Ec(pair), pkcs8))
        }
        "PRIVATE KEY" => {
            if RsaKeyPair::from_pkcs8(der).is_ok() {
                // The PKCS#1 key inside, as a single RSA key gave before the key document.
                let pkcs1 = EncodingKey::from_rsa_pem(pem.expose_secret().as_bytes())
                    .map_err(|e| KeyError::Parse(e.to_string()))?;
                rsa(pkcs1.as_bytes())
            } else if let Ok(pair) = EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, der) {
                Ok((Pair::Ec(pair), der.to_vec()))
            } else if let Ok(pair) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der) {
                Ok((Pair::Ed(pair), der.to_vec()))
            } else {
                Err(KeyError::Parse("a PRIVATE KEY must be RSA (2048 bits or more), EC P-256 or Ed25519".into()))
            }
        }
        _ => Err(KeyError::Parse("expected BEGIN PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY".into())),
    }
}

/// The label and DER body of one PEM block (armor lines included).
fn decode_pem(text: &str) -> Result<(String, Vec<u8>), String> {
    let rest = text.trim().strip_prefix("-----BEGIN ").ok_or("no BEGIN line")?;
    let (label, rest) = rest.split_once("-----").ok_or("no end of the BEGIN line")?;
    let body = rest.split_once("-----END ").map(|(body, _)| body).ok_or("no END line")?;
    let b64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD.decode(b64).map_err(|_| "the body is not base64")?;
    Ok((label.to_owned(), der))
}

/// One published public key: its algorithm, `kid` (RFC 7638 thumbprint) and JWK.
#[derive(Clone)]
pub struct PublicKey {
    alg: SigningAlg,
    kid: String,
    jwk: Jwk,
    decoding: DecodingKey,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey").field("alg", &self.alg).field("kid", &self.kid).finish_non_exhaustive()
    }
}

/// base64url of `value`'s JSON: a part of a compact JWS.
fn json_part<T: Serialize>(value: &T) -> Result<String, SignError> {
    serde_json::to_vec(value)
        .map(|json| b64url(&json))
        .map_err(|e| SignError(format!("cannot serialise the token: {e}")))
}

fn b64url(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

impl PublicKey {
    fn of_pair(alg: SigningAlg, pair: &Pair) -> Result<Self, KeyError> {
        match pair {
            Pair::Rsa(kp) => Self::rsa(alg, kp.public_key()),
            Pair::Ec(kp) => Self::ec(kp.public_key().as_ref()),
            Pair::Ed(kp) => Self::ed(kp.public_key().as_ref()),
        }
    }

    fn rsa(alg: SigningAlg, public: &aws_lc_rs::rsa::PublicKey) -> Result<Self, KeyError> {
        let c = sig::RsaPublicKeyComponents::<Vec<u8>>::from(public);
        if c.n.len() < 256 {
            return Err(KeyError::TooSmall);
        }
        let params = RSAKeyParameters { key_type: RSAKeyType::RSA, n: b64url(&c.n), e: b64url(&c.e) };
        Self::new(alg, AlgorithmParameters::RSA(params))
    }

    /// An uncompressed P-256 point (`04 || x || y`).
    fn ec(point: &[u8]) -> Result<Self, KeyError> {
        let bad = || KeyError::PublicParse("an EC key must be on the P-256 curve".into());
        sig::ParsedPublicKey::new(&sig::ECDSA_P256_SHA256_FIXED, point).map_err(|_| bad())?;
        let (x, y) = match (point.len(), point.first()) {
            (65, Some(4)) => (point.get(1..33).ok_or_else(bad)?, point.get(33..65).ok_or_else(bad)?),
            _ => return Err(bad()),
        };
        let params = EllipticCurveKeyParameters {
            key_type: EllipticCurveKeyType::EC,
            curve: EllipticCurve::P256,
            x: b64url(x),
            y: b64url(y),
        };
        Self::new(SigningAlg::ES256, AlgorithmParameters::EllipticCurve(params))
    }

    fn ed(x: &[u8]) -> Result<Self, KeyError> {
        sig::ParsedPublicKey::new(&sig::ED25519, x)
            .map_err(|_| KeyError::PublicParse("not an Ed25519 public key".into()))?;
        let params = OctetKeyPairParameters {
            key_type: OctetKeyPairType::OctetKeyPair,
            curve: EllipticCurve::Ed25519,
            x: b64url(x),
        };
        Self::new(SigningAlg::EdDSA, AlgorithmParameters::OctetKeyPair(params))
    }

    fn new(alg: SigningAlg, params: AlgorithmParameters) -> Result<Self, KeyError> {
        let key_algorithm = match alg {
            SigningAlg::RS256 => KeyAlgorithm::RS256,
            SigningAlg::PS256 => KeyAlgorithm::PS256,
            SigningAlg::ES256 => KeyAlgorithm::ES256,
            SigningAlg::EdDSA => KeyAlgorithm::EdDSA,
        };
        let mut jwk = Jwk {
            common: CommonParameters {
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: Some(key_algorithm),
                ..CommonParameters::default()
            },
            algorithm: params,
        };
        // RFC 7638 thumbprint (over the required members) as the kid: stable for the key.
        let kid = jwk.thumbprint(ThumbprintHash::SHA256).map_err(|e| KeyError::PublicParse(e.to_string()))?;
        jwk.common.key_id = Some(kid.clone());
        let decoding = DecodingKey::from_jwk(&jwk).map_err(|e| KeyError::PublicParse(e.to_string()))?;
        Ok(Self { alg, kid, jwk, decoding })
    }

    /// A JWK of a public key set: one of our algorithms and key types, and when it has a
    /// `kid`, the key's thumbprint.
    fn from_jwk(i: usize, jwk: &Jwk) -> Result<Self, KeyError> {
        let bad = |why: &str| KeyError::PublicParse(format!("keys[{i}]: {why}"));
        let alg = match jwk.common.key_algorithm {
            Some(KeyAlgorithm::RS256) => SigningAlg::RS256,
            Some(KeyAlgorithm::PS256) => SigningAlg::PS256,
            Some(KeyAlgorithm::ES256) => SigningAlg::ES256,
            Some(KeyAlgorithm::EdDSA) => SigningAlg::EdDSA,
            _ => return Err(bad("alg must be RS256, PS256, ES256 or EdDSA")),
        };
        let key = match (&jwk.algorithm, alg) {
            (AlgorithmParameters::RSA(p), SigningAlg::RS256 | SigningAlg::PS256) => {
                let n = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&p.n).map_err(|_| bad("bad n"))?;
                let e = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&p.e).map_err(|_| bad("bad e"))?;
                let der = sig::RsaPublicKeyComponents { n, e }.as_der().map_err(|_| bad("not an RSA key"))?;
                let public = aws_lc_rs::rsa::PublicKey::from_der(der.as_ref()).map_err(|_| bad("not an RSA key"))?;
                Self::rsa(alg, &public)?
            }
            (AlgorithmParameters::EllipticCurve(p), SigningAlg::ES256) if p.curve == EllipticCurve::P256 => {
                let d =
                    |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).map_err(|_| bad("bad x or y"));
                let mut point = vec![4];
                point.extend(d(&p.x)?);
                point.extend(d(&p.y)?);
                Self::ec(&point)?
            }
            (AlgorithmParameters::OctetKeyPair(p), SigningAlg::EdDSA) if p.curve == EllipticCurve::Ed25519 => {
                let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&p.x).map_err(|_| bad("bad x"))?;
                Self::ed(&x)?
            }
            _ => return Err(bad("the key type does not fit its alg")),
        };
        match &jwk.common.key_id {
            Some(kid) if *kid != key.kid => Err(bad("kid is not the key's RFC 7638 thumbprint")),
            _ => Ok(key),
        }
    }

    pub fn alg(&self) -> SigningAlg {
        self.alg
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn jwk(&self) -> &Jwk {
        &self.jwk
    }
}

/// The published public keys (current, next and previous, in that order): verify our
/// tokens, are the JWKS, hold nothing secret.
#[derive(Clone, Debug)]
pub struct VerifyingKeys {
    keys: Vec<PublicKey>,
}

impl VerifyingKeys {
    /// Parses the public keys of `SIGNING_PUBLIC_KEY_PEM`:
    ///
    /// - a JWK set (`{"keys": […]}`, what `/.well-known/jwks.json` and
    ///   [`Self::document`] give): each key with its `alg`, the only form for PS256;
    /// - one or more PEM public keys (`PUBLIC KEY`, SubjectPublicKeyInfo, what
    ///   `openssl pkey -pubout` writes; or `RSA PUBLIC KEY`, PKCS#1), an RSA key verifying
    ///   RS256, EC P-256 ES256, Ed25519 EdDSA;
    /// - the base64 body of one RSA public key without its armor lines (the single-line
    ///   template parameter of before).
    ///
    /// Whitespace within the base64 is ignored, so that any form fits on one line.
    pub fn from_public_pem(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        let keys = if text.starts_with('{') {
            let set: JwkSet = serde_json::from_str(text)
                .map_err(|e| KeyError::PublicParse(format!("not a JWK set (at column {})", e.column())))?;
            set.keys.iter().enumerate().map(|(i, k)| PublicKey::from_jwk(i, k)).collect::<Result<Vec<_>, _>>()?
        } else if text.starts_with("-----BEGIN ") {
            let mut keys = vec![];
            let mut rest = text;
            while let Some(start) = rest.find("-----BEGIN ") {
                let from = rest.get(start..).unwrap_or_default();
                let end = from.find("-----END ").ok_or_else(|| KeyError::PublicParse("no END line".into()))?;
                let after = from.get(end + "-----END ".len()..).unwrap_or_default();
                let close =
                    after.find("-----").ok_or_else(|| KeyError::PublicParse("no end of the END line".into()))?;
                let len = end + "-----END ".len() + close + "-----".len();
                keys.push(public_pem_block(from.get(..len).unwrap_or_default())?);
                rest = from.get(len..).unwrap_or_default();
            }
            keys
        } else {
            let b64: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            let der = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|_| KeyError::PublicParse("the body is not base64".into()))?;
            let public = aws_lc_rs::rsa::PublicKey::from_der(&der)
                .map_err(|_| KeyError::PublicParse("not a DER RSA public key".into()))?;
            vec![PublicKey::rsa(SigningAlg::RS256, &public)?]
        };
        if keys.is_empty() {
            return Err(KeyError::PublicParse("no key".into()));
        }
        for (i, k) in keys.iter().enumerate() {
            if keys.iter().skip(i + 1).any(|o| o.kid == k.kid) {
                return Err(KeyError::PublicParse(format!("the key {} is given twice", k.kid)));
            }
        }
        Ok(Self { keys })
    }

    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }

    pub fn find(&self, kid: &str) -> Option<&PublicKey> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    /// The `kid`s, comma-separated (logged at start).
    pub fn kids(&self) -> String {
        self.keys.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>().join(",")
    }

    /// The algorithms of the published keys, in [`SigningAlg::ALL`]'s order.
    pub fn algorithms(&self) -> Vec<SigningAlg> {
        SigningAlg::ALL.into_iter().filter(|a| self.keys.iter().any(|k| k.alg == *a)).collect()
    }

    /// The key set published at `/.well-known/jwks.json`.
    pub fn jwks(&self) -> JwkSet {
        JwkSet { keys: self.keys.iter().map(|k| k.jwk.clone()).collect() }
    }

    /// The JWK set on one line: the value of `SIGNING_PUBLIC_KEY_PEM` for these keys.
    pub fn document(&self) -> String {
        serde_json::to_string(&self.jwks()).unwrap_or_default()
    }

    /// Verifies a JWT we signed: one of our four algorithms (`none` and HS256 are refused by
    /// construction), a published key named by `kid` whose algorithm is the header's,
    /// `iss`, `aud`, and `exp` against `now` (epoch seconds; no leeway).
    pub fn verify<C: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        issuer: &str,
        audience: &str,
        now: i64,
    ) -> Result<C, VerifyError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
        let alg = our_alg(header.alg).ok_or(VerifyError::Algorithm)?;
        let key = header.kid.as_deref().and_then(|kid| self.find(kid)).ok_or(VerifyError::UnknownKey)?;
        if key.alg != alg {
            return Err(VerifyError::Algorithm);
        }
        let mut v = Validation::new(header.alg);
        v.leeway = 0;
        // Time is a parameter: `exp` is checked below against the caller's clock.
        v.validate_exp = false;
        v.set_issuer(&[issuer]);
        v.set_audience(&[audience]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let claims =
            jsonwebtoken::decode::<serde_json::Value>(token, &key.decoding, &v).map(|d| d.claims).map_err(|e| {
                use jsonwebtoken::errors::ErrorKind as K;
                match e.kind() {
                    K::InvalidIssuer => VerifyError::Issuer,
                    K::InvalidAudience => VerifyError::Audience,
                    K::InvalidSignature => VerifyError::Signature,
                    _ => VerifyError::Malformed,
                }
            })?;
        let exp = claims.get("exp").and_then(serde_json::Value::as_i64).ok_or(VerifyError::Malformed)?;
        if now >= exp {
            return Err(VerifyError::Expired);
        }
        serde_json::from_value(claims).map_err(|_| VerifyError::Malformed)
    }
}

/// One PEM public key: RSA (SPKI or PKCS#1), EC P-256 or Ed25519 (SPKI).
fn public_pem_block(block: &str) -> Result<PublicKey, KeyError> {
    let (label, der) = decode_pem(block).map_err(|e| KeyError::PublicParse(e.to_owned()))?;
    if label != "PUBLIC KEY" && label != "RSA PUBLIC KEY" {
        return Err(KeyError::PublicParse("expected BEGIN PUBLIC KEY or BEGIN RSA PUBLIC KEY".into()));
    }
    if let Ok(public) = aws_lc_rs::rsa::PublicKey::from_der(&der) {
        return PublicKey::rsa(SigningAlg::RS256, &public);
    }
    if let Ok(k) = DecodingKey::from_ec_pem(block.as_bytes())
        && let Ok(point) = k.try_get_as_bytes()
    {
        return PublicKey::ec(point);
    }
    if let Ok(k) = DecodingKey::from_ed_pem(block.as_bytes())
        && let Ok(x) = k.try_get_as_bytes()
    {
        return PublicKey::ed(x);
    }
    Err(KeyError::PublicParse("not an RSA, EC P-256 or Ed25519 public key".into()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("token is malformed")]
    Malformed,
    #[error("token algorithm is not the key's (RS256, PS256, ES256 or EdDSA)")]
    Algorithm,
    #[error("token was signed by an unknown key")]
    UnknownKey,
    #[error("invalid signature")]
    Signature,
    #[error("token has expired")]
    Expired,
    #[error("token has the wrong issuer")]
    Issuer,
    #[error("token has the wrong audience")]
    Audience,
}

/// A new private key for `alg` as PKCS#8 PEM (RSA: 2048 bits), for local development
/// (`cargo xtask dev`) and tests.
pub fn generate_key(alg: SigningAlg) -> Result<SecretString, KeyError> {
    let der: Vec<u8> = match alg {
        SigningAlg::RS256 | SigningAlg::PS256 => {
            let kp =
                aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).map_err(|_| KeyError::Generate)?;
            kp.as_der().map_err(|_| KeyError::Generate)?.as_ref().to_vec()
        }
        SigningAlg::ES256 => EcdsaKeyPair::generate(&sig::ECDSA_P256_SHA256_FIXED_SIGNING)
            .and_then(|kp| kp.to_pkcs8v1())
            .map_err(|_| KeyError::Generate)?
            .as_ref()
            .to_vec(),
        SigningAlg::EdDSA => {
            Ed25519KeyPair::generate().and_then(|kp| kp.to_pkcs8()).map_err(|_| KeyError::Generate)?.as_ref().to_vec()
        }
    };
    let der = SecretBox::new(Box::new(der));
    Ok(SecretString::from(pem("PRIVATE KEY", der.expose_secret())))
}

/// A new 2048-bit RSA key as PKCS#8 PEM.
pub fn generate_pem() -> Result<SecretString, KeyError> {
    generate_key(SigningAlg::RS256)
}

/// The `kid` of a private key (PEM) used for `alg`: what `derive_from` names.
pub fn kid_of(pem: &SecretString, alg: SigningAlg) -> Result<String, KeyError> {
    let (pair, _) = private_key(pem)?;
    if !pair.fits(alg) {
        return Err(KeyError::Document(format!("{} cannot sign {}", pair.type_name(), alg.as_str())));
    }
    Ok(PublicKey::of_pair(alg, &pair)?.kid)
}

/// `der` armored as PEM with `label`, 64 characters a line.
fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, serde::Deserialize, Debug, PartialEq)]
    struct C {
        iss: String,
        sub: String,
        aud: String,
        exp: i64,
    }

    fn claims(exp: i64) -> C {
        C { iss: "https://t/".into(), sub: "s".into(), aud: "a".into(), exp }
    }

    const FAR: i64 = 4_000_000_000;

    fn key(alg: SigningAlg) -> SecretString {
        generate_key(alg).expect("generate")
    }

    fn doc(keys: &[(SigningAlg, KeyState, &SecretString)], derive_from: Option<String>) -> SecretString {
        doc_for_userinfo(keys, derive_from, None)
    }

    fn doc_for_userinfo(
        keys: &[(SigningAlg, KeyState, &SecretString)],
        derive_from: Option<String>,
        userinfo_alg: Option<SigningAlg>,
    ) -> SecretString {
        KeyDocument {
            keys: keys
                .iter()
                .map(|(alg, state, pem)| DocumentKey {
                    alg: Some(*alg),
                    state: *state,
                    pem: SecretString::from(pem.expose_secret().to_owned()),
                })
                .collect(),
            derive_from,
            userinfo_alg,
        }
        .to_json()
    }

    fn all_algs() -> (SigningKeys, SecretString) {
        let rs = key(SigningAlg::RS256);
        let pems: Vec<(SigningAlg, SecretString)> = vec![
            (SigningAlg::RS256, SecretString::from(rs.expose_secret().to_owned())),
            (SigningAlg::PS256, key(SigningAlg::PS256)),
            (SigningAlg::ES256, key(SigningAlg::ES256)),
            (SigningAlg::EdDSA, key(SigningAlg::EdDSA)),
        ];
        let entries: Vec<(SigningAlg, KeyState, &SecretString)> =
            pems.iter().map(|(a, p)| (*a, KeyState::Current, p)).collect();
        let kid = kid_of(&rs, SigningAlg::RS256).expect("kid");
        let text = doc(&entries, Some(kid));
        (SigningKeys::from_pem(&text).expect("parse"), text)
    }

    #[test]
    fn userinfo_tokens_take_the_documents_userinfo_alg_else_the_clients_algorithm() {
        let (all, _) = all_algs();
        for alg in SigningAlg::ALL {
            assert_eq!(all.userinfo_alg(alg), alg, "keys present are not enough: the document names it");
        }
        let (rs, ed, es) = (key(SigningAlg::RS256), key(SigningAlg::EdDSA), key(SigningAlg::ES256));
        let kid = Some(kid_of(&rs, SigningAlg::RS256).expect("kid"));
        let entries = [(SigningAlg::RS256, KeyState::Current, &rs), (SigningAlg::EdDSA, KeyState::Current, &ed)];
        let text = doc_for_userinfo(&entries, kid.clone(), Some(SigningAlg::EdDSA));
        assert!(text.expose_secret().contains("\"userinfo_alg\": \"EdDSA\""));
        let named = SigningKeys::from_pem(&text).expect("parse");
        for alg in [SigningAlg::RS256, SigningAlg::EdDSA] {
            assert_eq!(named.userinfo_alg(alg), SigningAlg::EdDSA);
        }
        let claims = rt_domain::claims::AccessTokenClaims::for_userinfo(
            "https://t/",
            "u".into(),
            "c".into(),
            "openid".into(),
            0,
            FAR,
        );
        let t = named.sign_access_token(named.userinfo_alg(SigningAlg::RS256), &claims).expect("sign");
        let h = jsonwebtoken::decode_header(&t).expect("header");
        assert_eq!((h.alg, h.kid.as_deref()), (jsonwebtoken::Algorithm::EdDSA, named.kid_for(SigningAlg::EdDSA)));
        // Naming an algorithm without a current key stops the function at start.
        let entries = [(SigningAlg::RS256, KeyState::Current, &rs), (SigningAlg::ES256, KeyState::Current, &es)];
        let err = SigningKeys::from_pem(&doc_for_userinfo(&entries, kid.clone(), Some(SigningAlg::EdDSA))).unwrap_err();
        assert_eq!(
            err.to_string(),
            KeyError::Document("userinfo_alg is EdDSA but no EdDSA key is current".into()).to_string()
        );
        let bad = SecretString::from(
            text.expose_secret().replace("\"userinfo_alg\": \"EdDSA\"", "\"userinfo_alg\": \"HS256\""),
        );
        assert!(SigningKeys::from_pem(&bad).unwrap_err().to_string().contains("userinfo_alg must be"));
    }

    #[test]
    fn each_algorithm_signs_with_its_kid_and_verifies_by_kid_and_against_the_jwks() {
        let (keys, _) = all_algs();
        assert_eq!(keys.algorithms(), SigningAlg::ALL.to_vec());
        let v = keys.verifying_keys();
        let set = v.jwks();
        assert_eq!(set.keys.len(), 4);
        for alg in SigningAlg::ALL {
            let t = keys.sign_with(alg, &claims(FAR)).expect("sign");
            let h = jsonwebtoken::decode_header(&t).expect("header");
            assert_eq!(h.alg, jwt_alg(alg));
            let kid = keys.kid_for(alg).expect("a current key");
            assert_eq!(h.kid.as_deref(), Some(kid));
            let back: C = v.verify(&t, "https://t/", "a", 1_800_000_000).expect("verify");
            assert_eq!(back, claims(FAR));
            assert_eq!(v.verify::<C>(&t, "https://other/", "a", 0).err(), Some(VerifyError::Issuer));
            assert_eq!(v.verify::<C>(&t, "https://t/", "b", 0).err(), Some(VerifyError::Audience));
            assert_eq!(v.verify::<C>(&t, "https://t/", "a", FAR).err(), Some(VerifyError::Expired));
            // The JWKS entry alone verifies it too, as a relying party would.
            let jwk = set.find(kid).expect("kid in the set");
            let json = serde_json::to_value(jwk).expect("json");
            assert_eq!(json["alg"], alg.as_str());
            assert_eq!(json["use"], "sig");
            match alg {
                SigningAlg::RS256 | SigningAlg::PS256 => assert_eq!(json["kty"], "RSA"),
                SigningAlg::ES256 => {
                    assert_eq!((&json["kty"], &json["crv"]), (&"EC".into(), &"P-256".into()));
                    assert_eq!(json["x"].as_str().map(str::len), Some(43));
                    assert_eq!(json["y"].as_str().map(str::len), Some(43));
                }
                SigningAlg::EdDSA => {
                    assert_eq!((&json["kty"], &json["crv"]), (&"OKP".into(), &"Ed25519".into()));
                    assert_eq!(json["x"].as_str().map(str::len), Some(43));
                }
            }
            assert_eq!(jwk.thumbprint(ThumbprintHash::SHA256).ok().as_deref(), Some(kid), "RFC 7638 kid");
            let dk = DecodingKey::from_jwk(jwk).expect("jwk");
            let mut val = Validation::new(jwt_alg(alg));
            val.set_audience(&["a"]);
            assert!(jsonwebtoken::decode::<C>(&t, &dk, &val).is_ok(), "{alg:?}");
        }
        // The default is RS256.
        let t = keys.sign(&claims(FAR)).expect("sign");
        assert_eq!(jsonwebtoken::decode_header(&t).expect("header").kid.as_deref(), Some(keys.kid()));
    }

    #[test]
    fn refuses_none_hs256_and_an_algorithm_that_is_not_the_keys() {
        let (keys, _) = all_algs();
        let v = keys.verifying_keys();
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let body = b64(r#"{"iss":"https://t/","sub":"s","aud":"a","exp":4000000000}"#);
        let none = format!("{}.{}.", b64(r#"{"alg":"none","typ":"JWT"}"#), body);
        assert_eq!(v.verify::<C>(&none, "https://t/", "a", 0).err(), Some(VerifyError::Malformed));
        let ec_kid = keys.kid_for(SigningAlg::ES256).expect("ec").to_owned();
        let rs_kid = keys.kid_for(SigningAlg::RS256).expect("rs").to_owned();
        // HS256 keyed with a published JWK, naming the EC key.
        let n = serde_json::to_string(v.find(&ec_kid).expect("ec").jwk()).expect("json");
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some(ec_kid.clone());
        let hs = jsonwebtoken::encode(&h, &claims(FAR), &EncodingKey::from_secret(n.as_bytes())).expect("hs");
        assert_eq!(v.verify::<C>(&hs, "https://t/", "a", 0).err(), Some(VerifyError::Algorithm));
        // An RS256 token (validly signed by our RSA key) whose header names the EC key.
        let mut h = Header::new(Algorithm::RS256);
        h.kid = Some(ec_kid.clone());
        let rsa = keys.keys.iter().find(|k| k.public.kid == rs_kid).expect("rsa");
        let swapped = jsonwebtoken::encode(&h, &claims(FAR), &rsa.encoding()).expect("sign");
        assert_eq!(v.verify::<C>(&swapped, "https://t/", "a", 0).err(), Some(VerifyError::Algorithm));
        // PS256 header with the RS256 key's kid: same key type, another algorithm.
        let mut h = Header::new(Algorithm::PS256);
        h.kid = Some(rs_kid.clone());
        let pss = jsonwebtoken::encode(&h, &claims(FAR), &rsa.encoding()).expect("sign");
        assert_eq!(v.verify::<C>(&pss, "https://t/", "a", 0).err(), Some(VerifyError::Algorithm));
        // A right algorithm and kid, another key's signature.
        let other = SigningKeys::from_pem(&key(SigningAlg::RS256)).expect("other");
        let foreign = other.sign(&claims(FAR)).expect("sign");
        assert_eq!(v.verify::<C>(&foreign, "https://t/", "a", 0).err(), Some(VerifyError::UnknownKey));
        let mut h = Header::new(Algorithm::RS256);
        h.kid = Some(rs_kid);
        let forged = jsonwebtoken::encode(&h, &claims(FAR), &other.keys.first().expect("k").encoding()).expect("sign");
        assert_eq!(v.verify::<C>(&forged, "https://t/", "a", 0).err(), Some(VerifyError::Signature));
        let mut h = Header::new(Algorithm::RS256);
        h.kid = None;
        let no_kid = jsonwebtoken::encode(&h, &claims(FAR), &rsa.encoding()).expect("sign");
        assert_eq!(v.verify::<C>(&no_kid, "https://t/", "a", 0).err(), Some(VerifyError::UnknownKey));
    }

    /// The rotation of ARCHITECTURE.md: publish next, make it current, keep previous, retire.
    #[test]
    fn a_rotation_keeps_previous_tokens_valid_until_retired_and_the_derived_secrets_stable() {
        let (a, b) = (key(SigningAlg::RS256), key(SigningAlg::RS256));
        let kid_a = kid_of(&a, SigningAlg::RS256).expect("kid");
        let kid_b = kid_of(&b, SigningAlg::RS256).expect("kid");
        let seed = Some(kid_a.clone());
        let kids = |k: &SigningKeys| -> Vec<String> {
            k.verifying_keys().jwks().keys.iter().filter_map(|j| j.common.key_id.clone()).collect()
        };
        let before = SigningKeys::from_pem(&a).expect("single PEM");
        let token_a = before.sign(&claims(FAR)).expect("sign");

        // 1. Publish B as next: still signed by A, B in the JWKS.
        let next = SigningKeys::from_pem(&doc(
            &[(SigningAlg::RS256, KeyState::Current, &a), (SigningAlg::RS256, KeyState::Next, &b)],
            seed.clone(),
        ))
        .expect("next");
        assert_eq!(kids(&next), [kid_a.clone(), kid_b.clone()]);
        assert_eq!(next.kid(), kid_a, "a next key does not sign");
        let t = next.sign(&claims(FAR)).expect("sign");
        assert_eq!(jsonwebtoken::decode_header(&t).expect("h").kid, Some(kid_a.clone()));

        // 2. B current, A previous: B signs, A's tokens still verify.
        let rotated = SigningKeys::from_pem(&doc(
            &[(SigningAlg::RS256, KeyState::Current, &b), (SigningAlg::RS256, KeyState::Previous, &a)],
            seed.clone(),
        ))
        .expect("rotated");
        assert_eq!(kids(&rotated), [kid_b.clone(), kid_a.clone()]);
        assert_eq!(rotated.kid(), kid_b);
        let token_b = rotated.sign(&claims(FAR)).expect("sign");
        assert!(rotated.verifying_keys().verify::<C>(&token_a, "https://t/", "a", 0).is_ok(), "previous");
        assert!(rotated.verifying_keys().verify::<C>(&token_b, "https://t/", "a", 0).is_ok());

        // 3. A retired (kept only as the seed of the derived secrets): its tokens are refused.
        let retired = SigningKeys::from_pem(&doc(
            &[(SigningAlg::RS256, KeyState::Current, &b), (SigningAlg::RS256, KeyState::Retired, &a)],
            seed.clone(),
        ))
        .expect("retired");
        assert_eq!(kids(&retired), vec![kid_b.clone()], "exactly the non-retired keys");
        assert_eq!(
            retired.verifying_keys().verify::<C>(&token_a, "https://t/", "a", 0).err(),
            Some(VerifyError::UnknownKey)
        );
        assert!(retired.verifying_keys().verify::<C>(&token_b, "https://t/", "a", 0).is_ok());

        // The derived secrets never moved, from the single PEM of before to the end.
        for k in [&next, &rotated, &retired] {
            assert_eq!(k.derive_secret("x").expose_secret(), before.derive_secret("x").expose_secret());
        }
        // Seeded from B instead, they differ: the designation is what keeps them.
        let from_b = SigningKeys::from_pem(&doc(
            &[(SigningAlg::RS256, KeyState::Current, &b), (SigningAlg::RS256, KeyState::Retired, &a)],
            Some(kid_b),
        ))
        .expect("from b");
        assert_ne!(from_b.derive_secret("x").expose_secret(), before.derive_secret("x").expose_secret());
    }

    #[test]
    fn a_pem_bundle_is_all_current_and_pkcs1_derives_as_pkcs8() {
        let (rs, ec, ed) = (key(SigningAlg::RS256), key(SigningAlg::ES256), key(SigningAlg::EdDSA));
        let bundle = format!("{}\n{}{}", rs.expose_secret(), ec.expose_secret(), ed.expose_secret());
        let k = SigningKeys::from_pem(&SecretString::from(bundle)).expect("bundle");
        assert_eq!(k.algorithms(), [SigningAlg::RS256, SigningAlg::ES256, SigningAlg::EdDSA]);
        let single = SigningKeys::from_pem(&rs).expect("single");
        assert_eq!(k.derive_secret("p").expose_secret(), single.derive_secret("p").expose_secret(), "first key");
        assert_ne!(single.derive_secret("p").expose_secret(), single.derive_secret("q").expose_secret());
        // The same RSA key as PKCS#1 `RSA PRIVATE KEY`: same kid, same derived secrets.
        let pkcs1 = EncodingKey::from_rsa_pem(rs.expose_secret().as_bytes()).expect("rsa");
        let pkcs1 = SecretString::from(pem("RSA PRIVATE KEY", pkcs1.as_bytes()));
        let old = SigningKeys::from_pem(&pkcs1).expect("pkcs1");
        assert_eq!(old.kid(), single.kid());
        assert_eq!(old.derive_secret("p").expose_secret(), single.derive_secret("p").expose_secret());
    }

    #[test]
    fn the_public_keys_alone_have_the_same_kids_and_jwks_and_verify() {
        let (keys, _) = all_algs();
        let tokens: Vec<String> =
            SigningAlg::ALL.iter().map(|a| keys.sign_with(*a, &claims(FAR)).expect("sign")).collect();
        let document = keys.verifying_keys().document();
        assert!(!document.contains('\n'), "one line: a template parameter");
        let v = VerifyingKeys::from_public_pem(&document).expect("jwk set");
        assert_eq!(v.kids(), keys.verifying_keys().kids());
        assert_eq!(serde_json::to_value(v.jwks()).ok(), serde_json::to_value(keys.verifying_keys().jwks()).ok());
        for t in &tokens {
            assert!(v.verify::<C>(t, "https://t/", "a", 0).is_ok());
        }
        // PEM public keys (SPKI) of the RSA, EC and Ed25519 keys, on one line.
        let rs = key(SigningAlg::RS256);
        let (ec, ed) = (key(SigningAlg::ES256), key(SigningAlg::EdDSA));
        let der = |p: &SecretString| decode_pem(p.expose_secret()).expect("pem").1;
        let rs_pub = aws_lc_rs::rsa::KeyPair::from_pkcs8(&der(&rs)).expect("rsa").public_key().as_der().expect("der");
        let ec_pub = EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, &der(&ec))
            .expect("ec")
            .public_key()
            .as_der()
            .expect("der");
        let ed_pub = Ed25519KeyPair::from_pkcs8(&der(&ed)).expect("ed").public_key().as_der().expect("der");
        let bundle = [rs_pub.as_ref(), ec_pub.as_ref(), ed_pub.as_ref()]
            .iter()
            .map(|d| pem("PUBLIC KEY", d))
            .collect::<String>()
            .replace('\n', " ");
        let v = VerifyingKeys::from_public_pem(&bundle).expect("bundle");
        assert_eq!(v.algorithms(), [SigningAlg::RS256, SigningAlg::ES256, SigningAlg::EdDSA]);
        let private = SigningKeys::from_pem(&SecretString::from(format!(
            "{}{}{}",
            rs.expose_secret(),
            ec.expose_secret(),
            ed.expose_secret()
        )))
        .expect("private");
        assert_eq!(v.kids(), private.verifying_keys().kids());
        for alg in [SigningAlg::RS256, SigningAlg::ES256, SigningAlg::EdDSA] {
            let t = private.sign_with(alg, &claims(FAR)).expect("sign");
            assert!(v.verify::<C>(&t, "https://t/", "a", 0).is_ok(), "{alg:?}");
        }
        // The base64 body of one RSA key, and PKCS#1 `RSA PUBLIC KEY`, as before.
        let body: String = pem("PUBLIC KEY", rs_pub.as_ref()).lines().filter(|l| !l.starts_with("-----")).collect();
        let one = VerifyingKeys::from_public_pem(&body).expect("body");
        assert_eq!(one.kids(), private.kid());
        let pkcs1 = aws_lc_rs::rsa::PublicKey::from_der(rs_pub.as_ref()).expect("spki");
        let pkcs1 = VerifyingKeys::from_public_pem(&pem("RSA PUBLIC KEY", pkcs1.as_ref())).expect("pkcs1");
        assert_eq!(pkcs1.kids(), private.kid());
    }

    #[test]
    fn public_keys_are_refused_when_private_small_mismatched_or_garbage_and_no_key_material_is_echoed() {
        let private = generate_pem().expect("generate");
        let e = VerifyingKeys::from_public_pem(private.expose_secret()).expect_err("a private key");
        assert!(matches!(e, KeyError::PublicParse(_)), "{e}");
        let body: String = private.expose_secret().lines().filter(|l| !l.starts_with("-----")).collect();
        let e = VerifyingKeys::from_public_pem(&body).expect_err("a private key's body");
        assert!(!e.to_string().contains(body.get(..16).unwrap_or_default()), "{e}");
        for garbage in
            ["", "not a key", "-----BEGIN PUBLIC KEY-----\n!!!\n-----END PUBLIC KEY-----", "{}", "{\"keys\":[]}"]
        {
            assert!(VerifyingKeys::from_public_pem(garbage).is_err(), "{garbage}");
        }
        let mut n = vec![0xC3_u8; 128];
        if let Some(last) = n.last_mut() {
            *last = 0xC5;
        }
        let small = sig::RsaPublicKeyComponents { n, e: vec![1, 0, 1] }.as_der().expect("der");
        assert!(matches!(VerifyingKeys::from_public_pem(&pem("PUBLIC KEY", small.as_ref())), Err(KeyError::TooSmall)));
        // A JWK whose alg does not fit its type, or whose kid is not its thumbprint.
        let (keys, _) = all_algs();
        let mut set = serde_json::to_value(keys.verifying_keys().jwks()).expect("json");
        set["keys"][2]["alg"] = "RS256".into();
        assert!(VerifyingKeys::from_public_pem(&set.to_string()).is_err(), "EC key as RS256");
        let mut set = serde_json::to_value(keys.verifying_keys().jwks()).expect("json");
        set["keys"][0]["kid"] = "chosen".into();
        assert!(VerifyingKeys::from_public_pem(&set.to_string()).is_err(), "a kid that is not the thumbprint");
        let mut set = serde_json::to_value(keys.verifying_keys().jwks()).expect("json");
        set["keys"][0]["alg"] = "HS256".into();
        assert!(VerifyingKeys::from_public_pem(&set.to_string()).is_err());
    }

    #[test]
    fn key_documents_that_break_a_rule_are_refused_without_quoting_them() {
        let (rs, rs2, ec) = (key(SigningAlg::RS256), key(SigningAlg::RS256), key(SigningAlg::ES256));
        let kid = kid_of(&rs, SigningAlg::RS256).ok();
        let secret_part = rs.expose_secret().lines().nth(3).unwrap_or_default().to_owned();
        let cases: Vec<(SecretString, &str)> = vec![
            (SecretString::from("not a key"), "no PEM"),
            (SecretString::from(format!("{}{}", rs.expose_secret(), rs2.expose_secret())), "two current RS256"),
            (ec.clone(), "no current RS256"),
            (doc(&[(SigningAlg::RS256, KeyState::Current, &ec)], None), "cannot sign RS256"),
            (
                doc(
                    &[(SigningAlg::RS256, KeyState::Current, &rs), (SigningAlg::RS256, KeyState::Current, &rs2)],
                    kid.clone(),
                ),
                "two current RS256",
            ),
            (
                doc(&[(SigningAlg::RS256, KeyState::Current, &rs), (SigningAlg::RS256, KeyState::Next, &rs2)], None),
                "derive_from is required",
            ),
            (
                doc(
                    &[(SigningAlg::RS256, KeyState::Current, &rs), (SigningAlg::RS256, KeyState::Next, &rs)],
                    kid.clone(),
                ),
                "same key",
            ),
            (doc(&[(SigningAlg::RS256, KeyState::Current, &rs)], Some("nope".into())), "not a key of the document"),
            (doc(&[(SigningAlg::RS256, KeyState::Previous, &rs)], None), "no current RS256"),
            (
                doc(
                    &[(SigningAlg::RS256, KeyState::Current, &rs), (SigningAlg::ES256, KeyState::Next, &ec)],
                    kid.clone(),
                ),
                "no ES256 key is current",
            ),
            (
                SecretString::from(format!("{{\"keys\": \"{}\"}}", rs.expose_secret().replace('\n', "\\n"))),
                "not a key document",
            ),
            (
                SecretString::from(format!(
                    "{{\"keys\": [{{\"alg\": \"HS256\", \"state\": \"current\", \"pem\": \"{}\"}}]}}",
                    rs.expose_secret().replace('\n', "\\n")
                )),
                "alg must be",
            ),
            (
                SecretString::from(format!(
                    "{{\"keys\": [{{\"alg\": \"RS256\", \"state\": \"active\", \"pem\": \"{}\"}}]}}",
                    rs.expose_secret().replace('\n', "\\n")
                )),
                "state must be",
            ),
        ];
        for (text, why) in cases {
            let e = SigningKeys::from_pem(&text).expect_err(why).to_string();
            assert!(e.contains(why), "{why}: {e}");
            assert!(!e.contains(&secret_part), "{why}: the error quotes the key");
        }
        // PS256 needs the JSON form; given it, an RSA key signs PS256.
        let ps = doc(
            &[(SigningAlg::RS256, KeyState::Current, &rs), (SigningAlg::PS256, KeyState::Current, &rs2)],
            kid.clone(),
        );
        assert_eq!(SigningKeys::from_pem(&ps).expect("ps").algorithms(), [SigningAlg::RS256, SigningAlg::PS256]);
        // Signing an algorithm without a current key is an error, not another algorithm.
        let only_rs = SigningKeys::from_pem(&rs).expect("rs");
        assert!(only_rs.sign_with(SigningAlg::ES256, &claims(FAR)).is_err());
        assert!(format!("{only_rs:?}").contains(only_rs.kid()));
        assert!(!format!("{only_rs:?}").contains(&secret_part));
    }
}
