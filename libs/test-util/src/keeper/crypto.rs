//! The Keeper protocol's cryptography, server side: ECIES transmission keys on P-256, AES-GCM
//! and AES-CBC framing, ECDSA signature checks, client ids and the two base64 alphabets.
//!
//! The framing follows the official SDKs (`crypto.py`): AES-GCM output is `IV(12) ‖ ciphertext ‖
//! tag(16)` without associated data; AES-CBC output is `IV(16) ‖ ciphertext` with PKCS#7 padding;
//! an ECIES blob is `ephemeral public point(65) ‖ AES-GCM(SHA-256(ECDH x coordinate))`.

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockEncryptMut, KeyIvInit};
use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{PublicKey, SecretKey};
use sha2::{Digest, Sha256, Sha512};

/// The length of every symmetric key in the protocol (AES-256).
pub(crate) const KEY_LEN: usize = 32;
/// The AES-GCM nonce length the SDKs use.
const GCM_IV_LEN: usize = 12;
/// The AES-GCM tag length.
const GCM_TAG_LEN: usize = 16;
/// The AES-CBC IV length.
const CBC_IV_LEN: usize = 16;
/// An uncompressed SEC1 P-256 point: `0x04 ‖ x ‖ y`.
const POINT_LEN: usize = 65;
/// The HMAC message that turns a one-time token into a client id (`core.py _init`).
const CLIENT_ID_MESSAGE: &[u8] = b"KEEPER_SECRETS_MANAGER_CLIENT_ID";

/// A symmetric key: an application, record, folder, file or transmission key.
pub(crate) type Key = [u8; KEY_LEN];

/// Why a piece of ciphertext, a key or a signature was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CryptoError {
    #[error("ciphertext is too short")]
    TooShort,
    #[error("ciphertext does not authenticate with this key")]
    Decrypt,
    #[error("not a 32-byte key")]
    KeyLength,
    #[error("not an uncompressed P-256 point")]
    Point,
    #[error("not a DER-encoded ECDSA signature")]
    SignatureEncoding,
    #[error("signature does not verify")]
    Signature,
    #[error("not valid base64")]
    Base64,
}

/// Fresh random bytes from the thread-local CSPRNG.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    rand::random()
}

/// A fresh random symmetric key.
pub(crate) fn random_key() -> Key {
    random_bytes()
}

/// A fresh P-256 key pair. The scalar comes from `rand` (whose `rand_core` differs from the
/// one `p256` 0.13 takes), and the rare out-of-range scalar is simply drawn again.
pub(crate) fn random_secret_key() -> SecretKey {
    loop {
        if let Ok(key) = SecretKey::from_slice(&random_bytes::<32>()) {
            return key;
        }
    }
}

/// The uncompressed SEC1 encoding of a public key, as the SDKs exchange it.
pub(crate) fn point_bytes(key: &PublicKey) -> Vec<u8> {
    key.to_encoded_point(false).as_bytes().to_vec()
}

/// Parses an uncompressed SEC1 point.
pub(crate) fn parse_point(bytes: &[u8]) -> Result<PublicKey, CryptoError> {
    if bytes.len() != POINT_LEN {
        return Err(CryptoError::Point);
    }
    PublicKey::from_sec1_bytes(bytes).map_err(|_| CryptoError::Point)
}

/// AES-256-GCM with a fresh random IV.
pub(crate) fn gcm_encrypt(key: &Key, plaintext: &[u8]) -> Vec<u8> {
    gcm_encrypt_with_iv(key, &random_bytes::<GCM_IV_LEN>(), plaintext)
}

/// AES-256-GCM with a given IV: `IV ‖ ciphertext ‖ tag`.
pub(crate) fn gcm_encrypt_with_iv(key: &Key, iv: &[u8; GCM_IV_LEN], plaintext: &[u8]) -> Vec<u8> {
    let cipher = Aes256Gcm::new(key.into());
    // Encryption only fails for plaintexts longer than GCM's 64 GiB limit.
    let sealed = cipher
        .encrypt(Nonce::from_slice(iv), plaintext)
        .unwrap_or_default();
    let mut out = Vec::with_capacity(GCM_IV_LEN + sealed.len());
    out.extend_from_slice(iv);
    out.extend_from_slice(&sealed);
    out
}

/// Opens `IV ‖ ciphertext ‖ tag`.
pub(crate) fn gcm_decrypt(key: &[u8], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if key.len() != KEY_LEN {
        return Err(CryptoError::KeyLength);
    }
    if data.len() < GCM_IV_LEN + GCM_TAG_LEN {
        return Err(CryptoError::TooShort);
    }
    let (iv, sealed) = data.split_at(GCM_IV_LEN);
    Aes256Gcm::new_from_slice(key)
        .map_err(|_| CryptoError::KeyLength)?
        .decrypt(Nonce::from_slice(iv), sealed)
        .map_err(|_| CryptoError::Decrypt)
}

