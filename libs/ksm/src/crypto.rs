//! The client side of the KSM cryptography (`crypto.py` of the official SDKs): AES-256-GCM
//! framed as `IV(12) ‖ ciphertext ‖ tag(16)`, AES-256-CBC framed as `IV(16) ‖ ciphertext` with
//! PKCS#7 padding, ECIES to the server's P-256 key (`ephemeral point(65) ‖ AES-GCM` under
//! `SHA-256(ECDH x)`), ECDSA P-256/SHA-256 signatures in DER, and both base64 alphabets.

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockDecryptMut, KeyIvInit};
use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{PublicKey, SecretKey};
use sha2::{Digest, Sha256, Sha512};

pub(crate) const KEY_LEN: usize = 32;
const GCM_IV_LEN: usize = 12;
const GCM_TAG_LEN: usize = 16;
const CBC_IV_LEN: usize = 16;

/// A symmetric key: application, record, folder, file or transmission key.
pub(crate) type Key = [u8; KEY_LEN];

/// Why ciphertext or key material was rejected; never carries the material itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("ciphertext is too short")]
    TooShort,
    #[error("ciphertext does not authenticate with this key")]
    Decrypt,
    #[error("not a 32-byte key")]
    KeyLength,
    #[error("not an uncompressed P-256 point")]
    Point,
    #[error("not a PKCS#8 P-256 private key")]
    PrivateKey,
    #[error("not valid base64")]
    Base64,
}

pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    rand::random()
}

/// A fresh P-256 key; the rare out-of-range scalar is drawn again.
pub(crate) fn random_secret_key() -> SecretKey {
    loop {
        if let Ok(key) = SecretKey::from_slice(&random_bytes::<32>()) {
            return key;
        }
    }
}

pub(crate) fn point_bytes(key: &PublicKey) -> Vec<u8> {
    key.to_encoded_point(false).as_bytes().to_vec()
}

pub(crate) fn parse_point(bytes: &[u8]) -> Result<PublicKey, CryptoError> {
    if bytes.len() != 65 {
        return Err(CryptoError::Point);
    }
    PublicKey::from_sec1_bytes(bytes).map_err(|_| CryptoError::Point)
}

pub(crate) fn key(bytes: &[u8]) -> Result<Key, CryptoError> {
    bytes.try_into().map_err(|_| CryptoError::KeyLength)
}

pub(crate) fn gcm_encrypt(key: &Key, plaintext: &[u8]) -> Vec<u8> {
    let iv = random_bytes::<GCM_IV_LEN>();
    // Encryption only fails beyond GCM's 64 GiB limit.
    let sealed = Aes256Gcm::new(key.into())
        .encrypt(Nonce::from_slice(&iv), plaintext)
        .unwrap_or_default();
    let mut out = Vec::with_capacity(GCM_IV_LEN + sealed.len());
    out.extend_from_slice(&iv);
    out.extend_from_slice(&sealed);
    out
}

pub(crate) fn gcm_decrypt(key: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if data.len() < GCM_IV_LEN + GCM_TAG_LEN {
        return Err(CryptoError::TooShort);
    }
    let (iv, sealed) = data.split_at(GCM_IV_LEN);
    Aes256Gcm::new_from_slice(key)
        .map_err(|_| CryptoError::KeyLength)?
        .decrypt(Nonce::from_slice(iv), sealed)
        .map_err(|_| CryptoError::Decrypt)
}

pub(crate) fn cbc_decrypt(key: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if data.len() < 2 * CBC_IV_LEN || !data.len().is_multiple_of(CBC_IV_LEN) {
        return Err(CryptoError::TooShort);
    }
    let (iv, sealed) = data.split_at(CBC_IV_LEN);
    cbc::Decryptor::<aes::Aes256>::new_from_slices(key, iv)
        .map_err(|_| CryptoError::KeyLength)?
        .decrypt_padded_vec_mut::<Pkcs7>(sealed)
        .map_err(|_| CryptoError::Decrypt)
}

/// Encrypts `plaintext` to `recipient` with a fresh ephemeral key.
pub(crate) fn ecies_encrypt(recipient: &PublicKey, plaintext: &[u8]) -> Vec<u8> {
    let ephemeral = random_secret_key();
    let shared = p256::ecdh::diffie_hellman(ephemeral.to_nonzero_scalar(), recipient.as_affine());
    let key: Key = Sha256::digest(shared.raw_secret_bytes()).into();
    let mut out = point_bytes(&ephemeral.public_key());
    out.extend_from_slice(&gcm_encrypt(&key, plaintext));
    out
}

/// A DER-encoded ECDSA P-256/SHA-256 signature of `message`.
pub(crate) fn sign(key: &SecretKey, message: &[u8]) -> Vec<u8> {
    let signature: Signature = SigningKey::from(key).sign(message);
    signature.to_der().as_bytes().to_vec()
}

/// The client id of a one-time token: HMAC-SHA512(token bytes, `KEEPER_SECRETS_MANAGER_CLIENT_ID`).
pub(crate) fn client_id(token: &[u8]) -> String {
    let mut mac = <Hmac<Sha512> as Mac>::new_from_slice(token)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(b"KEEPER_SECRETS_MANAGER_CLIENT_ID");
    STANDARD.encode(mac.finalize().into_bytes())
}

pub(crate) fn std_b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

pub(crate) fn url_b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes either alphabet, padded or not, as the SDKs' decoders tolerate.
pub(crate) fn decode_b64(text: &str) -> Result<Vec<u8>, CryptoError> {
    let normalised: String = text
        .trim()
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect();
    URL_SAFE_NO_PAD
        .decode(normalised)
        .map_err(|_| CryptoError::Base64)
}

pub(crate) fn private_key_from_pkcs8(der: &[u8]) -> Result<SecretKey, CryptoError> {
    use p256::pkcs8::DecodePrivateKey;
    SecretKey::from_pkcs8_der(der).map_err(|_| CryptoError::PrivateKey)
}

pub(crate) fn private_key_to_pkcs8(key: &SecretKey) -> Vec<u8> {
    use p256::pkcs8::EncodePrivateKey;
    key.to_pkcs8_der()
        .map(|d| d.as_bytes().to_vec())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn gcm_and_base64_round_trip() {
        let key = random_bytes::<32>();
        let sealed = gcm_encrypt(&key, b"hello");
        assert_eq!(gcm_decrypt(&key, &sealed).unwrap(), b"hello");
        assert_eq!(gcm_decrypt(&[0; 32], &sealed), Err(CryptoError::Decrypt));
        assert_eq!(decode_b64(&std_b64(&sealed)).unwrap(), sealed);
        assert_eq!(decode_b64(&url_b64(&sealed)).unwrap(), sealed);
    }

    #[test]
    fn pkcs8_round_trip() {
        let key = random_secret_key();
        let back = private_key_from_pkcs8(&private_key_to_pkcs8(&key)).unwrap();
        assert_eq!(back.to_bytes(), key.to_bytes());
    }
}
