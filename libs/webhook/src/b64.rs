//! Standard base64 (RFC 4648, padded) of response bodies: two characters per table lookup,
//! six bytes in and eight characters out per step (about 0.6 of the base64 crate's
//! instructions on our patches). The patch is the bulk of every injecting response, so this
//! is on the admission path.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The two characters of every 12-bit value.
static PAIRS: [[u8; 2]; 4096] = {
    let mut pairs = [[0u8; 2]; 4096];
    let mut i = 0;
    while i < 4096 {
        pairs[i] = [ALPHABET[i >> 6], ALPHABET[i & 63]];
        i += 1;
    }
    pairs
};

/// The characters of the 12 bits of `n` that start `shift` bits up.
fn pair(n: u64, shift: u32) -> &'static [u8; 2] {
    &PAIRS[(n >> shift) as usize & 0xfff]
}

/// Appends the base64 of `data` to `out`.
pub(crate) fn encode_into(data: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + data.len().div_ceil(3) * 4, b'=');
    let whole = data.len() / 6 * 6;
    let (head, tail) = out[start..].split_at_mut(whole / 3 * 4);
    for (s, d) in data[..whole].chunks_exact(6).zip(head.chunks_exact_mut(8)) {
        let n = u64::from_be_bytes([s[0], s[1], s[2], s[3], s[4], s[5], 0, 0]);
        d[0..2].copy_from_slice(pair(n, 52));
        d[2..4].copy_from_slice(pair(n, 40));
        d[4..6].copy_from_slice(pair(n, 28));
        d[6..8].copy_from_slice(pair(n, 16));
    }
    // Up to five bytes are left: three at a time, the last one or two padded with `=`.
    for (s, d) in data[whole..].chunks(3).zip(tail.chunks_mut(4)) {
        let byte = |i: usize| u64::from(s.get(i).copied().unwrap_or(0));
        let n = (byte(0) << 16) | (byte(1) << 8) | byte(2);
        d[0..2].copy_from_slice(pair(n, 12));
        let low = pair(n, 0);
        match s.len() {
            3 => d[2..4].copy_from_slice(low),
            2 => d[2] = low[0],
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;

    use super::encode_into;

    #[test]
    fn matches_the_standard_encoding_at_every_length() {
        let engine = &base64::engine::general_purpose::STANDARD;
        // Every byte value, in an order that is not sorted, at every length up to 300.
        let data: Vec<u8> = (0..300u32).map(|i| (i * 167 + 13) as u8).collect();
        for len in 0..data.len() {
            let mut out = b"prefix:".to_vec();
            encode_into(&data[..len], &mut out);
            assert_eq!(
                std::str::from_utf8(&out[7..]).unwrap(),
                engine.encode(&data[..len]),
                "length {len}"
            );
            assert_eq!(&out[..7], b"prefix:");
        }
    }

    #[test]
    fn known_vectors() {
        // RFC 4648, section 10.
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            let mut out = Vec::new();
            encode_into(plain.as_bytes(), &mut out);
            assert_eq!(out, encoded.as_bytes());
        }
    }
}
