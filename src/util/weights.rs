//! Weights files: safetensors reading and writing for every layer (feature stores, LLM
//! checkpoints, trained parts, bundles), float16/bfloat16 widening, and the 8-bit block codec
//! of trained parts.

use safetensors::tensor::{SafeTensors, TensorView};
use std::collections::HashMap;

pub use safetensors::tensor::Dtype;

/// A safetensors file that could not be written or read as asked.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("safetensors: {0}")]
    Format(#[from] safetensors::SafeTensorError),
    #[error("tensor '{name}': {reason}")]
    Tensor { name: String, reason: String },
    #[error("no tensor '{name}'")]
    Missing { name: String },
}

impl WeightsError {
    pub fn tensor(name: &str, reason: impl Into<String>) -> Self {
        Self::Tensor {
            name: name.to_string(),
            reason: reason.into(),
        }
    }
}

/// Tensors by name: shape and float32 values.
pub type NamedTensors = HashMap<String, (Vec<usize>, Vec<f32>)>;

/// One tensor to write: name, element type, shape and little-endian bytes.
pub type RawTensor<'a> = (&'a str, Dtype, Vec<usize>, Vec<u8>);

pub fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn bytes_f32(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Serialises named tensors (raw little-endian bytes) to safetensors, with string metadata when
/// given (`Some(&[])` writes an empty metadata table).
pub fn write_tensors(
    tensors: &[RawTensor<'_>],
    meta: Option<&[(String, String)]>,
) -> Result<Vec<u8>, WeightsError> {
    let views = tensors
        .iter()
        .map(|(name, dtype, shape, data)| {
            TensorView::new(*dtype, shape.clone(), data)
                .map(|v| (name.to_string(), v))
                .map_err(|e| WeightsError::tensor(name, e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let meta: Option<HashMap<String, String>> = meta.map(|m| m.iter().cloned().collect());
    Ok(safetensors::serialize(views, meta)?)
}

/// Float32 tensors by name to safetensors bytes.
pub fn write_f32(
    tensors: &[(String, Vec<usize>, Vec<f32>)],
    meta: Option<&[(String, String)]>,
) -> Result<Vec<u8>, WeightsError> {
    let t: Vec<RawTensor<'_>> = tensors
        .iter()
        .map(|(n, s, v)| (n.as_str(), Dtype::F32, s.clone(), f32_bytes(v)))
        .collect();
    write_tensors(&t, meta)
}

/// A floating-point tensor's values as float32 (F16 and BF16 are widened); `None` for other
/// element types.
pub fn widen(view: &TensorView<'_>) -> Option<Vec<f32>> {
    let data = view.data();
    Some(match view.dtype() {
        Dtype::F32 => bytes_f32(data),
        Dtype::F16 => data
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::BF16 => data
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        _ => return None,
    })
}

/// Every floating-point tensor of a safetensors file as float32; other element types are
/// passed over.
pub fn read_f32(bytes: &[u8]) -> Result<NamedTensors, WeightsError> {
    let st = SafeTensors::deserialize(bytes)?;
    Ok(st
        .tensors()
        .into_iter()
        .filter_map(|(name, view)| widen(&view).map(|v| (name, (view.shape().to_vec(), v))))
        .collect())
}

/// A parsed safetensors file whose tensors are read one at a time by name, each checked
/// (element type, shape) before use.
pub struct WeightsFile<'a> {
    st: SafeTensors<'a>,
    meta: HashMap<String, String>,
}

impl<'a> WeightsFile<'a> {
    /// Parses the header (its size is checked against the bytes before anything is
    /// allocated from it).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, WeightsError> {
        let (_, meta) = SafeTensors::read_metadata(bytes)?;
        let meta = meta.metadata().clone().unwrap_or_default();
        Ok(Self {
            st: SafeTensors::deserialize(bytes)?,
            meta,
        })
    }

    /// The tensors' names, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut n: Vec<String> = self.st.names().into_iter().map(str::to_string).collect();
        n.sort();
        n
    }

    /// Whether the file holds tensor `name`.
    pub fn has(&self, name: &str) -> bool {
        self.st.tensor(name).is_ok()
    }

    /// A string entry of the header's `__metadata__`.
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.meta.get(key).map(String::as_str)
    }

    /// A tensor's element type, shape and little-endian bytes.
    pub fn raw(&self, name: &str) -> Result<(Dtype, Vec<usize>, &'a [u8]), WeightsError> {
        let v = self.view(name)?;
        Ok((v.dtype(), v.shape().to_vec(), v.data()))
    }

    /// A floating-point tensor as float32 (F16 and BF16 widened), with its shape.
    pub fn f32(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>), WeightsError> {
        let v = self.view(name)?;
        let vals = widen(&v).ok_or_else(|| {
            WeightsError::tensor(name, format!("is {:?}, not a float tensor", v.dtype()))
        })?;
        Ok((v.shape().to_vec(), vals))
    }

    /// [`f32`](Self::f32) of a tensor that must have shape `want`.
    pub fn f32_shaped(&self, name: &str, want: &[usize]) -> Result<Vec<f32>, WeightsError> {
        let (shape, v) = self.f32(name)?;
        check_shape(name, &shape, want)?;
        Ok(v)
    }

    /// A tensor of bytes (U8) that must have shape `want`.
    pub fn u8_shaped(&self, name: &str, want: &[usize]) -> Result<&'a [u8], WeightsError> {
        let (dtype, shape, data) = self.raw(name)?;
        if dtype != Dtype::U8 {
            return Err(WeightsError::tensor(name, format!("is {dtype:?}, not U8")));
        }
        check_shape(name, &shape, want)?;
        Ok(data)
    }

    /// A float tensor, or an 8-bit one with its `NAME.q8scale` block scales ([`q8_encode`]),
    /// as float32 with its shape.
    pub fn f32_or_q8(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>), WeightsError> {
        let (dtype, shape, data) = self.raw(name)?;
        if dtype != Dtype::I8 {
            return self.f32(name);
        }
        let scale_name = format!("{name}.q8scale");
        let (_, scales) = self.f32(&scale_name).map_err(|_| {
            WeightsError::tensor(name, format!("is 8-bit but has no float '{scale_name}'"))
        })?;
        Ok((shape, q8_decode(&scale_name, data, &scales)?))
    }

    fn view(&self, name: &str) -> Result<TensorView<'a>, WeightsError> {
        self.st.tensor(name).map_err(|_| WeightsError::Missing {
            name: name.to_string(),
        })
    }
}

