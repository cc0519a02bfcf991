//! GGUF (v2 and v3), the model file format of llama.cpp: a header, typed metadata (the model's
//! hyper-parameters, its tokenizer and chat template), tensor descriptions, and aligned tensor
//! data in float or block-quantized formats. Parsing works on bytes (so it runs in the browser
//! too); every read is bounds-checked, so a truncated or malformed file is an error naming the
//! byte offset and what was being read, never a panic.
//!
//! Dequantization follows ggml's block layouts: `Q4_0`, `Q4_1`, `Q5_0`, `Q5_1`, `Q8_0` (blocks of
//! 32) and the k-quants `Q4_K`, `Q5_K`, `Q6_K` (super-blocks of 256), plus `F32`, `F16` and
//! `BF16`.

pub use super::error::GgufError;
use super::error::LlmError;
use half::{bf16, f16};
use std::collections::BTreeMap;

const MAGIC: &[u8; 4] = b"GGUF";
const DEFAULT_ALIGNMENT: u64 = 32;

/// A metadata value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    String(String),
    Array(Vec<Value>),
}

impl Value {
    /// The value as an unsigned integer, when it is a non-negative integer of any width.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v.into()),
            Value::F64(v) => Some(v),
            _ => self.as_u64().map(|v| v as f64),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(v) => Some(v),
            _ => None,
        }
    }
}

/// ggml tensor types this reader knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GgmlType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q4K,
    Q5K,
    Q6K,
    BF16,
}

impl GgmlType {
    /// Every type with its ggml type id.
    const IDS: [(Self, u32); 11] = [
        (Self::F32, 0),
        (Self::F16, 1),
        (Self::Q4_0, 2),
        (Self::Q4_1, 3),
        (Self::Q5_0, 6),
        (Self::Q5_1, 7),
        (Self::Q8_0, 8),
        (Self::Q4K, 12),
        (Self::Q5K, 13),
        (Self::Q6K, 14),
        (Self::BF16, 30),
    ];

    fn from_id(id: u32) -> Option<Self> {
        Self::IDS.iter().find(|&&(_, i)| i == id).map(|&(t, _)| t)
    }

    /// The ggml type id.
    pub fn id(self) -> u32 {
        Self::IDS
            .iter()
            .find(|&&(t, _)| t == self)
            .map(|&(_, i)| i)
            .expect("every type is listed")
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "F32",
            Self::F16 => "F16",
            Self::Q4_0 => "Q4_0",
            Self::Q4_1 => "Q4_1",
            Self::Q5_0 => "Q5_0",
            Self::Q5_1 => "Q5_1",
            Self::Q8_0 => "Q8_0",
            Self::Q4K => "Q4_K",
            Self::Q5K => "Q5_K",
            Self::Q6K => "Q6_K",
            Self::BF16 => "BF16",
        }
    }

    /// Elements per block and bytes per block.
    pub fn block(self) -> (usize, usize) {
        match self {
            Self::F32 => (1, 4),
            Self::F16 | Self::BF16 => (1, 2),
            Self::Q4_0 => (32, 18),
            Self::Q4_1 => (32, 20),
            Self::Q5_0 => (32, 22),
            Self::Q5_1 => (32, 24),
            Self::Q8_0 => (32, 34),
            Self::Q4K => (256, 144),
            Self::Q5K => (256, 176),
            Self::Q6K => (256, 210),
        }
    }

    /// Bytes of `n` elements (`n` a whole number of blocks).
    pub fn bytes(self, n: usize) -> Option<usize> {
        let (elems, bytes) = self.block();
        n.is_multiple_of(elems)
            .then(|| (n / elems).checked_mul(bytes))
            .flatten()
    }
}

/// One tensor's description.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    /// ggml order: `dims[0]` is the row length (innermost). A 2-D weight `[in, out]` is `out`
    /// rows of `in` values, PyTorch's `[out, in]`.
    pub dims: Vec<u64>,
    pub ty: GgmlType,
    /// Offset of the data from the start of the data section.
    pub offset: u64,
}

impl TensorInfo {
    pub fn n_elements(&self) -> usize {
        self.dims.iter().product::<u64>() as usize
    }

