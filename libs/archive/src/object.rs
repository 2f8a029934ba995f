//! Archive objects: a batch's gzip'd bytes on their way out (kept in memory while small,
//! spilled to an unlinked temporary file beyond one upload part, uploaded in one request or
//! as a multipart upload), and on their way back (read as a stream, checked, split into
//! lines). Memory stays within a few parts whatever the size of a batch.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, Write};

use bytes::Bytes;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{
    Attributes, ObjectStore, ObjectStoreExt, PutMode, PutMultipartOptions, PutOptions, PutPayload,
    WriteMultipart,
};
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::manifest::hex;

/// The default size of one part of a multipart upload, and the most a batch keeps in memory:
/// a larger batch goes to a temporary file and is uploaded in parts of this size.
pub const PART_SIZE: usize = 8 * 1024 * 1024;

/// The smallest part S3 accepts (all but the last part of an upload).
pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;

/// Parts of one upload in flight at once.
const PARTS_IN_FLIGHT: usize = 2;

/// A batch's compressed bytes, as the compressor wrote them.
#[derive(Debug)]
pub(crate) enum Body {
    Memory(Bytes),
    /// An unlinked temporary file (gone with the process, however it ends).
    File(File),
}

/// Where the compressor writes: memory up to `part_size` bytes, then a temporary file;
/// the SHA-256 and length are taken on the way.
pub(crate) struct Spill {
    part_size: usize,
    memory: Vec<u8>,
    file: Option<BufWriter<File>>,
    sha: Sha256,
    len: u64,
}

impl Spill {
    pub(crate) fn new(part_size: usize) -> Self {
        Self {
            part_size,
            memory: Vec::new(),
            file: None,
            sha: Sha256::new(),
            len: 0,
        }
    }

    /// The body, its SHA-256 (hex) and its length.
    pub(crate) fn finish(self) -> std::io::Result<(Body, String, u64)> {
        let sha = hex(&self.sha.finalize());
        let body = match self.file {
            Some(file) => Body::File(file.into_inner().map_err(|e| e.into_error())?),
            None => Body::Memory(Bytes::from(self.memory)),
        };
        Ok((body, sha, self.len))
    }
}

impl Write for Spill {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.sha.update(buf);
        self.len += buf.len() as u64;
        match &mut self.file {
            Some(file) => file.write_all(buf)?,
            None => {
                self.memory.extend_from_slice(buf);
                if self.memory.len() > self.part_size {
                    let file = tempfile::tempfile().map_err(|e| {
                        std::io::Error::new(
                            e.kind(),
                            format!(
                                "a batch over {} bytes gzip'd goes to a temporary file in {} (TMPDIR), which failed: {e}",
                                self.part_size,
                                std::env::temp_dir().display()
                            ),
                        )
                    })?;
                    let mut file = BufWriter::with_capacity(256 * 1024, file);
                    file.write_all(&self.memory)?;
                    self.memory = Vec::new();
                    self.file = Some(file);
                }
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.file {
            Some(file) => file.flush(),
            None => Ok(()),
        }
    }
}

/// How an object is written.
pub(crate) struct Upload<'a> {
    pub(crate) store: &'a dyn ObjectStore,
    pub(crate) path: &'a Path,
    pub(crate) attributes: Attributes,
    pub(crate) part_size: usize,
}

