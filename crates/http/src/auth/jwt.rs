//! The [`TokenCodec`] for JWTs signed with a shared secret (HS256 by default, as CasareRPA's
//! `JWT_ALGORITHM` names it).

use baton_domain::Timestamp;
use baton_domain::auth::{Role, Username};
use baton_domain::session::{TenantId, TokenClaims, TokenCodec, TokenError, TokenKind};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// The HMAC algorithms a shared secret can sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HmacAlgorithm {
    Hs256,
    Hs384,
    Hs512,
}

impl HmacAlgorithm {
    fn jwt(self) -> Algorithm {
        match self {
            Self::Hs256 => Algorithm::HS256,
            Self::Hs384 => Algorithm::HS384,
            Self::Hs512 => Algorithm::HS512,
        }
    }
}

/// Signs and checks JWTs with one secret and one algorithm; any other algorithm in a token's
/// header (`none` included) is refused.
pub struct JwtCodec {
    algorithm: Algorithm,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl JwtCodec {
    pub fn new(secret: &[u8], algorithm: HmacAlgorithm) -> Self {
        let algorithm = algorithm.jwt();
        let mut validation = Validation::new(algorithm);
        // Expiry is checked below against the domain's clock, to the second, so it can be
        // tested and so every server applies the same rule.
        validation.validate_exp = false;
        validation.required_spec_claims = ["exp", "sub"].into_iter().map(String::from).collect();
        Self {
            algorithm,
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }
}

/// The JWT payload. Field names follow RFC 7519 where one exists.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    roles: Vec<String>,
    #[serde(rename = "type")]
    kind: String,
    jti: String,
    sid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    tenant_id: Option<String>,
    /// The user's creation instant in unix microseconds (see `TokenClaims::user_created_at`).
    ucr: i64,
    iat: i64,
    exp: i64,
}

impl TokenCodec for JwtCodec {
    fn encode(&self, claims: &TokenClaims) -> Result<String, TokenError> {
        let payload = Claims {
            sub: claims.subject.as_str().to_owned(),
            roles: claims.roles.iter().map(|r| r.as_str().to_owned()).collect(),
            kind: claims.kind.as_str().to_owned(),
            jti: claims.token_id.clone(),
            sid: claims.session_id.clone(),
            tenant_id: claims.tenant_id.as_ref().map(|t| t.as_str().to_owned()),
            ucr: i64::try_from(claims.user_created_at.unix_timestamp_nanos() / 1000)
                .map_err(|_| TokenError::Signing)?,
            iat: claims.issued_at.unix_timestamp(),
            exp: claims.expires_at.unix_timestamp(),
        };
        jsonwebtoken::encode(&Header::new(self.algorithm), &payload, &self.encoding)
            .map_err(|_| TokenError::Signing)
    }

    fn decode(&self, token: &str, now: Timestamp) -> Result<TokenClaims, TokenError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| TokenError::Invalid)?;
        let claims = data.claims;
        let instant = |secs| Timestamp::from_unix_timestamp(secs).map_err(|_| TokenError::Invalid);
        let expires_at = instant(claims.exp)?;
        // Everything below was written by this server; a signed token that fails to parse
        // means a key was shared with something else, and is refused like a forgery.
        let claims = TokenClaims {
            subject: Username::parse(claims.sub).map_err(|_| TokenError::Invalid)?,
            roles: claims
                .roles
                .iter()
                .map(|r| r.parse::<Role>())
                .collect::<Result<_, _>>()
                .map_err(|_| TokenError::Invalid)?,
            kind: TokenKind::parse(&claims.kind).ok_or(TokenError::Invalid)?,
            token_id: claims.jti,
            session_id: claims.sid,
            tenant_id: claims
                .tenant_id
                .map(TenantId::parse)
                .transpose()
                .map_err(|_| TokenError::Invalid)?,
            user_created_at: Timestamp::from_unix_timestamp_nanos(i128::from(claims.ucr) * 1000)
                .map_err(|_| TokenError::Invalid)?,
            issued_at: instant(claims.iat)?,
            expires_at,
        };
        if expires_at <= now {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T0: Timestamp = datetime!(2025-03-01 12:00 UTC);

    fn claims() -> TokenClaims {
        TokenClaims {
            subject: Username::parse("alice").unwrap(),
            roles: vec![Role::Admin, Role::Viewer],
            kind: TokenKind::Refresh,
            token_id: "jti-1".into(),
            session_id: "sid-1".into(),
            tenant_id: Some(TenantId::parse("acme".into()).unwrap()),
            user_created_at: T0 - time::Duration::microseconds(123_456_789),
            issued_at: T0,
            expires_at: T0 + time::Duration::hours(1),
        }
    }

    #[test]
    fn claims_round_trip() {
        let codec = JwtCodec::new(b"secret", HmacAlgorithm::Hs256);
        let token = codec.encode(&claims()).unwrap();
        assert_eq!(codec.decode(&token, T0).unwrap(), claims());
    }

    #[test]
    fn expiry_is_exclusive_of_the_expiry_second() {
        let codec = JwtCodec::new(b"secret", HmacAlgorithm::Hs256);
        let token = codec.encode(&claims()).unwrap();
        let end = T0 + time::Duration::hours(1);
        assert!(
            codec
                .decode(&token, end - time::Duration::seconds(1))
                .is_ok()
        );
        assert_eq!(codec.decode(&token, end), Err(TokenError::Expired));
    }

    #[test]
    fn other_keys_algorithms_and_tampering_are_invalid() {
        let codec = JwtCodec::new(b"secret", HmacAlgorithm::Hs256);
        let token = codec.encode(&claims()).unwrap();
        let other_key = JwtCodec::new(b"other", HmacAlgorithm::Hs256);
        assert_eq!(other_key.decode(&token, T0), Err(TokenError::Invalid));
        let other_alg = JwtCodec::new(b"secret", HmacAlgorithm::Hs512);
        assert_eq!(other_alg.decode(&token, T0), Err(TokenError::Invalid));

        // Flip one character of the payload: the signature no longer matches.
        let mut parts: Vec<String> = token.split('.').map(String::from).collect();
        let payload = &mut parts[1];
        let last = payload.pop().unwrap();
        payload.push(if last == 'A' { 'B' } else { 'A' });
        assert_eq!(codec.decode(&parts.join("."), T0), Err(TokenError::Invalid));
        assert_eq!(codec.decode("not-a-jwt", T0), Err(TokenError::Invalid));
    }

    #[test]
    fn unsigned_tokens_are_refused() {
        use base64_url_free::encode;
        let codec = JwtCodec::new(b"secret", HmacAlgorithm::Hs256);
        let header = encode(br#"{"alg":"none","typ":"JWT"}"#);
        let body = encode(
            br#"{"sub":"alice","roles":["admin"],"type":"access","jti":"j","sid":"s","ucr":0,"iat":0,"exp":9999999999}"#,
        );
        assert_eq!(
            codec.decode(&format!("{header}.{body}."), T0),
            Err(TokenError::Invalid)
        );
    }

    /// Base64url without padding, enough for building hostile tokens by hand.
    mod base64_url_free {
        pub fn encode(bytes: &[u8]) -> String {
            const ALPHABET: &[u8; 64] =
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let mut out = String::new();
            for chunk in bytes.chunks(3) {
                let n = chunk
                    .iter()
                    .enumerate()
                    .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
                for i in 0..=chunk.len() {
                    out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
                }
            }
            out
        }
    }
}
