//! The one place that picks a burn [`Device`] for the whole crate.
//!
//! Natively: `auto` = CUDA (when built with `--features cuda` and a device answers), else a wgpu
//! GPU adapter (discrete, integrated or virtual), else the pure-Rust CPU backend (flex). A CPU
//! wgpu adapter such as Mesa's llvmpipe is used only when asked for by name (`--device wgpu`):
//! it is slower than flex for this crate's models.
//!
//! In the browser: WebGPU when the page gets an adapter, else flex.
//!
//! Every choice comes back as a [`SelectedDevice`] that names the backend and the adapter, so
//! callers can always report what they run on.

pub mod smoke;

use std::fmt;

use burn::tensor::Device;

/// The compute backend a [`SelectedDevice`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum BackendKind {
    /// burn's pure-Rust CPU backend (SIMD, also in wasm).
    Cpu,
    /// burn on wgpu natively (Vulkan, Metal, DX12).
    Wgpu,
    /// burn on the browser's WebGPU.
    WebGpu,
    /// burn on CUDA.
    Cuda,
}

impl BackendKind {
    pub fn label(self) -> &'static str {
        match self {
            BackendKind::Cpu => "CPU",
            BackendKind::Wgpu => "wgpu",
            BackendKind::WebGpu => "WebGPU",
            BackendKind::Cuda => "CUDA",
        }
    }
}

/// A device ready for tensors, with the names needed to report it.
#[derive(Debug, Clone)]
pub struct SelectedDevice {
    pub device: Device,
    pub backend: BackendKind,
    /// Adapter or device description, e.g. `llvmpipe (LLVM 15.0.6, 256 bits)`, `SwiftShader
    /// Device (Subzero)`, `NVIDIA H100`, or `flex` for the CPU backend.
    pub adapter: String,
    /// Why `auto` did not pick a faster backend, when it fell back.
    pub fallback_reason: Option<String>,
}

impl SelectedDevice {
    pub fn cpu(fallback_reason: Option<String>) -> Self {
        SelectedDevice {
            device: Device::flex(),
            backend: BackendKind::Cpu,
            adapter: "flex".to_string(),
            fallback_reason,
        }
    }
}

impl fmt::Display for SelectedDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} · {}", self.backend.label(), self.adapter)
    }
}

/// What went wrong when a requested device could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("unknown device '{0}': expected one of auto, cpu, wgpu, cuda")]
    UnknownChoice(String),
    #[error("no wgpu adapter is usable: {0}")]
    NoWgpuAdapter(String),
    #[error("CUDA is unavailable: {0}")]
    CudaUnavailable(String),
    #[error("no WebGPU device: {0}")]
    NoWebGpu(String),
    #[error("reading the result back from the device failed: {0}")]
    Readback(String),
}

/// A wgpu adapter's description, from `wgpu` itself (not burn), for reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AdapterSummary {
    pub name: String,
    /// `Vulkan`, `Metal`, `Dx12`, `Gl` or `BrowserWebGpu`.
    pub api: String,
    /// `DiscreteGpu`, `IntegratedGpu`, `VirtualGpu`, `Cpu` or `Other`.
    pub device_type: String,
    pub driver: String,
}

impl AdapterSummary {
    pub fn from_info(info: &wgpu::AdapterInfo) -> Self {
        let name = if info.name.trim().is_empty() {
            "unnamed adapter".to_string()
        } else {
            info.name.clone()
        };
        AdapterSummary {
            name,
            api: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
            driver: [info.driver.as_str(), info.driver_info.as_str()]
                .iter()
                .filter(|s| !s.is_empty())
                .cloned()
                .collect::<Vec<_>>()
                .join(" "),
        }
    }

    /// True for hardware GPUs (and virtual ones), false for software rasterisers.
    pub fn is_gpu(&self) -> bool {
        matches!(
            self.device_type.as_str(),
            "DiscreteGpu" | "IntegratedGpu" | "VirtualGpu"
        )
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub use native::*;

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::str::FromStr;
    use std::sync::OnceLock;

    use burn::tensor::{Device, DeviceKind};

    use super::{AdapterSummary, BackendKind, DeviceError, SelectedDevice};

    /// The `--device` choice of every native command.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum DeviceChoice {
        Auto,
        Cpu,
        Wgpu,
        Cuda,
    }

    impl FromStr for DeviceChoice {
        type Err = DeviceError;
        fn from_str(s: &str) -> Result<Self, Self::Err> {
            match s.to_ascii_lowercase().as_str() {
                "auto" => Ok(DeviceChoice::Auto),
                "cpu" | "flex" => Ok(DeviceChoice::Cpu),
                "wgpu" | "vulkan" | "gpu" => Ok(DeviceChoice::Wgpu),
                "cuda" => Ok(DeviceChoice::Cuda),
                _ => Err(DeviceError::UnknownChoice(s.to_string())),
            }
        }
    }