impl Upload<'_> {
    /// Writes `body`: create-only when `create` (a small body in one request, which fails
    /// with `AlreadyExists` if the object is there), else over whatever is there. A large
    /// body goes as a multipart upload, which S3 cannot make create-only: the caller checks
    /// first (the run lock keeps other writers away).
    pub(crate) async fn put(&self, body: Body, create: bool) -> Result<(), Error> {
        match body {
            Body::Memory(bytes) => self.put_small(bytes, create).await,
            Body::File(file) => self.put_parts(file).await,
        }
    }

    async fn put_small(&self, bytes: Bytes, create: bool) -> Result<(), Error> {
        let mode = if create {
            PutMode::Create
        } else {
            PutMode::Overwrite
        };
        let payload = PutPayload::from(bytes);
        let options = |attributes: Attributes| PutOptions {
            mode: mode.clone(),
            attributes,
            ..PutOptions::default()
        };
        let result = self
            .store
            .put_opts(self.path, payload.clone(), options(self.attributes.clone()))
            .await;
        let result = match result {
            // Stores without object attributes (a local directory): content type and
            // storage class do not apply there.
            Err(object_store::Error::NotImplemented { .. }) => {
                self.store
                    .put_opts(self.path, payload, options(Attributes::new()))
                    .await
            }
            other => other,
        };
        result.map(|_| ()).map_err(Error::from)
    }

    async fn put_parts(&self, file: File) -> Result<(), Error> {
        let options = |attributes: Attributes| PutMultipartOptions {
            attributes,
            ..PutMultipartOptions::default()
        };
        let upload = match self
            .store
            .put_multipart_opts(self.path, options(self.attributes.clone()))
            .await
        {
            Err(object_store::Error::NotImplemented { .. }) => {
                self.store
                    .put_multipart_opts(self.path, options(Attributes::new()))
                    .await?
            }
            other => other?,
        };
        let mut writer = WriteMultipart::new_with_chunk_size(upload, self.part_size);
        match send_parts(&mut writer, file, self.part_size).await {
            Ok(()) => writer.finish().await.map(|_| ()).map_err(Error::from),
            Err(e) => {
                // Parts already sent are dropped by the store; one that cannot be dropped
                // now is removed by the bucket's rule for incomplete uploads.
                if let Err(abort) = writer.abort().await {
                    tracing::warn!(error = %abort, path = %self.path, "Could not abort a multipart upload.");
                }
                Err(e)
            }
        }
    }
}

/// Reads `file` from the start in parts and hands them to `writer`, with at most
/// [`PARTS_IN_FLIGHT`] parts uploading at once.
async fn send_parts(
    writer: &mut WriteMultipart,
    mut file: File,
    part_size: usize,
) -> Result<(), Error> {
    file.rewind().map_err(io_error)?;
    loop {
        let (back, part) = tokio::task::spawn_blocking(move || {
            let mut part = Vec::with_capacity(part_size);
            let read = (&mut file).take(part_size as u64).read_to_end(&mut part);
            (file, read.map(|_| part))
        })
        .await
        .map_err(|e| Error::Compress(format!("reading the spilled batch: {e}")))?;
        file = back;
        let part = part.map_err(io_error)?;
        if part.is_empty() {
            return Ok(());
        }
        writer.wait_for_capacity(PARTS_IN_FLIGHT - 1).await?;
        writer.put(Bytes::from(part));
    }
}

/// How archives are compressed (`defaults.compression`): gzip, which every tool reads, or
/// zstd, smaller and faster. Readers tell them apart by their magic bytes, not by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    #[default]
    Gzip,
    Zstd,
}

impl Codec {
    /// The extension of its objects.
    pub fn extension(self) -> &'static str {
        match self {
            Codec::Gzip => "jsonl.gz",
            Codec::Zstd => "jsonl.zst",
        }
    }

    /// Its `Content-Encoding`.
    pub fn encoding(self) -> &'static str {
        match self {
            Codec::Gzip => "gzip",
            Codec::Zstd => "zstd",
        }
    }

    /// The levels it takes, and the level used when the config sets none: gzip's 1 (about a
    /// tenth larger than 6 at a third of the CPU), zstd's 3 (its own default).
    pub fn levels(self) -> (std::ops::RangeInclusive<u32>, u32) {
        match self {
            Codec::Gzip => (0..=9, 1),
            Codec::Zstd => (1..=19, 3),
        }
    }
}