    /// The shape in row-major (PyTorch) order: `dims` reversed.
    pub fn shape(&self) -> Vec<usize> {
        self.dims.iter().rev().map(|&d| d as usize).collect()
    }
}

/// A parsed GGUF file: its metadata and tensors, over the file's bytes.
#[derive(Clone, Debug)]
pub struct Gguf {
    pub version: u32,
    pub metadata: BTreeMap<String, Value>,
    pub tensors: Vec<TensorInfo>,
    by_name: BTreeMap<String, usize>,
    data_start: usize,
    bytes: Vec<u8>,
}

struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], GgufError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.b.len());
        match end {
            Some(end) => {
                let s = &self.b[self.at..end];
                self.at = end;
                Ok(s)
            }
            None => Err(GgufError::Truncated {
                what: what.to_string(),
                start: self.at,
                end: self.at.saturating_add(n),
                len: self.b.len(),
            }),
        }
    }

    fn arr<const N: usize>(&mut self, what: &str) -> Result<[u8; N], GgufError> {
        Ok(self.take(N, what)?.try_into().expect("N bytes"))
    }

    fn u32(&mut self, what: &str) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.arr(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.arr(what)?))
    }

    /// A count that must fit what is left of the file at `min_bytes` bytes per item.
    fn count(&mut self, what: &str, min_bytes: usize) -> Result<usize, GgufError> {
        let at = self.at;
        let n = self.u64(what)?;
        let left = (self.b.len() - self.at) as u64;
        if n.saturating_mul(min_bytes.max(1) as u64) > left {
            return Err(GgufError::Malformed {
                at,
                what: format!(
                    "{what} {n} cannot fit in the {left} bytes left (a truncated or damaged file)"
                ),
            });
        }
        Ok(n as usize)
    }

    fn string(&mut self, what: &str) -> Result<String, GgufError> {
        let n = self.count(&format!("length of {what}"), 1)?;
        let at = self.at;
        let s = self.take(n, what)?;
        String::from_utf8(s.to_vec()).map_err(|_| GgufError::Malformed {
            at,
            what: format!("{what} is not UTF-8"),
        })
    }

    fn value(&mut self, ty: u32, key: &str, depth: usize) -> Result<Value, GgufError> {
        let w = |s: &str| format!("{s} of '{key}'");
        Ok(match ty {
            0 => Value::U8(self.arr::<1>(&w("u8"))?[0]),
            1 => Value::I8(self.arr::<1>(&w("i8"))?[0] as i8),
            2 => Value::U16(u16::from_le_bytes(self.arr(&w("u16"))?)),
            3 => Value::I16(i16::from_le_bytes(self.arr(&w("i16"))?)),
            4 => Value::U32(self.u32(&w("u32"))?),
            5 => Value::I32(i32::from_le_bytes(self.arr(&w("i32"))?)),
            6 => Value::F32(f32::from_le_bytes(self.arr(&w("f32"))?)),
            7 => {
                let at = self.at;
                match self.arr::<1>(&w("bool"))?[0] {
                    0 => Value::Bool(false),
                    1 => Value::Bool(true),
                    b => {
                        return Err(GgufError::Malformed {
                            at,
                            what: format!("'{key}': boolean byte {b}"),
                        });
                    }
                }
            }
            8 => Value::String(self.string(&w("string"))?),
            9 => {
                let at = self.at;
                if depth > 4 {
                    return Err(GgufError::Malformed {
                        at,
                        what: format!("'{key}': arrays nested too deep"),
                    });
                }
                let inner = self.u32(&w("array type"))?;
                let n = self.count(&w("array length"), 1)?;
                let mut v = Vec::with_capacity(n.min(1 << 20));
                for _ in 0..n {
                    v.push(self.value(inner, key, depth + 1)?);
                }
                Value::Array(v)
            }
            10 => Value::U64(self.u64(&w("u64"))?),
            11 => Value::I64(i64::from_le_bytes(self.arr(&w("i64"))?)),
            12 => Value::F64(f64::from_le_bytes(self.arr(&w("f64"))?)),
            t => {
                return Err(GgufError::Malformed {
                    at: self.at - 4,
                    what: format!("'{key}': unknown value type {t}"),
                });
            }
        })
    }
}

