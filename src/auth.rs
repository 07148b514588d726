//! Password hashing, access tokens (HS256 JWT) and refresh tokens. No I/O.

use crate::domain::{SessionId, UserId};
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use base64::Engine;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub fn hash_password(password: &str) -> Result<String, anyhow::Error> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing failed: {e}"))
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok()
}

/// A one-time password to hand to a person on paper: ten letters and digits that cannot be
/// mistaken for one another (no 0/o, 1/l/i), as two groups of five (`k7m2p-9xw4c`).
pub fn one_time_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut rng = rand::rng();
    let mut out = String::with_capacity(11);
    for i in 0..10 {
        if i == 5 {
            out.push('-');
        }
        let k = (rng.next_u32() as usize) % ALPHABET.len();
        out.push(ALPHABET[k] as char);
    }
    out
}

/// A hash computed once, so that a login for an unknown user takes as long as a real one.
pub fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password("not a password").unwrap_or_default())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Supervisor,
    Canvasser,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Supervisor => "supervisor",
            Role::Canvasser => "canvasser",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "supervisor" => Some(Role::Supervisor),
            "canvasser" => Some(Role::Canvasser),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: UserId,
    pub role: Role,
    /// The login session (refresh token family); revoked sessions lose access at once.
    pub sid: SessionId,
    pub iat: i64,
    pub exp: i64,
}

/// The keys of access tokens: the current one signs, and the previous ones (a rotation's
/// old keys, kept until their tokens have expired) still verify. Each token names its key
/// in its header (`kid`: a hash of the key, which tells nothing of it).
#[derive(Clone)]
pub struct TokenKeys {
    current: (String, EncodingKey),
    decoding: Vec<(String, DecodingKey)>,
    validation: Validation,
}

/// A key's id: the first 8 bytes of SHA-256 over a label and the key, in hex.
pub fn key_id(secret: &SecretString) -> String {
    let digest = Sha256::digest(
        [
            b"gocua access token key ".as_slice(),
            secret.expose_secret().as_bytes(),
        ]
        .concat(),
    );
    hex::encode(&digest[..8])
}

impl TokenKeys {
    pub fn new(secret: &SecretString) -> TokenKeys {
        TokenKeys::rotated(secret, &[])
    }

    /// Signs with `secret`; also accepts tokens signed with one of `previous`.
    pub fn rotated(secret: &SecretString, previous: &[SecretString]) -> TokenKeys {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub", "iat"]);
        let decoding = std::iter::once(secret)
            .chain(previous)
            .map(|s| {
                let key = DecodingKey::from_secret(s.expose_secret().as_bytes());
                (key_id(s), key)
            })
            .collect();
        TokenKeys {
            current: (
                key_id(secret),
                EncodingKey::from_secret(secret.expose_secret().as_bytes()),
            ),
            decoding,
            validation,
        }
    }

    pub fn issue(&self, claims: &Claims) -> Result<String, anyhow::Error> {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.current.0.clone());
        Ok(encode(&header, claims, &self.current.1)?)
    }

    /// Only HS256 tokens signed with one of our keys and not expired pass (`alg: none`
    /// does not). A token without a key id (from before key ids) is checked with the
    /// current key; one naming an unknown key fails.
    pub fn verify(&self, token: &str) -> Result<Claims, jsonwebtoken::errors::Error> {
        let kid = jsonwebtoken::decode_header(token)?.kid;
        let key = match kid {
            Some(kid) => self.decoding.iter().find(|(id, _)| *id == kid),
            None => self.decoding.first(),
        }
        .ok_or(jsonwebtoken::errors::ErrorKind::InvalidSignature)?;
        decode::<Claims>(token, &key.1, &self.validation).map(|d| d.claims)
    }
}

/// A new opaque refresh token (256 random bits) and the hash stored in its place.
pub fn new_refresh_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_refresh_token(&token);
    (token, hash)
}

pub fn hash_refresh_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A random secret for demo mode, where none is configured.
pub fn random_secret() -> SecretString {
    let mut bytes = [0u8; 48];
    rand::rng().fill_bytes(&mut bytes);
    SecretString::from(hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify() {
        let h = hash_password("gocua-demo").unwrap();
        assert!(verify_password("gocua-demo", &h));
        assert!(!verify_password("gocua-demO", &h));
    }

    fn claims() -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims {
            sub: UserId(uuid::Uuid::from_u128(1)),
            role: Role::Admin,
            sid: SessionId(uuid::Uuid::from_u128(2)),
            iat: now,
            exp: now + 60,
        }
    }

    #[test]
    fn a_rotated_key_still_verifies_its_tokens_and_a_dropped_one_does_not() {
        let old = SecretString::from("an old key of thirty-two bytes or more");
        let new = SecretString::from("a new key of thirty-two bytes or more!!");
        let token = TokenKeys::new(&old).issue(&claims()).unwrap();
        let kid = jsonwebtoken::decode_header(&token).unwrap().kid.unwrap();
        assert_eq!((kid.len(), kid.clone()), (16, key_id(&old)));
        assert!(!kid.contains("old"), "the id tells nothing of the key");
        let rotated = TokenKeys::rotated(&new, std::slice::from_ref(&old));
        assert_eq!(rotated.verify(&token).unwrap().sid, claims().sid);
        let fresh = rotated.issue(&claims()).unwrap();
        assert_eq!(
            jsonwebtoken::decode_header(&fresh).unwrap().kid,
            Some(key_id(&new))
        );
        // Once the old key is dropped, its tokens fail; the new one's pass.
        let dropped = TokenKeys::new(&new);
        assert!(dropped.verify(&token).is_err());
        assert!(dropped.verify(&fresh).is_ok());
        // A token without a key id is checked with the current key.
        let bare = encode(
            &Header::new(Algorithm::HS256),
            &claims(),
            &EncodingKey::from_secret(new.expose_secret().as_bytes()),
        )
        .unwrap();
        assert!(dropped.verify(&bare).is_ok());
        assert!(TokenKeys::new(&old).verify(&bare).is_err());
    }
}