/// A batch's JSON lines being compressed into a [`Spill`].
pub(crate) enum Compressor {
    Gzip(flate2::write::GzEncoder<Spill>),
    Zstd(zstd::stream::write::Encoder<'static, Spill>),
}

impl Compressor {
    pub(crate) fn new(codec: Codec, level: Option<u32>, spill: Spill) -> std::io::Result<Self> {
        let level = level.unwrap_or(codec.levels().1);
        Ok(match codec {
            Codec::Gzip => Compressor::Gzip(flate2::write::GzEncoder::new(
                spill,
                flate2::Compression::new(level),
            )),
            Codec::Zstd => Compressor::Zstd(zstd::stream::write::Encoder::new(
                spill,
                i32::try_from(level).unwrap_or(3),
            )?),
        })
    }

    pub(crate) fn write_all(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            Compressor::Gzip(gz) => gz.write_all(data),
            Compressor::Zstd(zst) => zst.write_all(data),
        }
    }

    pub(crate) fn finish(self) -> std::io::Result<Spill> {
        match self {
            Compressor::Gzip(gz) => gz.finish(),
            Compressor::Zstd(zst) => zst.finish(),
        }
    }
}

fn io_error(e: std::io::Error) -> Error {
    Error::Compress(format!("the spilled batch: {e}"))
}

/// A compressed object read back as a stream: its SHA-256, and its lines as they are
/// inflated. Gzip or zstd, told apart by the first bytes (archives of either setting, and
/// of versions before zstd, are read alike).
///
/// Bytes that do not inflate stop the lines but not the hash, so that a replaced object is
/// reported by its checksum rather than by where its compression broke.
pub(crate) struct Unzip {
    inflate: Inflate,
    sha: Sha256,
    lines: u64,
    bytes: u64,
    broken: Option<std::io::Error>,
}

