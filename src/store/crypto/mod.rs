//! The cryptography of encrypted repositories, from `RustCrypto` crates; nothing here is
//! home-made beyond framing.
//!
//! - **Objects**: XChaCha20-Poly1305 in the STREAM construction (`aead::stream::StreamBE32`,
//!   the online authenticated encryption of Hoang, Reyhanitabar, Rogaway and Vizár): the
//!   plaintext is cut into 64 KiB chunks, each sealed with its position and a last-chunk flag,
//!   so a file of any size streams through bounded memory, a truncated, reordered or spliced
//!   object fails to open, and any range can be read and checked alone. The object's logical
//!   key is the associated data of every chunk: an object moved to another key fails too.
//!   Layout: `BCNE`, version `1`, a random 19-byte nonce prefix, then the sealed chunks (each
//!   16 bytes longer than its plaintext).
//! - **Names**: the objects of tables (by far the most, with the longest keys) are stored
//!   under a keyed digest of their key, HMAC-SHA256 truncated to 160 bits in lowercase
//!   base32hex: short (42 bytes, whatever the path: some S3 servers refuse long keys) and
//!   showing neither names nor the shape of a table's directory tree. Every other key (PIT
//!   records, locks, verification records) is sealed segment by segment with AES-256-SIV
//!   (deterministic authenticated encryption, RFC 5297), its parent path as associated data,
//!   so it can be listed and read back. The first segment of a longer key is one of bcn's own
//!   layout words (`pits`, `tables`, `locks`, ...) and stays in the clear, so that the store
//!   beneath can tell records from locks (S3 Object Lock retains the former only).
//! - **Keys**: the two master keys are random; each user key (a passphrase stretched with
//!   Argon2id, or a raw 32-byte key through HKDF-SHA256) wraps them with XChaCha20-Poly1305.

use aes_siv::siv::Aes256Siv;
use chacha20poly1305::aead::stream::{NewStream, StreamBE32, StreamPrimitive};
use chacha20poly1305::aead::{Aead, KeyInit, OsRng, rand_core::RngCore};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use data_encoding::BASE64;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Magic bytes of a sealed object.
pub const MAGIC: &[u8; 4] = b"BCNE";
/// Version byte of the object layout.
const VERSION: u8 = 1;
/// Length of the STREAM nonce prefix (24-byte `XChaCha` nonce minus the 5-byte counter/flag).
const NONCE_PREFIX: usize = 19;
/// Bytes before the first chunk.
pub const HEADER: usize = MAGIC.len() + 1 + NONCE_PREFIX;
/// Plaintext bytes per chunk.
pub const CHUNK: usize = 64 * 1024;
/// Bytes a chunk's seal adds.
pub const TAG: usize = 16;
/// Longest encoded segment before it is split: file names are at most 255 bytes, and some
/// stores (s3s-fs) add to them for their temporary files.
const SEGMENT_PIECE: usize = 120;
/// Ends every piece of a split segment but its last.
const CONTINUED: char = '~';

/// Why something could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The object or name does not open with this repository's keys: damaged, truncated,
    /// moved to another key, or not made by this repository.
    #[error(
        "{0} does not open with the repository's key: damaged, truncated or not written by this repository"
    )]
    Damaged(&'static str),
    /// The object is not in the layout bcn writes.
    #[error("not an object of an encrypted repository ({0})")]
    Format(&'static str),
    /// The user key opens none of the repository's key files.
    #[error("the key given opens none of the repository's keys")]
    WrongKey,
    /// A key file or key setting is malformed.
    #[error("{0}")]
    Invalid(String),
}

/// The repository's two master keys: objects and names.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MasterKeys {
    data: [u8; 32],
    names: [u8; 64],
}

impl std::fmt::Debug for MasterKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKeys(..)")
    }
}

/// How a user key becomes the key that wraps the master keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "algorithm", rename_all = "snake_case")]
pub enum Kdf {
    /// A passphrase through Argon2id.
    Argon2id {
        /// Base64 salt.
        salt: String,
        /// Memory in KiB.
        m_cost: u32,
        /// Iterations.
        t_cost: u32,
        /// Lanes.
        p_cost: u32,
    },
    /// A raw 32-byte key (`raw:` + base64) through HKDF-SHA256.
    Raw {
        /// Base64 salt.
        salt: String,
    },
}

