//! Argument values every command parses alike.

use crate::device::DeviceChoice;

/// Parses `--device auto|cpu|wgpu|cuda`.
pub(crate) fn parse_device(s: &str) -> Result<DeviceChoice, String> {
    s.parse()
        .map_err(|e: crate::device::DeviceError| e.to_string())
}