fn check_shape(name: &str, got: &[usize], want: &[usize]) -> Result<(), WeightsError> {
    if got == want {
        Ok(())
    } else {
        Err(WeightsError::tensor(
            name,
            format!("has shape {got:?}, expected {want:?}"),
        ))
    }
}

/// Values per scale in the 8-bit block codec.
pub const Q8_BLOCK: usize = 64;

/// 8-bit symmetric values in blocks of [`Q8_BLOCK`] along the flattened tensor: the signed
/// bytes and one little-endian f32 scale per block.
pub fn q8_encode(vals: &[f32]) -> (Vec<u8>, Vec<u8>) {
    let mut q = Vec::with_capacity(vals.len());
    let mut scales = Vec::with_capacity(vals.len().div_ceil(Q8_BLOCK) * 4);
    for block in vals.chunks(Q8_BLOCK) {
        let max = block.iter().fold(0f32, |m, x| m.max(x.abs()));
        let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
        scales.extend_from_slice(&scale.to_le_bytes());
        q.extend(
            block
                .iter()
                .map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8 as u8),
        );
    }
    (q, scales)
}

/// [`q8_encode`]'s values back; `name` is for the error when the scales do not fit.
pub fn q8_decode(name: &str, q: &[u8], scales: &[f32]) -> Result<Vec<f32>, WeightsError> {
    if scales.len() != q.len().div_ceil(Q8_BLOCK) {
        return Err(WeightsError::tensor(
            name,
            format!(
                "{} scales for {} values in blocks of {Q8_BLOCK}",
                scales.len(),
                q.len()
            ),
        ));
    }
    Ok(q.iter()
        .enumerate()
        .map(|(i, &v)| f32::from(v as i8) * scales[i / Q8_BLOCK])
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_is_widened_and_other_types_passed_over() {
        let h: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
            .collect();
        let b: Vec<u8> = [0.25f32]
            .iter()
            .flat_map(|x| half::bf16::from_f32(*x).to_le_bytes())
            .collect();
        let bytes = write_tensors(
            &[
                ("h", Dtype::F16, vec![2], h),
                ("b", Dtype::BF16, vec![1], b),
                ("i", Dtype::I8, vec![1], vec![3]),
            ],
            Some(&[("k".into(), "v".into())]),
        )
        .unwrap();
        let t = read_f32(&bytes).unwrap();
        assert_eq!(t["h"], (vec![2], vec![1.5, -2.0]));
        assert_eq!(t["b"], (vec![1], vec![0.25]));
        assert!(!t.contains_key("i"));
        assert!(read_f32(&bytes[..10]).is_err());
    }

    #[test]
    fn q8_round_trips_within_half_a_step() {
        let v: Vec<f32> = (0..150).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
        let (q, s) = q8_encode(&v);
        let back = q8_decode("t", &q, &bytes_f32(&s)).unwrap();
        for (i, (a, b)) in v.iter().zip(&back).enumerate() {
            let scale = bytes_f32(&s)[i / Q8_BLOCK];
            assert!((a - b).abs() <= scale / 2.0 + 1e-6, "{i}: {a} {b}");
        }
        assert!(q8_decode("t", &q, &[1.0]).is_err());
    }

    #[test]
    fn a_weights_file_reads_tensors_by_name_and_names_what_does_not_fit() {
        let v: Vec<f32> = (0..128).map(|i| i as f32 / 10.0).collect();
        let (q, scales) = q8_encode(&v);
        let bytes = write_tensors(
            &[
                (
                    "values",
                    Dtype::F32,
                    vec![2, 2],
                    f32_bytes(&[1.0, 2.0, 3.0, 4.0]),
                ),
                ("present", Dtype::U8, vec![2], vec![1, 0]),
                ("w", Dtype::I8, vec![128], q),
                ("w.q8scale", Dtype::F32, vec![2], scales),
                ("lonely", Dtype::I8, vec![1], vec![1]),
            ],
            Some(&[("ids".into(), "[\"a\",\"b\"]".into())]),
        )
        .unwrap();
        let f = WeightsFile::parse(&bytes).unwrap();
        assert_eq!(f.names(), ["lonely", "present", "values", "w", "w.q8scale"]);
        assert_eq!(f.meta("ids"), Some("[\"a\",\"b\"]"));
        assert_eq!(
            f.f32_shaped("values", &[2, 2]).unwrap(),
            [1.0, 2.0, 3.0, 4.0]
        );
        assert_eq!(f.u8_shaped("present", &[2]).unwrap(), [1, 0]);
        let (shape, w) = f.f32_or_q8("w").unwrap();
        assert_eq!(shape, [128]);
        assert!(w.iter().zip(&v).all(|(a, b)| (a - b).abs() < 0.05));
        let err = |r: Result<Vec<f32>, WeightsError>| r.unwrap_err().to_string();
        assert_eq!(
            err(f.f32_shaped("values", &[4])),
            "tensor 'values': has shape [2, 2], expected [4]"
        );
        assert_eq!(err(f.f32_shaped("nothing", &[1])), "no tensor 'nothing'");
        assert!(err(f.f32_shaped("present", &[2])).contains("not a float tensor"));
        assert!(f.u8_shaped("values", &[2, 2]).is_err());
        assert!(
            f.f32_or_q8("lonely")
                .unwrap_err()
                .to_string()
                .contains("lonely.q8scale")
        );
        for cut in [0, 7, 8, 40, bytes.len() - 1] {
            assert!(WeightsFile::parse(&bytes[..cut]).is_err(), "{cut} bytes");
        }
    }
}