/// One key file of a repository (`keys/<id>.json`): the master keys wrapped by one user key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyFile {
    /// Its id (also its object name).
    pub id: String,
    /// When it was added.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Host and user that added it, for `bcn key list`.
    #[serde(default)]
    pub created_by: String,
    /// How the user key is stretched.
    pub kdf: Kdf,
    /// Base64 of the 24-byte nonce followed by the sealed master keys.
    pub wrapped: String,
}

/// The plain JSON inside a wrapped key.
#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct WrappedJson {
    data: String,
    names: String,
}

/// A user key as given in the plan or on the command line: a passphrase, or `raw:` followed
/// by the base64 of 32 random bytes.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct UserKey(String);

impl std::fmt::Debug for UserKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UserKey(..)")
    }
}

impl UserKey {
    /// Wraps a key given as text; trailing newlines (from a key file) are not part of it.
    pub fn new(text: &str) -> Result<Self, CryptoError> {
        let text = text.trim_end_matches(['\n', '\r']);
        if text.is_empty() {
            return Err(CryptoError::Invalid("the repository key is empty".into()));
        }
        if let Some(raw) = text.strip_prefix("raw:") {
            let bytes = BASE64
                .decode(raw.as_bytes())
                .map_err(|_| CryptoError::Invalid("a `raw:` key must be base64".into()))?;
            if bytes.len() != 32 {
                return Err(CryptoError::Invalid(format!(
                    "a `raw:` key must hold 32 bytes, this one holds {}",
                    bytes.len()
                )));
            }
        } else if text.len() < 8 {
            return Err(CryptoError::Invalid(
                "a repository passphrase must have at least 8 characters".into(),
            ));
        }
        Ok(Self(text.to_owned()))
    }

    /// A new KDF setting for this key, with a fresh salt.
    fn new_kdf(&self, cost: KdfCost) -> Kdf {
        let salt = BASE64.encode(&random::<16>());
        if self.0.starts_with("raw:") {
            Kdf::Raw { salt }
        } else {
            Kdf::Argon2id {
                salt,
                m_cost: cost.m_cost,
                t_cost: cost.t_cost,
                p_cost: 1,
            }
        }
    }

    /// The key-encryption key this user key gives under `kdf`.
    fn derive(&self, kdf: &Kdf) -> Result<[u8; 32], CryptoError> {
        let mut out = [0u8; 32];
        match kdf {
            Kdf::Argon2id {
                salt,
                m_cost,
                t_cost,
                p_cost,
            } => {
                let salt = decode64(salt, "salt")?;
                let params = argon2::Params::new(*m_cost, *t_cost, *p_cost, Some(32))
                    .map_err(|e| CryptoError::Invalid(format!("key file parameters: {e}")))?;
                argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
                    .hash_password_into(self.0.as_bytes(), &salt, &mut out)
                    .map_err(|e| CryptoError::Invalid(format!("stretching the passphrase: {e}")))?;
            }
            Kdf::Raw { salt } => {
                // A passphrase cannot open a key file made for a raw key.
                let Some(raw) = self.0.strip_prefix("raw:") else {
                    return Err(CryptoError::WrongKey);
                };
                let raw = decode64(raw, "raw key")?;
                let salt = decode64(salt, "salt")?;
                hkdf::Hkdf::<sha2::Sha256>::new(Some(&salt), &raw)
                    .expand(b"bcn repository key", &mut out)
                    .map_err(|_| CryptoError::Invalid("HKDF output length".into()))?;
            }
        }
        Ok(out)
    }
}

/// How expensive passphrase stretching is: strong by default, cheap in tests.
#[derive(Debug, Clone, Copy)]
pub struct KdfCost {
    /// Argon2 memory in KiB.
    pub m_cost: u32,
    /// Argon2 iterations.
    pub t_cost: u32,
}

impl Default for KdfCost {
    /// 64 MiB and 3 passes: about a quarter of a second here, once per run.
    fn default() -> Self {
        Self {
            m_cost: 64 * 1024,
            t_cost: 3,
        }
    }
}

fn decode64(text: &str, what: &'static str) -> Result<Vec<u8>, CryptoError> {
    BASE64
        .decode(text.as_bytes())
        .map_err(|_| CryptoError::Invalid(format!("key file: {what} is not base64")))
}