impl Gguf {
    /// Reads and parses a file.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open(path: &std::path::Path) -> Result<Self, LlmError> {
        let bytes = std::fs::read(path).map_err(|e| LlmError::io(path, e))?;
        Self::parse(bytes).map_err(|source| LlmError::Gguf {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Parses a whole file held in memory.
    pub fn parse(bytes: Vec<u8>) -> Result<Self, GgufError> {
        let mut c = Cursor { b: &bytes, at: 0 };
        let magic: [u8; 4] = c.arr("the magic number")?;
        if &magic != MAGIC {
            return Err(GgufError::Magic(magic));
        }
        let version = c.u32("the version")?;
        if !(2..=3).contains(&version) {
            return Err(GgufError::Version(version));
        }
        let n_tensors = c.count("tensor count", 4 * 6)?;
        let n_kv = c.count("metadata count", 8 + 4)?;
        let mut metadata = BTreeMap::new();
        for _ in 0..n_kv {
            let key = c.string("a metadata key")?;
            let ty = c.u32(&format!("the type of '{key}'"))?;
            let v = c.value(ty, &key, 0)?;
            metadata.insert(key, v);
        }
        let mut tensors = Vec::with_capacity(n_tensors);
        let mut by_name = BTreeMap::new();
        for i in 0..n_tensors {
            let name = c.string(&format!("the name of tensor {i}"))?;
            let at = c.at;
            let n_dims = c.u32(&format!("the rank of '{name}'"))? as usize;
            if n_dims == 0 || n_dims > 4 {
                return Err(GgufError::Malformed {
                    at,
                    what: format!("tensor '{name}' has rank {n_dims}"),
                });
            }
            let mut dims = Vec::with_capacity(n_dims);
            for _ in 0..n_dims {
                dims.push(c.u64(&format!("a dimension of '{name}'"))?);
            }
            let at = c.at;
            let ty_id = c.u32(&format!("the type of '{name}'"))?;
            let ty = GgmlType::from_id(ty_id).ok_or_else(|| GgufError::Malformed {
                at,
                what: format!(
                    "tensor '{name}' has ggml type {ty_id}, which this reader does not dequantize"
                ),
            })?;
            let offset = c.u64(&format!("the offset of '{name}'"))?;
            if by_name.insert(name.clone(), i).is_some() {
                return Err(GgufError::Malformed {
                    at,
                    what: format!("tensor '{name}' is listed twice"),
                });
            }
            tensors.push(TensorInfo {
                name,
                dims,
                ty,
                offset,
            });
        }
        let alignment =
            match metadata.get("general.alignment") {
                None => DEFAULT_ALIGNMENT,
                Some(v) => v.as_u64().filter(|a| a.is_power_of_two()).ok_or_else(|| {
                    GgufError::Malformed {
                        at: c.at,
                        what: format!("general.alignment {v:?} is not a power of two"),
                    }
                })?,
            };
        let data_start = (c.at as u64).div_ceil(alignment) * alignment;
        let g = Gguf {
            version,
            metadata,
            tensors,
            by_name,
            data_start: data_start as usize,
            bytes,
        };
        for t in &g.tensors {
            g.data_range(t)?;
        }
        Ok(g)
    }

    /// The byte range of a tensor's data, checked against the file.
    fn data_range(&self, t: &TensorInfo) -> Result<std::ops::Range<usize>, GgufError> {
        let err = |what: String| GgufError::Tensor {
            name: t.name.clone(),
            what,
        };
        let n = t
            .dims
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d))
            .filter(|&n| n <= (1u64 << 40))
            .ok_or_else(|| err(format!("dimensions {:?} are too large", t.dims)))?;
        let (elems, _) = t.ty.block();
        if !t.dims[0].is_multiple_of(elems as u64) {
            return Err(err(format!(
                "rows of {} values are not whole {} blocks of {elems}",
                t.dims[0],
                t.ty.name()
            )));
        }
        let len = usize::try_from(n)
            .ok()
            .and_then(|n| t.ty.bytes(n))
            .ok_or_else(|| err(format!("dimensions {:?} are too large", t.dims)))?;
        let (start, end) = (self.data_start as u64)
            .checked_add(t.offset)
            .and_then(|start| Some((start, start.checked_add(len as u64)?)))
            .ok_or_else(|| err("offset overflows".into()))?;
        if end > self.bytes.len() as u64 {
            return Err(GgufError::Truncated {
                what: format!("tensor '{}' ({} {:?})", t.name, t.ty.name(), t.dims),
                start: start as usize,
                end: end as usize,
                len: self.bytes.len(),
            });
        }
        Ok(start as usize..end as usize)
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.get(key)
    }