enum Inflate {
    /// The first bytes, until there are enough to tell the format.
    Start(Vec<u8>),
    Gzip(flate2::write::GzDecoder<Vec<u8>>),
    Zstd(zstd::stream::write::Decoder<'static, Vec<u8>>),
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

impl Inflate {
    fn write_all(&mut self, data: &[u8]) -> std::io::Result<()> {
        if let Inflate::Start(head) = self {
            head.extend_from_slice(data);
            if head.len() < ZSTD_MAGIC.len() {
                return Ok(());
            }
            let head = std::mem::take(head);
            *self = if head.starts_with(&GZIP_MAGIC) {
                Inflate::Gzip(flate2::write::GzDecoder::new(Vec::new()))
            } else if head.starts_with(&ZSTD_MAGIC) {
                Inflate::Zstd(zstd::stream::write::Decoder::new(Vec::new())?)
            } else {
                return Err(std::io::Error::other("neither gzip nor zstd"));
            };
            return self.write_all(&head);
        }
        match self {
            Inflate::Gzip(gz) => gz.write_all(data),
            Inflate::Zstd(zst) => zst.write_all(data),
            Inflate::Start(_) => Ok(()),
        }
    }

    fn out(&mut self) -> &mut Vec<u8> {
        match self {
            Inflate::Start(head) => head,
            Inflate::Gzip(gz) => gz.get_mut(),
            Inflate::Zstd(zst) => zst.get_mut(),
        }
    }

    /// Ends the stream: every byte inflated, or why not.
    fn finish(&mut self) -> std::io::Result<()> {
        match self {
            Inflate::Start(_) => Err(std::io::Error::other("too short to be gzip or zstd")),
            Inflate::Gzip(gz) => gz.try_finish(),
            Inflate::Zstd(zst) => zst.flush(),
        }
    }
}

impl Unzip {
    pub(crate) fn new() -> Self {
        Self {
            inflate: Inflate::Start(Vec::new()),
            sha: Sha256::new(),
            lines: 0,
            bytes: 0,
            broken: None,
        }
    }

    /// Takes the next compressed bytes; `each` gets every line now complete (without its
    /// newline).
    pub(crate) fn push(&mut self, compressed: &[u8], each: &mut impl FnMut(&[u8])) {
        self.sha.update(compressed);
        self.bytes += compressed.len() as u64;
        if self.broken.is_none() {
            match self.inflate.write_all(compressed) {
                Ok(()) => self.take_lines(each),
                Err(e) => self.broken = Some(e),
            }
        }
    }

    fn take_lines(&mut self, each: &mut impl FnMut(&[u8])) {
        if matches!(self.inflate, Inflate::Start(_)) {
            return;
        }
        let out = self.inflate.out();
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', out) {
            each(&out[start..end]);
            self.lines += 1;
            start = end + 1;
        }
        out.drain(..start);
    }

    /// Ends the stream; `each` gets a last line without a newline, if any. Returns the
    /// SHA-256 (hex), the compressed length, and the number of lines unless the bytes were
    /// not (complete) gzip.
    pub(crate) fn finish(
        mut self,
        each: &mut impl FnMut(&[u8]),
    ) -> (String, u64, std::io::Result<u64>) {
        let lines = match self.broken.take() {
            Some(e) => Err(e),
            None => self.inflate.finish().map(|()| {
                self.take_lines(each);
                let rest = std::mem::take(self.inflate.out());
                if !rest.is_empty() {
                    each(&rest);
                    self.lines += 1;
                }
                self.lines
            }),
        };
        (hex(&self.sha.finalize()), self.bytes, lines)
    }

    /// Checks what [`Unzip::finish`] returned against the expected SHA-256 and line count.
    pub(crate) fn check(
        key: &str,
        (actual, _, lines): (String, u64, std::io::Result<u64>),
        sha256: &str,
        rows: u64,
    ) -> Result<(), Error> {
        let verify = |message: String| Error::Verify {
            key: key.to_owned(),
            message,
        };
        if actual != sha256 {
            return Err(verify(format!("SHA-256 is {actual}, expected {sha256}")));
        }
        match lines {
            Err(e) => Err(verify(format!("does not decompress: {e}"))),
            Ok(lines) if lines != rows => Err(verify(format!("{lines} rows, expected {rows}"))),
            Ok(_) => Ok(()),
        }
    }
}

/// Reads `key` as a stream and checks its SHA-256 and number of lines, through a small
/// buffer whatever the object's size.
pub(crate) async fn read_checked(
    store: &dyn ObjectStore,
    key: &str,
    sha256: &str,
    rows: u64,
) -> Result<(), Error> {
    let mut stream = store.get(&Path::from(key.to_owned())).await?.into_stream();
    let mut unzip = Unzip::new();
    while let Some(chunk) = stream.next().await {
        unzip.push(&chunk?, &mut |_| {});
    }
    Unzip::check(key, unzip.finish(&mut |_| {}), sha256, rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(data).unwrap();
        gz.finish().unwrap()
    }

    #[test]
    fn spill_stays_in_memory_up_to_a_part_then_goes_to_a_file() {
        let mut small = Spill::new(16);
        small.write_all(b"0123456789").unwrap();
        let (body, sha, len) = small.finish().unwrap();
        assert!(matches!(body, Body::Memory(ref b) if &b[..] == b"0123456789"));
        assert_eq!(sha, hex(&Sha256::digest(b"0123456789")));
        assert_eq!(len, 10);

        let mut large = Spill::new(16);
        let data: Vec<u8> = (0..100u8).collect();
        for chunk in data.chunks(7) {
            large.write_all(chunk).unwrap();
        }
        let (body, sha, len) = large.finish().unwrap();
        let Body::File(mut file) = body else {
            panic!("a body over one part must be spilled");
        };
        let mut back = Vec::new();
        file.rewind().unwrap();
        file.read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
        assert_eq!(sha, hex(&Sha256::digest(&data)));
        assert_eq!(len, 100);
    }

    #[test]
    fn unzip_yields_lines_across_chunk_boundaries() {
        let text = b"{\"a\":1}\n{\"b\":\"x\\ny\"}\n\n{\"c\":3}";
        let compressed = gzip(text);
        for step in [1, 3, 7, compressed.len()] {
            let mut unzip = Unzip::new();
            let mut lines: Vec<Vec<u8>> = Vec::new();
            for chunk in compressed.chunks(step) {
                unzip.push(chunk, &mut |l| lines.push(l.to_vec()));
            }
            let (sha, bytes, count) = unzip.finish(&mut |l| lines.push(l.to_vec()));
            let count = count.unwrap();
            assert_eq!(
                lines,
                vec![
                    b"{\"a\":1}".to_vec(),
                    b"{\"b\":\"x\\ny\"}".to_vec(),
                    Vec::new(),
                    b"{\"c\":3}".to_vec()
                ]
            );
            assert_eq!(count, 4);
            assert_eq!(bytes, compressed.len() as u64);
            assert_eq!(sha, hex(&Sha256::digest(&compressed)));
        }
    }

    #[test]
    fn what_is_not_gzip_is_reported_by_checksum_first() {
        let data = b"plain text, not gzip\n";
        let mut unzip = Unzip::new();
        unzip.push(data, &mut |_| {
            panic!("no line comes out of bytes that do not inflate")
        });
        let finished = unzip.finish(&mut |_| {});
        assert!(finished.2.is_err());
        let sha = hex(&Sha256::digest(data));
        let err = Unzip::check("k", finished, "0000", 1).unwrap_err();
        assert!(err.to_string().contains("SHA-256 is"), "{err}");
        let mut unzip = Unzip::new();
        unzip.push(data, &mut |_| {});
        let err = Unzip::check("k", unzip.finish(&mut |_| {}), &sha, 1).unwrap_err();
        assert!(err.to_string().contains("neither gzip nor zstd"), "{err}");
    }

    #[test]
    fn zstd_objects_read_back_as_gzip_ones_do() {
        let lines = b"{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n";
        let mut compressor = Compressor::new(Codec::Zstd, None, Spill::new(MIN_PART_SIZE)).unwrap();
        compressor.write_all(lines).unwrap();
        let (body, sha, len) = compressor.finish().unwrap().finish().unwrap();
        let Body::Memory(bytes) = body else {
            panic!("a small batch stays in memory")
        };
        assert_eq!(len, bytes.len() as u64);
        assert!(bytes.starts_with(&ZSTD_MAGIC));
        let mut unzip = Unzip::new();
        let mut seen = Vec::new();
        for piece in bytes.chunks(3) {
            unzip.push(piece, &mut |line| seen.push(line.to_vec()));
        }
        Unzip::check(
            "k",
            unzip.finish(&mut |line| seen.push(line.to_vec())),
            &sha,
            3,
        )
        .unwrap();
        assert_eq!(
            seen,
            [
                b"{\"a\":1}".to_vec(),
                b"{\"b\":2}".to_vec(),
                b"{\"c\":3}".to_vec()
            ]
        );
    }

    #[test]
    fn a_truncated_object_or_a_wrong_count_fails_the_check() {
        let compressed = gzip(b"{\"a\":1}\n{\"b\":2}\n");
        let cut = &compressed[..compressed.len() - 6];
        let mut unzip = Unzip::new();
        unzip.push(cut, &mut |_| {});
        let err = Unzip::check(
            "k",
            unzip.finish(&mut |_| {}),
            &hex(&Sha256::digest(cut)),
            2,
        );
        assert!(err.unwrap_err().to_string().contains("does not decompress"));
        let sha = hex(&Sha256::digest(&compressed));
        let mut unzip = Unzip::new();
        unzip.push(&compressed, &mut |_| {});
        let err = Unzip::check("k", unzip.finish(&mut |_| {}), &sha, 3).unwrap_err();
        assert!(err.to_string().contains("2 rows, expected 3"), "{err}");
        let mut unzip = Unzip::new();
        unzip.push(&compressed, &mut |_| {});
        Unzip::check("k", unzip.finish(&mut |_| {}), &sha, 2).unwrap();
    }
}