fn random<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    OsRng.fill_bytes(&mut out);
    out
}

impl MasterKeys {
    /// New random keys for a new repository.
    pub fn generate() -> Self {
        Self {
            data: random(),
            names: random(),
        }
    }

    /// A key file holding these keys, wrapped by `user`.
    pub fn wrap(
        &self,
        user: &UserKey,
        cost: KdfCost,
        created_by: &str,
    ) -> Result<KeyFile, CryptoError> {
        let kdf = user.new_kdf(cost);
        let mut kek = user.derive(&kdf)?;
        let cipher = XChaCha20Poly1305::new((&kek).into());
        kek.zeroize();
        let nonce = random::<24>();
        let inner = WrappedJson {
            data: BASE64.encode(&self.data),
            names: BASE64.encode(&self.names),
        };
        let mut plain =
            serde_json::to_vec(&inner).map_err(|e| CryptoError::Invalid(e.to_string()))?;
        let sealed = cipher
            .encrypt(XNonce::from_slice(&nonce), plain.as_slice())
            .map_err(|_| CryptoError::Invalid("sealing the master keys".into()))?;
        plain.zeroize();
        let mut wrapped = nonce.to_vec();
        wrapped.extend_from_slice(&sealed);
        #[expect(
            clippy::disallowed_methods,
            reason = "a key file's creation time is shown by `bcn key list`, nothing depends on it"
        )]
        let created_at = chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now());
        Ok(KeyFile {
            id: hex::encode(random::<8>()),
            created_at,
            created_by: created_by.to_owned(),
            kdf,
            wrapped: BASE64.encode(&wrapped),
        })
    }

    /// The master keys in `file`, if `user` opens it.
    pub fn unwrap(file: &KeyFile, user: &UserKey) -> Result<Self, CryptoError> {
        let wrapped = decode64(&file.wrapped, "wrapped keys")?;
        if wrapped.len() < 24 + TAG {
            return Err(CryptoError::Invalid(
                "key file: wrapped keys too short".into(),
            ));
        }
        let (nonce, sealed) = wrapped.split_at(24);
        let mut kek = match user.derive(&file.kdf) {
            Ok(k) => k,
            Err(CryptoError::WrongKey) => return Err(CryptoError::WrongKey),
            Err(e) => return Err(e),
        };
        let cipher = XChaCha20Poly1305::new((&kek).into());
        kek.zeroize();
        let mut plain = cipher
            .decrypt(XNonce::from_slice(nonce), sealed)
            .map_err(|_| CryptoError::WrongKey)?;
        let inner: WrappedJson =
            serde_json::from_slice(&plain).map_err(|e| CryptoError::Invalid(e.to_string()))?;
        plain.zeroize();
        let (mut data, mut names) = (
            decode64(&inner.data, "data key")?,
            decode64(&inner.names, "names key")?,
        );
        let keys = match (
            <[u8; 32]>::try_from(data.as_slice()),
            <[u8; 64]>::try_from(names.as_slice()),
        ) {
            (Ok(data), Ok(names)) => Self { data, names },
            _ => {
                return Err(CryptoError::Invalid(
                    "key file: master keys of the wrong size".into(),
                ));
            }
        };
        data.zeroize();
        names.zeroize();
        Ok(keys)
    }

    fn stream(&self, prefix: &[u8]) -> StreamBE32<XChaCha20Poly1305> {
        let aead = XChaCha20Poly1305::new((&self.data).into());
        StreamBE32::from_aead(aead, prefix.into())
    }

    /// A new sealer for one object stored under `key`.
    pub fn sealer(&self, key: &str) -> Sealer {
        let prefix = random::<NONCE_PREFIX>();
        Sealer {
            stream: self.stream(&prefix),
            aad: key.as_bytes().to_vec(),
            position: 0,
            header: Some(prefix),
        }
    }

    /// Seals a whole object.
    pub fn seal(&self, key: &str, plain: &[u8]) -> Vec<u8> {
        let mut sealer = self.sealer(key);
        let mut out = Vec::with_capacity(plain.len() + HEADER + TAG * (plain.len() / CHUNK + 1));
        let mut chunks = plain.chunks(CHUNK).peekable();
        if chunks.peek().is_none() {
            sealer.seal_into(&[], true, &mut out);
        }
        while let Some(chunk) = chunks.next() {
            sealer.seal_into(chunk, chunks.peek().is_none(), &mut out);
        }
        out
    }

    /// Opens a whole object stored under `key`.
    pub fn open(&self, key: &str, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let size = plain_size(sealed.len() as u64)
            .ok_or(CryptoError::Format("shorter than its header and one chunk"))?;
        self.open_chunks(
            key,
            &sealed[..HEADER],
            &sealed[HEADER..],
            0,
            chunk_count(size),
        )
    }

    /// Opens the chunks `first..` (`body` holds them, the last possibly short) of an object of
    /// `total` chunks, given its header.
    pub fn open_chunks(
        &self,
        key: &str,
        header: &[u8],
        body: &[u8],
        first: u64,
        total: u64,
    ) -> Result<Vec<u8>, CryptoError> {
        if header.len() != HEADER || &header[..MAGIC.len()] != MAGIC {
            return Err(CryptoError::Format("no BCNE header"));
        }
        if header[MAGIC.len()] != VERSION {
            return Err(CryptoError::Format(
                "an object layout this bcn does not know",
            ));
        }
        let stream = self.stream(&header[MAGIC.len() + 1..]);
        let mut out = Vec::with_capacity(body.len());
        for (i, sealed) in body.chunks(CHUNK + TAG).enumerate() {
            let position = first + i as u64;
            let counter =
                u32::try_from(position).map_err(|_| CryptoError::Format("too many chunks"))?;
            let start = out.len();
            out.extend_from_slice(sealed);
            stream
                .decrypt_in_place(
                    counter,
                    position + 1 == total,
                    key.as_bytes(),
                    &mut Tail {
                        vec: &mut out,
                        start,
                    },
                )
                .map_err(|_| CryptoError::Damaged("an object"))?;
        }
        Ok(out)
    }

    /// The keyed digest naming the object `key`: 32 lowercase base32hex characters (160 bits,
    /// so that no two of a repository's objects share one).
    ///
    /// # Panics
    ///
    /// Never: HKDF gives 32 bytes and HMAC takes keys of any length.
    pub fn digest_name(&self, key: &str) -> String {
        use hmac::Mac;
        let mut digest_key = zeroize::Zeroizing::new([0u8; 32]);
        hkdf::Hkdf::<sha2::Sha256>::new(None, &self.names)
            .expand(b"bcn object name digest", digest_key.as_mut())
            .expect("32 bytes is a valid HKDF-SHA256 length");
        let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(digest_key.as_ref())
            .expect("HMAC takes keys of any length");
        mac.update(key.as_bytes());
        let digest = mac.finalize().into_bytes();
        data_encoding::BASE32HEX_NOPAD
            .encode(&digest[..20])
            .to_ascii_lowercase()
    }

    fn siv(&self) -> Aes256Siv {
        Aes256Siv::new((&self.names).into())
    }

    /// The stored form of a logical key: each segment sealed with its parent path as
    /// associated data. A trailing `/` (a listing prefix) is kept.
    ///
    /// # Panics
    ///
    /// Never: AES-SIV seals any input, and base32 is ASCII.
    pub fn seal_name(&self, key: &str) -> String {
        let mut siv = self.siv();
        let (body, slash) = match key.strip_suffix('/') {
            Some(body) => (body, "/"),
            None => (key, ""),
        };
        if body.is_empty() {
            return String::new();
        }
        let mut parent = String::new();
        let mut out: Vec<String> = Vec::new();
        let mut segments = body.split('/').peekable();
        // The first segment of a longer key (or of a listing prefix, whose keys are longer)
        // is a layout word, not user data.
        if body.contains('/') || !slash.is_empty() {
            let first = segments.next().unwrap_or_default();
            out.push(first.to_owned());
            parent.push_str(first);
        }
        for segment in segments {
            let sealed = siv
                .encrypt([parent.as_bytes()], segment.as_bytes())
                .expect("AES-SIV seals any input");
            let encoded = data_encoding::BASE32HEX_NOPAD
                .encode(&sealed)
                .to_ascii_lowercase();
            let pieces: Vec<&str> = encoded
                .as_bytes()
                .chunks(SEGMENT_PIECE)
                .map(|c| std::str::from_utf8(c).expect("base32 is ASCII"))
                .collect();
            let last = pieces.len() - 1;
            for (i, piece) in pieces.into_iter().enumerate() {
                out.push(if i == last {
                    piece.to_owned()
                } else {
                    format!("{piece}{CONTINUED}")
                });
            }
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(segment);
        }
        out.join("/") + slash
    }

    /// The logical key of a stored name made by [`MasterKeys::seal_name`].
    pub fn open_name(&self, stored: &str) -> Result<String, CryptoError> {
        let mut siv = self.siv();
        let mut parent = String::new();
        let mut pending = String::new();
        let mut pieces = stored.split('/').peekable();
        if let Some((first, _)) = stored.split_once('/')
            && !first.ends_with(CONTINUED)
        {
            pieces.next();
            parent.push_str(first);
        }
        for piece in pieces {
            if let Some(part) = piece.strip_suffix(CONTINUED) {
                pending.push_str(part);
                continue;
            }
            pending.push_str(piece);
            let sealed = data_encoding::BASE32HEX_NOPAD
                .decode(pending.to_ascii_uppercase().as_bytes())
                .map_err(|_| CryptoError::Format("a name that is not base32hex"))?;
            let plain = siv
                .decrypt([parent.as_bytes()], &sealed)
                .map_err(|_| CryptoError::Damaged("a name"))?;
            let segment = String::from_utf8(plain).map_err(|_| CryptoError::Damaged("a name"))?;
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(&segment);
            pending.clear();
        }
        if !pending.is_empty() {
            return Err(CryptoError::Format("a name cut after a continued piece"));
        }
        Ok(parent)
    }
}