    /// A required metadata entry converted by `f`, or an error naming it.
    pub fn require<T>(&self, key: &str, f: impl Fn(&Value) -> Option<T>) -> Result<T, LlmError> {
        match self.metadata.get(key) {
            None => Err(LlmError::NoKey {
                key: key.to_string(),
            }),
            Some(v) => f(v).ok_or_else(|| LlmError::KeyType {
                key: key.to_string(),
                value: format!("{v:?}"),
            }),
        }
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.by_name.get(name).map(|&i| &self.tensors[i])
    }

    /// A tensor's raw bytes.
    pub fn raw(&self, name: &str) -> Result<(&TensorInfo, &[u8]), GgufError> {
        let t = self.tensor(name).ok_or_else(|| GgufError::Tensor {
            name: name.to_string(),
            what: "no such tensor".into(),
        })?;
        let r = self.data_range(t)?;
        Ok((t, &self.bytes[r]))
    }

    /// A tensor dequantized to f32, row-major in [`TensorInfo::shape`] order.
    pub fn dequantize(&self, name: &str) -> Result<Vec<f32>, GgufError> {
        let (t, raw) = self.raw(name)?;
        let mut out = vec![0f32; t.n_elements()];
        dequantize(t.ty, raw, &mut out);
        Ok(out)
    }
}