/// AES-256-CBC with PKCS#7 padding and a fresh random IV: `IV ‖ ciphertext`.
pub(crate) fn cbc_encrypt(key: &Key, plaintext: &[u8]) -> Vec<u8> {
    let iv = random_bytes::<CBC_IV_LEN>();
    let sealed = cbc::Encryptor::<aes::Aes256>::new(key.into(), (&iv).into())
        .encrypt_padded_vec_mut::<Pkcs7>(plaintext);
    let mut out = Vec::with_capacity(CBC_IV_LEN + sealed.len());
    out.extend_from_slice(&iv);
    out.extend_from_slice(&sealed);
    out
}

/// Opens `IV ‖ ciphertext` and strips the PKCS#7 padding (what clients do with folder data).
#[cfg(test)]
pub(crate) fn cbc_decrypt(key: &Key, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
    use aes::cipher::BlockDecryptMut;
    if data.len() < 2 * CBC_IV_LEN || !data.len().is_multiple_of(CBC_IV_LEN) {
        return Err(CryptoError::TooShort);
    }
    let (iv, sealed) = data.split_at(CBC_IV_LEN);
    cbc::Decryptor::<aes::Aes256>::new(key.into(), iv.into())
        .decrypt_padded_vec_mut::<Pkcs7>(sealed)
        .map_err(|_| CryptoError::Decrypt)
}

/// The ECIES key for a shared point: SHA-256 of the ECDH x coordinate (no KDF salt or info,
/// as in `crypto.py public_encrypt`).
fn ecies_key(secret: &SecretKey, public: &PublicKey) -> Key {
    let shared = p256::ecdh::diffie_hellman(secret.to_nonzero_scalar(), public.as_affine());
    Sha256::digest(shared.raw_secret_bytes()).into()
}

/// Encrypts to `recipient` with a fresh ephemeral key: what a client does to a transmission key.
#[cfg(test)]
pub(crate) fn ecies_encrypt(recipient: &PublicKey, plaintext: &[u8]) -> Vec<u8> {
    ecies_encrypt_with(&random_secret_key(), recipient, plaintext)
}

/// [`ecies_encrypt`] with a given ephemeral key, for fixed test vectors.
#[cfg(test)]
pub(crate) fn ecies_encrypt_with(
    ephemeral: &SecretKey,
    recipient: &PublicKey,
    plaintext: &[u8],
) -> Vec<u8> {
    let key = ecies_key(ephemeral, recipient);
    let mut out = point_bytes(&ephemeral.public_key());
    out.extend_from_slice(&gcm_encrypt(&key, plaintext));
    out
}

/// Opens an ECIES blob addressed to `recipient`.
pub(crate) fn ecies_decrypt(recipient: &SecretKey, blob: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if blob.len() < POINT_LEN {
        return Err(CryptoError::TooShort);
    }
    let (point, sealed) = blob.split_at(POINT_LEN);
    let ephemeral = parse_point(point)?;
    gcm_decrypt(&ecies_key(recipient, &ephemeral), sealed)
}

/// Checks a DER-encoded ECDSA P-256/SHA-256 signature over `message`.
///
/// High-S signatures are accepted: the SDKs sign with OpenSSL (Python) or RustCrypto without
/// normalising S, and the real server accepts both.
pub(crate) fn verify_signature(
    signer: &PublicKey,
    message: &[u8],
    der: &[u8],
) -> Result<(), CryptoError> {
    let signature = Signature::from_der(der).map_err(|_| CryptoError::SignatureEncoding)?;
    VerifyingKey::from(signer)
        .verify(message, &signature)
        .map_err(|_| CryptoError::Signature)
}

/// The client id the SDKs derive from a one-time token's bytes: standard base64 of
/// HMAC-SHA512(key = token bytes, message = `KEEPER_SECRETS_MANAGER_CLIENT_ID`).
pub(crate) fn client_id(token: &[u8]) -> String {
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = <Hmac<Sha512> as Mac>::new_from_slice(token)
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(CLIENT_ID_MESSAGE);
    std_b64(&mac.finalize().into_bytes())
}

/// Standard base64 with padding: record keys, record and file data, signatures, client ids.
pub(crate) fn std_b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// URL-safe base64 without padding: tokens, UIDs, `encryptedAppKey`, `appData`, public keys.
pub(crate) fn url_b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes either alphabet, with or without padding, as the SDKs' own decoders tolerate.
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