/// Seals the chunks of one object in order.
pub struct Sealer {
    stream: StreamBE32<XChaCha20Poly1305>,
    aad: Vec<u8>,
    position: u32,
    /// The header, until written.
    header: Option<[u8; NONCE_PREFIX]>,
}

impl Sealer {
    /// Appends the header (first call only) and `chunk` sealed at the next position.
    ///
    /// # Panics
    ///
    /// After 2³² chunks (256 TiB), which no object reaches.
    pub fn seal_into(&mut self, chunk: &[u8], last: bool, out: &mut Vec<u8>) {
        if let Some(prefix) = self.header.take() {
            out.extend_from_slice(MAGIC);
            out.push(VERSION);
            out.extend_from_slice(&prefix);
        }
        let start = out.len();
        out.extend_from_slice(chunk);
        self.stream
            .encrypt_in_place(
                self.position,
                last,
                &self.aad,
                &mut Tail { vec: out, start },
            )
            .expect("a chunk of at most 64 KiB always seals");
        self.position = self
            .position
            .checked_add(1)
            .expect("fewer than 2^32 chunks");
    }
}

/// The bytes of a vector from `start` on: the buffer a chunk is sealed or opened in, where it
/// lands in the output (no buffer of its own, no copy back).
struct Tail<'a> {
    vec: &'a mut Vec<u8>,
    start: usize,
}