    /// Every wgpu adapter of the compute-capable primary APIs (Vulkan, Metal, DX12) on this
    /// machine, as wgpu reports them. OpenGL is left out: burn does not compute on it.
    pub fn wgpu_adapters() -> Vec<AdapterSummary> {
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = wgpu::Backends::PRIMARY;
        let instance = wgpu::Instance::new(desc);
        pollster::block_on(instance.enumerate_adapters(wgpu::Backends::PRIMARY))
            .iter()
            .map(|a| AdapterSummary::from_info(&a.get_info()))
            .collect()
    }

    /// burn's wgpu runtime can be initialised once per process; keep the answer.
    static WGPU: OnceLock<Result<(Device, AdapterSummary), String>> = OnceLock::new();

    fn wgpu_device() -> Result<(Device, AdapterSummary), DeviceError> {
        WGPU.get_or_init(|| {
            let adapters = wgpu_adapters();
            // Prefer real GPUs; fall back to a CPU adapter (llvmpipe) only when it is all there is.
            let preference = [
                ("DiscreteGpu", DeviceKind::DiscreteGpu(0)),
                ("IntegratedGpu", DeviceKind::IntegratedGpu(0)),
                ("VirtualGpu", DeviceKind::VirtualGpu(0)),
                ("Cpu", DeviceKind::Cpu),
            ];
            let (_, kind) = preference
                .into_iter()
                .find(|(ty, _)| adapters.iter().any(|a| a.device_type == *ty))
                .ok_or("wgpu found no adapter (no Vulkan/Metal/DX12 driver)")?;
            let (device, setup) = Device::wgpu_options()
                .device_kind(kind)
                .init_with_setup()
                .map_err(|e| e.to_string())?;
            Ok((device, AdapterSummary::from_info(&setup.adapter.get_info())))
        })
        .clone()
        .map_err(DeviceError::NoWgpuAdapter)
    }

    #[cfg(not(feature = "cuda"))]
    const NOT_BUILT_WITH_CUDA: &str =
        "this binary was built without CUDA (rebuild with --features cuda)";

    /// CUDA device names, or why there are none.
    pub fn cuda_devices() -> Result<Vec<String>, DeviceError> {
        #[cfg(feature = "cuda")]
        {
            // The CUDA runtime loads libcuda at run time and panics when it is missing.
            let listed = std::panic::catch_unwind(|| {
                Device::enumerate(burn::tensor::DeviceType::Cuda)
                    .into_vec()
                    .into_iter()
                    .map(|d| {
                        d.identity()
                            .map(|id| id.name.to_string())
                            .unwrap_or_else(|| "CUDA device".to_string())
                    })
                    .collect::<Vec<_>>()
            });
            match listed {
                Ok(v) if !v.is_empty() => Ok(v),
                Ok(_) => Err(DeviceError::CudaUnavailable(
                    "no CUDA device found".to_string(),
                )),
                Err(_) => Err(DeviceError::CudaUnavailable(
                    "the CUDA driver (libcuda) could not be loaded".to_string(),
                )),
            }
        }
        #[cfg(not(feature = "cuda"))]
        {
            Err(DeviceError::CudaUnavailable(
                NOT_BUILT_WITH_CUDA.to_string(),
            ))
        }
    }

    #[cfg(feature = "cuda")]
    fn cuda_device() -> Result<SelectedDevice, DeviceError> {
        let names = cuda_devices()?;
        Ok(SelectedDevice {
            device: Device::cuda(0),
            backend: BackendKind::Cuda,
            adapter: names[0].clone(),
            fallback_reason: None,
        })
    }

    #[cfg(not(feature = "cuda"))]
    fn cuda_device() -> Result<SelectedDevice, DeviceError> {
        Err(DeviceError::CudaUnavailable(
            NOT_BUILT_WITH_CUDA.to_string(),
        ))
    }