fn f16_at(b: &[u8], i: usize) -> f32 {
    f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

/// Dequantizes `raw` (whole blocks of `ty`) into `out` (`raw`'s element count).
pub fn dequantize(ty: GgmlType, raw: &[u8], out: &mut [f32]) {
    let (elems, bytes) = ty.block();
    assert_eq!(raw.len() / bytes * elems, out.len(), "whole blocks");
    for (b, o) in raw.chunks_exact(bytes).zip(out.chunks_exact_mut(elems)) {
        match ty {
            GgmlType::F32 => o[0] = f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            GgmlType::F16 => o[0] = f16_at(b, 0),
            GgmlType::BF16 => o[0] = bf16::from_le_bytes([b[0], b[1]]).to_f32(),
            GgmlType::Q4_0 => {
                let d = f16_at(b, 0);
                for j in 0..16 {
                    let q = b[2 + j];
                    o[j] = ((q & 0x0f) as i32 - 8) as f32 * d;
                    o[j + 16] = ((q >> 4) as i32 - 8) as f32 * d;
                }
            }
            GgmlType::Q4_1 => {
                let (d, m) = (f16_at(b, 0), f16_at(b, 2));
                for j in 0..16 {
                    let q = b[4 + j];
                    o[j] = (q & 0x0f) as f32 * d + m;
                    o[j + 16] = (q >> 4) as f32 * d + m;
                }
            }
            GgmlType::Q5_0 => {
                let d = f16_at(b, 0);
                let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
                for j in 0..16 {
                    let q = b[6 + j];
                    let h0 = ((qh >> j) & 1) << 4;
                    let h1 = ((qh >> (j + 16)) & 1) << 4;
                    o[j] = ((u32::from(q & 0x0f) | h0) as i32 - 16) as f32 * d;
                    o[j + 16] = ((u32::from(q >> 4) | h1) as i32 - 16) as f32 * d;
                }
            }
            GgmlType::Q5_1 => {
                let (d, m) = (f16_at(b, 0), f16_at(b, 2));
                let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
                for j in 0..16 {
                    let q = b[8 + j];
                    let h0 = ((qh >> j) & 1) << 4;
                    let h1 = ((qh >> (j + 16)) & 1) << 4;
                    o[j] = (u32::from(q & 0x0f) | h0) as f32 * d + m;
                    o[j + 16] = (u32::from(q >> 4) | h1) as f32 * d + m;
                }
            }
            GgmlType::Q8_0 => {
                let d = f16_at(b, 0);
                for j in 0..32 {
                    o[j] = f32::from(b[2 + j] as i8) * d;
                }
            }
            GgmlType::Q4K => {
                let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
                let scales = &b[4..16];
                let qs = &b[16..144];
                for (g, chunk) in o.chunks_exact_mut(64).enumerate() {
                    let (d0, min0, d1, min1) = k4_group(d, dmin, scales, g);
                    let q = &qs[32 * g..32 * g + 32];
                    for l in 0..32 {
                        chunk[l] = d0 * (q[l] & 0x0f) as f32 - min0;
                        chunk[l + 32] = d1 * (q[l] >> 4) as f32 - min1;
                    }
                }
            }
            GgmlType::Q5K => {
                let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
                let scales = &b[4..16];
                let qh = &b[16..48];
                let qs = &b[48..176];
                for (g, chunk) in o.chunks_exact_mut(64).enumerate() {
                    let (d0, min0, d1, min1) = k4_group(d, dmin, scales, g);
                    let q = &qs[32 * g..32 * g + 32];
                    let (u1, u2) = (1u8 << (2 * g), 2u8 << (2 * g));
                    for l in 0..32 {
                        let hi0 = if qh[l] & u1 != 0 { 16 } else { 0 };
                        let hi1 = if qh[l] & u2 != 0 { 16 } else { 0 };
                        chunk[l] = d0 * ((q[l] & 0x0f) + hi0) as f32 - min0;
                        chunk[l + 32] = d1 * ((q[l] >> 4) + hi1) as f32 - min1;
                    }
                }
            }
            GgmlType::Q6K => {
                let ql = &b[0..128];
                let qh = &b[128..192];
                let sc = &b[192..208];
                let d = f16_at(b, 208);
                for (n, chunk) in o.chunks_exact_mut(128).enumerate() {
                    let ql = &ql[64 * n..64 * n + 64];
                    let qh = &qh[32 * n..32 * n + 32];
                    let sc = &sc[8 * n..8 * n + 8];
                    for l in 0..32 {
                        let is = l / 16;
                        let q1 = ((ql[l] & 0x0f) | ((qh[l] & 3) << 4)) as i32 - 32;
                        let q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
                        let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
                        let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
                        chunk[l] = d * f32::from(sc[is] as i8) * q1 as f32;
                        chunk[l + 32] = d * f32::from(sc[is + 2] as i8) * q2 as f32;
                        chunk[l + 64] = d * f32::from(sc[is + 4] as i8) * q3 as f32;
                        chunk[l + 96] = d * f32::from(sc[is + 6] as i8) * q4 as f32;
                    }
                }
            }
        }
    }
}

/// Scales and mins of the two 32-value halves of 64-value group `g` of a `Q4_K`/`Q5_K`
/// super-block: `(d0, min0, d1, min1)`.
fn k4_group(d: f32, dmin: f32, scales: &[u8], g: usize) -> (f32, f32, f32, f32) {
    let (sc0, m0) = scale_min_k4(2 * g, scales);
    let (sc1, m1) = scale_min_k4(2 * g + 1, scales);
    (
        d * sc0 as f32,
        dmin * m0 as f32,
        d * sc1 as f32,
        dmin * m1 as f32,
    )
}

/// The 6-bit scale and min of sub-block `j` of a `Q4_K`/`Q5_K` super-block.
fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// Writes a GGUF v3 file (metadata and float32/float16/quantized tensor data given as raw
/// blocks); used by tests and tools.
pub fn write(
    metadata: &[(&str, Value)],
    tensors: &[(&str, Vec<u64>, GgmlType, Vec<u8>)],
) -> Vec<u8> {
    fn string(o: &mut Vec<u8>, s: &str) {
        o.extend((s.len() as u64).to_le_bytes());
        o.extend(s.as_bytes());
    }
    fn type_id(v: &Value) -> u32 {
        match v {
            Value::U8(_) => 0,
            Value::I8(_) => 1,
            Value::U16(_) => 2,
            Value::I16(_) => 3,
            Value::U32(_) => 4,
            Value::I32(_) => 5,
            Value::F32(_) => 6,
            Value::Bool(_) => 7,
            Value::String(_) => 8,
            Value::Array(_) => 9,
            Value::U64(_) => 10,
            Value::I64(_) => 11,
            Value::F64(_) => 12,
        }
    }
    fn value(o: &mut Vec<u8>, v: &Value) {
        match v {
            Value::U8(x) => o.push(*x),
            Value::I8(x) => o.push(*x as u8),
            Value::U16(x) => o.extend(x.to_le_bytes()),
            Value::I16(x) => o.extend(x.to_le_bytes()),
            Value::U32(x) => o.extend(x.to_le_bytes()),
            Value::I32(x) => o.extend(x.to_le_bytes()),
            Value::U64(x) => o.extend(x.to_le_bytes()),
            Value::I64(x) => o.extend(x.to_le_bytes()),
            Value::F32(x) => o.extend(x.to_le_bytes()),
            Value::F64(x) => o.extend(x.to_le_bytes()),
            Value::Bool(x) => o.push(u8::from(*x)),
            Value::String(s) => string(o, s),
            Value::Array(a) => {
                o.extend(a.first().map_or(4, type_id).to_le_bytes());
                o.extend((a.len() as u64).to_le_bytes());
                for x in a {
                    value(o, x);
                }
            }
        }
    }
    let mut o = Vec::new();
    o.extend(MAGIC);
    o.extend(3u32.to_le_bytes());
    o.extend((tensors.len() as u64).to_le_bytes());
    o.extend((metadata.len() as u64).to_le_bytes());
    for (k, v) in metadata {
        string(&mut o, k);
        o.extend(type_id(v).to_le_bytes());
        value(&mut o, v);
    }
    let mut offset = 0u64;
    let mut offsets = Vec::new();
    for (name, dims, ty, data) in tensors {
        string(&mut o, name);
        o.extend((dims.len() as u32).to_le_bytes());
        for d in dims {
            o.extend(d.to_le_bytes());
        }
        o.extend(ty.id().to_le_bytes());
        o.extend(offset.to_le_bytes());
        offsets.push(offset);
        offset = (offset + data.len() as u64).div_ceil(DEFAULT_ALIGNMENT) * DEFAULT_ALIGNMENT;
    }
    let start = (o.len() as u64).div_ceil(DEFAULT_ALIGNMENT) * DEFAULT_ALIGNMENT;
    o.resize(start as usize, 0);
    for ((_, _, _, data), off) in tensors.iter().zip(offsets) {
        o.resize((start + off) as usize, 0);
        o.extend(data);
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let q8: Vec<u8> = {
            let mut b = f16::from_f32(0.5).to_le_bytes().to_vec();
            b.extend((0..32).map(|i| (i as i8 - 16) as u8));
            b
        };
        let q4_1: Vec<u8> = {
            let mut b = f16::from_f32(0.25).to_le_bytes().to_vec();
            b.extend(f16::from_f32(-1.0).to_le_bytes());
            b.extend((0..16u8).map(|i| i | ((15 - i) << 4)));
            b
        };
        let f32s: Vec<u8> = [1.5f32, -2.0, 3.25, 0.0, 7.0, 8.0]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        write(
            &[
                ("general.architecture", Value::String("llama".into())),
                ("llama.block_count", Value::U32(2)),
                ("llama.rope.freq_base", Value::F32(10000.0)),
                ("flag", Value::Bool(true)),
                ("neg", Value::I64(-3)),
                (
                    "tokenizer.ggml.tokens",
                    Value::Array(vec![Value::String("a".into()), Value::String("bé".into())]),
                ),
            ],
            &[
                ("w", vec![3, 2], GgmlType::F32, f32s),
                ("q8", vec![32], GgmlType::Q8_0, q8),
                ("q41", vec![32], GgmlType::Q4_1, q4_1),
            ],
        )
    }

    #[test]
    fn metadata_tensors_and_dequantization() {
        let g = Gguf::parse(sample()).unwrap();
        assert_eq!(g.version, 3);
        assert_eq!(
            g.get("general.architecture").unwrap().as_str(),
            Some("llama")
        );
        assert_eq!(g.require("llama.block_count", Value::as_u64).ok(), Some(2));
        assert_eq!(g.get("neg").unwrap().as_u64(), None);
        assert_eq!(g.get("flag").unwrap().as_bool(), Some(true));
        let toks = g.get("tokenizer.ggml.tokens").unwrap().as_array().unwrap();
        assert_eq!(toks[1].as_str(), Some("bé"));
        assert!(
            g.require("nope", Value::as_u64)
                .unwrap_err()
                .to_string()
                .contains("'nope'")
        );
        let w = g.tensor("w").unwrap();
        assert_eq!(w.shape(), vec![2, 3]);
        assert_eq!(
            g.dequantize("w").unwrap(),
            vec![1.5, -2.0, 3.25, 0.0, 7.0, 8.0]
        );
        let q8 = g.dequantize("q8").unwrap();
        assert_eq!(q8[0], -8.0);
        assert_eq!(q8[31], 7.5);
        let q41 = g.dequantize("q41").unwrap();
        // Low nibbles first: element j is nibble j of the low halves, j + 16 the high halves.
        assert_eq!(q41[0], -1.0);
        assert_eq!(q41[15], 15.0 * 0.25 - 1.0);
        assert_eq!(q41[16], 15.0 * 0.25 - 1.0);
        assert_eq!(q41[31], -1.0);
        assert!(matches!(g.raw("missing"), Err(GgufError::Tensor { .. })));
    }

    /// Found by fuzzing: a tensor whose offset plus its size passes the end of u64 (the
    /// fuzzer's 64-byte file).
    #[test]
    fn a_tensor_past_the_end_of_u64_is_an_error() {
        let bytes = b"GGUF\x02\0\0\0\x01\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\
            \x06\0\0\0\0\0\0\0\x02\0\0\0\0\0\x01\0\0\0\0\0\0\0=\0\0\0\0\0\0\0\
            \x12\0\xff\xff\xff\xff\xff\xff\xff\0";
        let e = Gguf::parse(bytes.to_vec()).map(|g| g.dequantize(&g.tensors[0].name));
        let e = match e {
            Err(e) | Ok(Err(e)) => e.to_string(),
            Ok(Ok(v)) => panic!("{} values read", v.len()),
        };
        assert!(e.contains("overflows") || e.contains("truncated"), "{e}");
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let full = sample();
        for n in 0..full.len() {
            let r = Gguf::parse(full[..n].to_vec());
            assert!(
                r.is_err(),
                "a file cut at {n} of {} bytes parsed",
                full.len()
            );
        }
        // Bytes flipped one at a time either parse or fail cleanly.
        for i in 0..full.len() {
            let mut b = full.clone();
            b[i] ^= 0xa5;
            let _ = Gguf::parse(b).map(|g| {
                for t in g.tensors.clone() {
                    let _ = g.dequantize(&t.name);
                }
            });
        }
        let mut bad = full.clone();
        bad[0] = b'X';
        assert!(matches!(Gguf::parse(bad), Err(GgufError::Magic(_))));
        let mut v1 = full;
        v1[4] = 1;
        assert!(
            Gguf::parse(v1)
                .unwrap_err()
                .to_string()
                .contains("version 1")
        );
    }

    #[test]
    fn k_quant_scales_unpack_as_ggml_does() {
        // Sub-blocks 0-3: low 6 bits of bytes 0-3 (scales) and 4-7 (mins); 4-7: nibbles of
        // bytes 8-11 plus the top two bits of bytes 0-7.
        let q = [
            0b11_000001,
            2,
            3,
            4,
            0b01_000101,
            6,
            7,
            8,
            0x9a,
            0xbc,
            0xde,
            0xf0,
        ];
        assert_eq!(scale_min_k4(0, &q), (1, 5));
        assert_eq!(scale_min_k4(3, &q), (4, 8));
        assert_eq!(
            scale_min_k4(4, &q),
            (0x0a | (0b11 << 4), 0x09 | (0b01 << 4))
        );
    }
}
