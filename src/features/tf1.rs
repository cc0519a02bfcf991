//! A reader for TensorFlow 1 checkpoints (tensor bundles), written without TensorFlow.
//!
//! A checkpoint `PREFIX` is two files:
//! - `PREFIX.index`: a LevelDB-format table (sorted string table) mapping each tensor's name to a
//!   `BundleEntryProto` (dtype, shape, shard, offset, size, masked CRC32C). The empty key holds the
//!   `BundleHeaderProto` (shard count, endianness).
//! - `PREFIX.data-00000-of-0000N`: the tensors' raw little-endian bytes, back to back.
//!
//! Only what checkpoints of `tf.compat.v1.train.Saver` use is read: uncompressed table blocks,
//! whole (unsliced) float32 tensors; anything else is refused with a message naming the tensor.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A float32 tensor read from a checkpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct Tf1Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// A checkpoint file (`PREFIX.index` or a data shard) that could not be read or used.
#[derive(Debug, thiserror::Error)]
pub enum Tf1Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// An index whose table does not parse.
    #[error("{path}: {source}")]
    Index { path: PathBuf, source: IndexError },
    /// A bundle header that is missing or describes what this reader does not support.
    #[error("{path}: {reason}")]
    Header { path: PathBuf, reason: String },
    /// A tensor whose entry or bytes cannot be used.
    #[error("{path}: {tensor}: {reason}")]
    Tensor {
        path: PathBuf,
        tensor: String,
        reason: String,
    },
}

/// What is wrong in an index table's bytes (the caller names the file).
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// Bytes that are not a table, a block, a varint or a protocol buffer as expected.
    #[error("{0}")]
    Malformed(String),
    /// A tensor's entry that does not parse.
    #[error("{tensor}: {source}")]
    Entry {
        tensor: String,
        source: Box<IndexError>,
    },
}

fn malformed(reason: impl Into<String>) -> IndexError {
    IndexError::Malformed(reason.into())
}

/// One entry of the index: where a tensor's bytes are.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BundleEntry {
    pub dtype: u64,
    pub shape: Vec<usize>,
    pub shard_id: u64,
    pub offset: u64,
    pub size: u64,
    pub crc32c: Option<u32>,
    pub has_slices: bool,
}

/// TensorFlow's `DT_FLOAT`.
const DT_FLOAT: u64 = 1;
/// The table footer's magic number (LevelDB's).
const TABLE_MAGIC: u64 = 0xdb47_7524_8b80_fb57;

/// Reads every tensor of the checkpoint at `prefix` (`prefix.index` and its data shards).
pub fn read_checkpoint(prefix: &Path) -> Result<BTreeMap<String, Tf1Tensor>, Tf1Error> {
    let index_path = with_suffix(prefix, ".index");
    let index = std::fs::read(&index_path).map_err(|e| Tf1Error::Io {
        path: index_path.clone(),
        source: e,
    })?;
    let in_index = |source| Tf1Error::Index {
        path: index_path.clone(),
        source,
    };
    let entries = read_index(&index).map_err(in_index)?;
    let header = entries.get("").ok_or_else(|| Tf1Error::Header {
        path: index_path.clone(),
        reason: "no bundle header (empty key)".into(),
    })?;
    let (num_shards, big_endian) = parse_header(&header.1).map_err(in_index)?;
    if big_endian {
        return Err(Tf1Error::Header {
            path: index_path,
            reason: "big-endian checkpoints are not supported".into(),
        });
    }
    let mut shards: Vec<Option<Vec<u8>>> = vec![None; num_shards.max(1) as usize];
    let mut out = BTreeMap::new();
    for (name, (entry, _)) in entries.into_iter().filter(|(k, _)| !k.is_empty()) {
        let entry = entry.ok_or_else(|| tensor(&index_path, &name, "no entry".into()))?;
        if entry.dtype != DT_FLOAT {
            // Step counters (int64) and the like: not weights.
            continue;
        }
        if entry.has_slices {
            return Err(tensor(
                &index_path,
                &name,
                "sliced tensors are not supported".into(),
            ));
        }
        let shard = entry.shard_id as usize;
        if shard >= shards.len() {
            return Err(tensor(
                &index_path,
                &name,
                format!("shard {shard} of {num_shards}"),
            ));
        }
        let data_path = with_suffix(prefix, &format!(".data-{shard:05}-of-{num_shards:05}"));
        if shards[shard].is_none() {
            shards[shard] = Some(std::fs::read(&data_path).map_err(|e| Tf1Error::Io {
                path: data_path.clone(),
                source: e,
            })?);
        }
        let bytes = shards[shard].as_ref().expect("read above");
        let (start, end) = (entry.offset as usize, (entry.offset + entry.size) as usize);
        let raw = bytes.get(start..end).ok_or_else(|| {
            tensor(
                &data_path,
                &name,
                format!("bytes {start}..{end} past the end ({})", bytes.len()),
            )
        })?;
        if let Some(expected) = entry.crc32c {
            let got = mask_crc(crc32c(raw));
            if got != expected {
                return Err(tensor(
                    &data_path,
                    &name,
                    format!("checksum {got:08x}, the index says {expected:08x}"),
                ));
            }
        }
        let n: usize = entry.shape.iter().product();
        if raw.len() != n * 4 {
            return Err(tensor(
                &data_path,
                &name,
                format!("{} bytes for shape {:?}", raw.len(), entry.shape),
            ));
        }
        let data = raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        out.insert(
            name,
            Tf1Tensor {
                shape: entry.shape,
                data,
            },
        );
    }
    Ok(out)
}

fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn tensor(path: &Path, name: &str, reason: String) -> Tf1Error {
    Tf1Error::Tensor {
        path: path.to_path_buf(),
        tensor: name.to_string(),
        reason,
    }
}

/// Reads the index table: key -> (parsed entry, raw value). The header's entry is `None`.
#[allow(clippy::type_complexity)]
pub fn read_index(
    table: &[u8],
) -> Result<BTreeMap<String, (Option<BundleEntry>, Vec<u8>)>, IndexError> {
    if table.len() < 48 {
        return Err(malformed(format!(
            "{} bytes: too short for a table footer",
            table.len()
        )));
    }
    let footer = &table[table.len() - 48..];
    let magic = u64::from_le_bytes(footer[40..48].try_into().expect("8 bytes"));
    if magic != TABLE_MAGIC {
        return Err(malformed(format!(
            "not a tensor bundle index (table magic {magic:016x})"
        )));
    }
    let mut pos = 0;
    let _metaindex = read_handle(footer, &mut pos)?;
    let index_handle = read_handle(footer, &mut pos)?;
    let mut out = BTreeMap::new();
    for (_, handle) in block_entries(read_block(table, index_handle)?)? {
        let mut p = 0;
        let data_handle = read_handle(&handle, &mut p)?;
        for (key, value) in block_entries(read_block(table, data_handle)?)? {
            let key =
                String::from_utf8(key).map_err(|_| malformed("a tensor name is not UTF-8"))?;
            let entry = if key.is_empty() {
                None
            } else {
                Some(parse_entry(&value).map_err(|m| IndexError::Entry {
                    tensor: key.clone(),
                    source: Box::new(m),
                })?)
            };
            out.insert(key, (entry, value));
        }
    }
    Ok(out)
}

fn read_handle(b: &[u8], pos: &mut usize) -> Result<(u64, u64), IndexError> {
    Ok((varint(b, pos)?, varint(b, pos)?))
}

/// The contents of a block, after checking its trailer (compression type and masked CRC32C).
fn read_block(table: &[u8], (offset, size): (u64, u64)) -> Result<&[u8], IndexError> {
    let (start, end) = (offset as usize, (offset + size) as usize);
    let block = table
        .get(start..end)
        .ok_or_else(|| malformed("a block lies past the end of the index"))?;
    let trailer = table
        .get(end..end + 5)
        .ok_or_else(|| malformed("a block trailer lies past the end"))?;
    if trailer[0] != 0 {
        return Err(malformed(format!(
            "compressed index blocks (type {}) are not supported",
            trailer[0]
        )));
    }
    let stored = u32::from_le_bytes(trailer[1..5].try_into().expect("4 bytes"));
    let mut crc_input = block.to_vec();
    crc_input.push(trailer[0]);
    if mask_crc(crc32c(&crc_input)) != stored {
        return Err(malformed(format!(
            "index block at {offset}: checksum mismatch"
        )));
    }
    Ok(block)
}

/// Key/value pairs of a block (prefix-compressed keys, restart array at the end).
/// Key/value byte pairs.
type Entries = Vec<(Vec<u8>, Vec<u8>)>;

fn block_entries(block: &[u8]) -> Result<Entries, IndexError> {
    if block.len() < 4 {
        return Err(malformed("block shorter than its restart count"));
    }
    let n_restarts = u32::from_le_bytes(block[block.len() - 4..].try_into().expect("4")) as usize;
    let data_end = block
        .len()
        .checked_sub(4 + 4 * n_restarts)
        .ok_or_else(|| malformed("restart array larger than the block"))?;
    let mut out = Vec::new();
    let mut pos = 0;
    let mut key: Vec<u8> = Vec::new();
    while pos < data_end {
        let shared = varint(block, &mut pos)? as usize;
        let non_shared = varint(block, &mut pos)? as usize;
        let value_len = varint(block, &mut pos)? as usize;
        if shared > key.len() {
            return Err(malformed("a key shares more than the previous key holds"));
        }
        key.truncate(shared);
        let k = block
            .get(pos..pos + non_shared)
            .ok_or_else(|| malformed("key past the block end"))?;
        key.extend_from_slice(k);
        pos += non_shared;
        let v = block
            .get(pos..pos + value_len)
            .ok_or_else(|| malformed("value past the block end"))?;
        pos += value_len;
        out.push((key.clone(), v.to_vec()));
    }
    Ok(out)
}