    /// Picks the device for `choice`; an explicit choice that cannot be met is an error.
    pub fn select(choice: DeviceChoice) -> Result<SelectedDevice, DeviceError> {
        match choice {
            DeviceChoice::Cpu => Ok(SelectedDevice::cpu(None)),
            DeviceChoice::Cuda => cuda_device(),
            DeviceChoice::Wgpu => {
                let (device, adapter) = wgpu_device()?;
                Ok(SelectedDevice {
                    device,
                    backend: BackendKind::Wgpu,
                    adapter: format!("{} ({})", adapter.name, adapter.api),
                    fallback_reason: None,
                })
            }
            DeviceChoice::Auto => {
                let mut reasons = Vec::new();
                match cuda_device() {
                    Ok(d) => return Ok(d),
                    Err(e) => reasons.push(e.to_string()),
                }
                let adapters = wgpu_adapters();
                if adapters.iter().any(AdapterSummary::is_gpu) {
                    match select(DeviceChoice::Wgpu) {
                        Ok(d) => return Ok(d),
                        Err(e) => reasons.push(e.to_string()),
                    }
                } else {
                    let mut seen: Vec<_> = adapters.iter().map(|a| a.name.as_str()).collect();
                    seen.dedup();
                    reasons.push(if seen.is_empty() {
                        "no wgpu adapter".to_string()
                    } else {
                        format!("no wgpu GPU adapter (only {})", seen.join(", "))
                    });
                }
                Ok(SelectedDevice::cpu(Some(reasons.join("; "))))
            }
        }
    }
}

#[cfg(target_arch = "wasm32")]
pub use browser::*;

#[cfg(target_arch = "wasm32")]
mod browser {
    use std::cell::RefCell;

    use burn::tensor::Device;
    use burn::tensor::wgpu::WgpuBackend;

    use super::{AdapterSummary, BackendKind, DeviceError, SelectedDevice};

    thread_local! {
        // A page may register burn's WebGPU runtime only once ("A server is still registered").
        static WEBGPU: RefCell<Option<Result<SelectedDevice, String>>> = const { RefCell::new(None) };
    }

    /// The page's WebGPU device, initialised on first call and shared afterwards.
    pub async fn webgpu_device() -> Result<SelectedDevice, DeviceError> {
        if let Some(done) = WEBGPU.with(|w| w.borrow().clone()) {
            return done.map_err(DeviceError::NoWebGpu);
        }
        let result = Device::wgpu_options()
            .graphics_api(WgpuBackend::WebGpu)
            .init_with_setup_async()
            .await
            .map_err(|e| e.to_string());
        let result = match result {
            Ok((device, setup)) => {
                let raw = setup.adapter.get_info();
                let info = AdapterSummary::from_info(&raw);
                // Browsers often leave `description` empty; vendor and architecture remain.
                let name = if raw.name.trim().is_empty() {
                    js_adapter_description().await.unwrap_or(info.name)
                } else {
                    info.name
                };
                let fallback = if info.device_type == "Cpu" {
                    " (fallback adapter)"
                } else {
                    ""
                };
                Ok(SelectedDevice {
                    device,
                    backend: BackendKind::WebGpu,
                    adapter: format!("{name}{fallback}"),
                    fallback_reason: None,
                })
            }
            Err(e) => Err(e),
        };
        WEBGPU.with(|w| *w.borrow_mut() = Some(result.clone()));
        result.map_err(DeviceError::NoWebGpu)
    }

    /// `vendor architecture device description` of `navigator.gpu.requestAdapter().info`,
    /// read directly because wgpu keeps only the description.
    async fn js_adapter_description() -> Option<String> {
        use js_sys::{Function, Promise, Reflect};
        use wasm_bindgen::{JsCast, JsValue};

        let navigator = web_sys::window()?.navigator();
        let gpu = Reflect::get(&navigator, &JsValue::from_str("gpu")).ok()?;
        if gpu.is_undefined() {
            return None;
        }
        let request: Function = Reflect::get(&gpu, &JsValue::from_str("requestAdapter"))
            .ok()?
            .dyn_into()
            .ok()?;
        let promise: Promise = request.call0(&gpu).ok()?.dyn_into().ok()?;
        let adapter = wasm_bindgen_futures::JsFuture::from(promise).await.ok()?;
        let info = Reflect::get(&adapter, &JsValue::from_str("info")).ok()?;
        let parts: Vec<String> = ["vendor", "architecture", "device", "description"]
            .iter()
            .filter_map(|key| {
                Reflect::get(&info, &JsValue::from_str(key))
                    .ok()?
                    .as_string()
            })
            .filter(|s| !s.trim().is_empty())
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    }

    /// WebGPU when the browser gives an adapter (and `prefer_cpu` is off), else flex.
    pub async fn browser_device(prefer_cpu: bool) -> SelectedDevice {
        if prefer_cpu {
            return SelectedDevice::cpu(Some("CPU chosen in settings".to_string()));
        }
        match webgpu_device().await {
            Ok(d) => d,
            Err(DeviceError::NoWebGpu(why)) => {
                SelectedDevice::cpu(Some(format!("WebGPU unavailable: {why}")))
            }
            Err(e) => SelectedDevice::cpu(Some(e.to_string())),
        }
    }
}
