//! `encore doctor`: what this machine can compute on, each backend checked with real numbers.

use std::process::ExitCode;
use std::time::Instant;

use clap::Args;

use crate::device::smoke;
use crate::device::{self, AdapterSummary, DeviceChoice, SelectedDevice};

#[derive(Args, Debug)]
pub struct DoctorArgs {
    /// The device whose use is checked: exit status 1 when it is unusable
    #[arg(long, default_value = "auto", value_parser = super::args::parse_device)]
    device: DeviceChoice,
    /// Print the report as JSON instead of text
    #[arg(long)]
    json: bool,
}

#[derive(serde::Serialize)]
struct BackendCheck {
    backend: String,
    adapter: Option<String>,
    available: bool,
    /// Why the backend is unavailable, or what the check found wrong.
    note: Option<String>,
    max_abs_diff: Option<f64>,
    millis: Option<f64>,
}

#[derive(serde::Serialize)]
struct DoctorReport {
    version: &'static str,
    wgpu_adapters: Vec<AdapterSummary>,
    backends: Vec<BackendCheck>,
    requested: String,
    selected: Option<String>,
    fallback_reason: Option<String>,
    ok: bool,
}

fn check(backend: &str, selected: Result<SelectedDevice, String>) -> BackendCheck {
    match selected {
        Err(note) => BackendCheck {
            backend: backend.to_string(),
            adapter: None,
            available: false,
            note: Some(note),
            max_abs_diff: None,
            millis: None,
        },
        Ok(sel) => {
            let start = Instant::now();
            let result = smoke::run(&sel.device);
            let millis = start.elapsed().as_secs_f64() * 1e3;
            let (ok, note, diff) = match result {
                Ok(r) => (r.ok, (!r.ok).then(|| r.summary()), Some(r.max_abs_diff)),
                Err(e) => (false, Some(format!("computation failed: {e}")), None),
            };
            BackendCheck {
                backend: backend.to_string(),
                adapter: Some(sel.adapter.clone()),
                available: ok,
                note,
                max_abs_diff: diff,
                millis: Some(millis),
            }
        }
    }
}

pub fn run(args: DoctorArgs) -> anyhow::Result<ExitCode> {
    let adapters = device::wgpu_adapters();
    let mut backends = vec![check(
        "CPU (flex)",
        device::select(DeviceChoice::Cpu).map_err(|e| e.to_string()),
    )];
    let wgpu = if adapters.is_empty() {
        Err(
            "no wgpu adapter (install mesa-vulkan-drivers for llvmpipe, or a GPU driver)"
                .to_string(),
        )
    } else {
        device::select(DeviceChoice::Wgpu).map_err(|e| e.to_string())
    };
    backends.push(check("wgpu", wgpu));
    backends.push(check(
        "CUDA",
        device::select(DeviceChoice::Cuda).map_err(|e| e.to_string()),
    ));

    let requested = format!("{:?}", args.device).to_lowercase();
    let selected = device::select(args.device);
    let (selected_name, fallback_reason, ok) = match &selected {
        Ok(sel) => {
            let name = sel.to_string();
            let row = match sel.backend {
                device::BackendKind::Cpu => 0,
                device::BackendKind::Wgpu | device::BackendKind::WebGpu => 1,
                device::BackendKind::Cuda => 2,
            };
            (
                Some(name),
                sel.fallback_reason.clone(),
                backends[row].available,
            )
        }
        Err(e) => (None, Some(e.to_string()), false),
    };
    let report = DoctorReport {
        version: env!("CARGO_PKG_VERSION"),
        wgpu_adapters: adapters,
        backends,
        requested,
        selected: selected_name,
        fallback_reason,
        ok,
    };

    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(&report);
    }
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_text(r: &DoctorReport) {
    println!("encore {}", r.version);
    println!();
    println!("wgpu adapters:");
    if r.wgpu_adapters.is_empty() {
        println!("  (none)");
    }
    for a in &r.wgpu_adapters {
        let driver = if a.driver.is_empty() {
            String::new()
        } else {
            format!(", {}", a.driver)
        };
        println!("  - {} [{}, {}{}]", a.name, a.api, a.device_type, driver);
    }
    println!();
    println!("backends (each runs softmax(X·W) and compares it with an f64 reference):");
    for b in &r.backends {
        let status = match (b.available, b.max_abs_diff) {
            (true, Some(d)) => format!(
                "ok      max |Δ| {d:.1e} in {:.0} ms",
                b.millis.unwrap_or(0.0)
            ),
            _ => "FAILED".to_string(),
        };
        let status = if b.adapter.is_none() {
            "unavailable".to_string()
        } else {
            status
        };
        println!(
            "  {:<11} {:<46} {}",
            b.backend,
            b.adapter.as_deref().unwrap_or("-"),
            status
        );
        if let Some(note) = &b.note {
            println!("  {:<11} {}", "", note);
        }
    }
    println!();
    match &r.selected {
        Some(sel) => println!("--device {} -> {}", r.requested, sel),
        None => println!("--device {} -> unusable", r.requested),
    }
    if let Some(reason) = &r.fallback_reason {
        println!("  ({reason})");
    }
    println!(
        "{}",
        if r.ok {
            "doctor: ok"
        } else {
            "doctor: the requested device is unusable"
        }
    );
}
