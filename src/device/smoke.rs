//! A small burn computation whose answer is known, to prove a device computes correctly.
//!
//! `softmax(X · W)` over rows, with `X: [4, 8]` and `W: [8, 5]` filled from closed-form
//! formulas (so a browser test can recompute them in JavaScript), checked against the same
//! computation in f64 on the host. Used by `encore doctor`, the web page and the tests.

use super::DeviceError;
use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};

pub const ROWS: usize = 4;
pub const INNER: usize = 8;
pub const COLS: usize = 5;
/// Largest accepted difference from the f64 reference (f32 arithmetic, any backend).
pub const TOLERANCE: f64 = 1e-4;

/// `X[i][k] = sin(0.7 (8 i + k) + 0.3)`.
pub fn x_value(i: usize, k: usize) -> f64 {
    (0.7 * (INNER * i + k) as f64 + 0.3).sin()
}

/// `W[k][j] = 0.8 cos(0.4 (5 k + j) - 0.2)`.
pub fn w_value(k: usize, j: usize) -> f64 {
    0.8 * (0.4 * (COLS * k + j) as f64 - 0.2).cos()
}

/// The expected `softmax(X · W)`, row-major, computed in f64.
pub fn reference() -> Vec<f64> {
    let mut out = Vec::with_capacity(ROWS * COLS);
    for i in 0..ROWS {
        let logits: Vec<f64> = (0..COLS)
            .map(|j| (0..INNER).map(|k| x_value(i, k) * w_value(k, j)).sum())
            .collect();
        let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let exps: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
        let sum: f64 = exps.iter().sum();
        out.extend(exps.iter().map(|e| e / sum));
    }
    out
}

/// Builds the computation on `device`; nothing is read back yet.
pub fn computation(device: &Device) -> Tensor<2> {
    let x: Vec<f32> = (0..ROWS * INNER)
        .map(|n| x_value(n / INNER, n % INNER) as f32)
        .collect();
    let w: Vec<f32> = (0..INNER * COLS)
        .map(|n| w_value(n / COLS, n % COLS) as f32)
        .collect();
    let x = Tensor::<2>::from_data(TensorData::new(x, [ROWS, INNER]), device);
    let w = Tensor::<2>::from_data(TensorData::new(w, [INNER, COLS]), device);
    softmax(x.matmul(w), 1)
}

/// The values a device produced, compared with [`reference`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct SmokeReport {
    pub values: Vec<f32>,
    pub max_abs_diff: f64,
    pub ok: bool,
}

impl SmokeReport {
    pub fn check(values: Vec<f32>) -> Self {
        let expected = reference();
        let max_abs_diff = if values.len() == expected.len() {
            values
                .iter()
                .zip(&expected)
                .map(|(v, e)| (*v as f64 - e).abs())
                // Unlike f64::max, keeps a NaN once seen.
                .fold(0.0, |m, d| if d.is_nan() || d > m { d } else { m })
        } else {
            f64::INFINITY
        };
        // A NaN difference compares false, so it fails the check.
        let ok = max_abs_diff <= TOLERANCE;
        SmokeReport {
            values,
            max_abs_diff,
            ok,
        }
    }

    fn from_data(data: Result<TensorData, String>) -> Result<Self, DeviceError> {
        let values = data
            .map_err(DeviceError::Readback)?
            .try_into_vec::<f32>()
            .map_err(|e| DeviceError::Readback(format!("{e:?}")))?;
        Ok(Self::check(values))
    }

    /// One line for people: `softmax(X·W) 4×5 matches the f64 reference (max |Δ| 3.0e-8)`.
    pub fn summary(&self) -> String {
        let verdict = if self.ok { "matches" } else { "DOES NOT match" };
        format!(
            "softmax(X·W) {ROWS}×{COLS} {verdict} the f64 reference (max |Δ| {:.1e})",
            self.max_abs_diff
        )
    }
}

/// Runs the computation and reads it back synchronously (native only).
#[cfg(not(target_arch = "wasm32"))]
pub fn run(device: &Device) -> Result<SmokeReport, DeviceError> {
    SmokeReport::from_data(
        computation(device)
            .try_into_data()
            .map_err(|e| e.to_string()),
    )
}

/// Runs the computation and reads it back asynchronously (works in the browser).
pub async fn run_async(device: &Device) -> Result<SmokeReport, DeviceError> {
    let data = computation(device).into_data_async().await;
    SmokeReport::from_data(data.map_err(|e| e.to_string()))
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn reference_rows_are_distributions() {
        let r = reference();
        assert_eq!(r.len(), ROWS * COLS);
        for row in r.chunks(COLS) {
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            assert!(row.iter().all(|p| *p > 0.0 && *p < 1.0));
        }
        // Not uniform: the check would be weak if every entry were 0.2.
        assert!(r.iter().any(|p| (p - 0.2).abs() > 0.05));
    }

    #[test]
    fn flex_matches_reference() {
        let report = run(&Device::flex()).unwrap();
        assert!(report.ok, "{}", report.summary());
        assert!(report.max_abs_diff < 1e-6);
    }

    #[test]
    fn check_rejects_wrong_values() {
        let mut values: Vec<f32> = reference().iter().map(|v| *v as f32).collect();
        assert!(SmokeReport::check(values.clone()).ok);
        values[7] += 0.01;
        assert!(!SmokeReport::check(values.clone()).ok);
        values[7] = f32::NAN;
        assert!(!SmokeReport::check(values).ok);
        assert!(!SmokeReport::check(vec![0.2; 3]).ok);
    }
}