fn varint(b: &[u8], pos: &mut usize) -> Result<u64, IndexError> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*pos).ok_or_else(|| malformed("truncated varint"))?;
        *pos += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(malformed("varint longer than 10 bytes"))
}

/// Protocol-buffer fields of a message: (field number, wire type, varint value or bytes).
enum Field<'a> {
    Varint(u64),
    Fixed32(u32),
    Fixed64,
    Bytes(&'a [u8]),
}

fn proto_fields(msg: &[u8]) -> Result<Vec<(u64, Field<'_>)>, IndexError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < msg.len() {
        let tag = varint(msg, &mut pos)?;
        let (field, wire) = (tag >> 3, tag & 7);
        let value = match wire {
            0 => Field::Varint(varint(msg, &mut pos)?),
            1 => {
                pos += 8;
                Field::Fixed64
            }
            2 => {
                let n = varint(msg, &mut pos)? as usize;
                let s = msg
                    .get(pos..pos + n)
                    .ok_or_else(|| malformed("length-delimited field past the end"))?;
                pos += n;
                Field::Bytes(s)
            }
            5 => {
                let s = msg
                    .get(pos..pos + 4)
                    .ok_or_else(|| malformed("fixed32 past the end"))?;
                pos += 4;
                Field::Fixed32(u32::from_le_bytes(s.try_into().expect("4")))
            }
            w => {
                return Err(malformed(format!(
                    "protobuf wire type {w} is not supported"
                )));
            }
        };
        if pos > msg.len() {
            return Err(malformed("field past the end of the message"));
        }
        out.push((field, value));
    }
    Ok(out)
}

/// `BundleEntryProto`: dtype = 1, shape = 2, shard_id = 3, offset = 4, size = 5, crc32c = 6
/// (fixed32), slices = 7.
fn parse_entry(msg: &[u8]) -> Result<BundleEntry, IndexError> {
    let mut e = BundleEntry::default();
    for (field, value) in proto_fields(msg)? {
        match (field, value) {
            (1, Field::Varint(v)) => e.dtype = v,
            (2, Field::Bytes(shape)) => e.shape = parse_shape(shape)?,
            (3, Field::Varint(v)) => e.shard_id = v,
            (4, Field::Varint(v)) => e.offset = v,
            (5, Field::Varint(v)) => e.size = v,
            (6, Field::Fixed32(v)) => e.crc32c = Some(v),
            (7, _) => e.has_slices = true,
            _ => {}
        }
    }
    Ok(e)
}

/// `TensorShapeProto`: dim = 2 (each `Dim { size = 1, name = 2 }`), unknown_rank = 3.
fn parse_shape(msg: &[u8]) -> Result<Vec<usize>, IndexError> {
    let mut dims = Vec::new();
    for (field, value) in proto_fields(msg)? {
        match (field, value) {
            (2, Field::Bytes(dim)) => {
                let mut size = 0i64;
                for (f, v) in proto_fields(dim)? {
                    if let (1, Field::Varint(s)) = (f, v) {
                        size = s as i64;
                    }
                }
                if size < 0 {
                    return Err(malformed(format!("dimension of unknown size ({size})")));
                }
                dims.push(size as usize);
            }
            (3, Field::Varint(1)) => return Err(malformed("shape of unknown rank")),
            _ => {}
        }
    }
    Ok(dims)
}

/// `BundleHeaderProto`: num_shards = 1, endianness = 2 (0 little, 1 big), version = 3.
fn parse_header(msg: &[u8]) -> Result<(u64, bool), IndexError> {
    let mut shards = 1;
    let mut big = false;
    for (field, value) in proto_fields(msg)? {
        match (field, value) {
            (1, Field::Varint(v)) => shards = v,
            (2, Field::Varint(v)) => big = v == 1,
            _ => {}
        }
    }
    Ok((shards, big))
}

/// CRC-32C (Castagnoli), as LevelDB and TensorFlow compute it.
pub fn crc32c(data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, slot) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0x82f6_3b78 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            *slot = c;
        }
        t
    });
    let mut crc = !0u32;
    for &b in data {
        crc = table[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

/// LevelDB's CRC masking (stored checksums are masked so a CRC of CRCs is not trivial).
pub fn mask_crc(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        // The CRC-32C check value (RFC 3720, B.4).
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
    }

    #[test]
    fn varints_and_truncation() {
        let mut p = 0;
        assert_eq!(varint(&[0xac, 0x02], &mut p).unwrap(), 300);
        let mut p = 0;
        assert!(varint(&[0x80], &mut p).is_err());
    }

    #[test]
    fn a_file_that_is_not_an_index_is_refused() {
        let e = read_index(&[0u8; 64]).unwrap_err();
        assert!(e.to_string().contains("not a tensor bundle index"), "{e}");
    }
}