impl AsRef<[u8]> for Tail<'_> {
    fn as_ref(&self) -> &[u8] {
        &self.vec[self.start..]
    }
}

impl AsMut<[u8]> for Tail<'_> {
    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.vec[self.start..]
    }
}

impl chacha20poly1305::aead::Buffer for Tail<'_> {
    fn extend_from_slice(&mut self, other: &[u8]) -> chacha20poly1305::aead::Result<()> {
        self.vec.extend_from_slice(other);
        Ok(())
    }

    fn truncate(&mut self, len: usize) {
        self.vec.truncate(self.start + len);
    }
}

/// Chunks of an object of `plain` bytes (an empty object has one, empty).
pub fn chunk_count(plain: u64) -> u64 {
    plain.div_ceil(CHUNK as u64).max(1)
}

/// Stored size of an object of `plain` bytes.
pub fn sealed_size(plain: u64) -> u64 {
    HEADER as u64 + plain + TAG as u64 * chunk_count(plain)
}

/// Plaintext size of a stored object of `sealed` bytes; `None` when no object has that size.
pub fn plain_size(sealed: u64) -> Option<u64> {
    let body = sealed.checked_sub(HEADER as u64)?;
    if body < TAG as u64 {
        return None;
    }
    let chunks = body.div_ceil((CHUNK + TAG) as u64);
    Some(body - TAG as u64 * chunks)
}

#[cfg(test)]
mod tests;
