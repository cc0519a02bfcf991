//! The `encore` binary, run as a user would.
#![cfg(not(target_arch = "wasm32"))]

mod common;
use common::encore;

#[test]
fn help_lists_every_subcommand() {
    let (code, out, _) = encore(&["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("doctor"), "{out}");
    assert!(out.contains("Report the version"), "{out}");
}

#[test]
fn doctor_on_cpu_checks_the_computation() {
    let (code, out, err) = encore(&["doctor", "--device", "cpu"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains(concat!("encore ", env!("CARGO_PKG_VERSION"))),
        "{out}"
    );
    assert!(out.contains("--device cpu -> CPU · flex"), "{out}");
    assert!(out.contains("doctor: ok"), "{out}");
}

#[test]
fn doctor_json_reports_every_backend() {
    let (code, out, err) = encore(&["doctor", "--device", "cpu", "--json"]);
    assert_eq!(code, 0, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    let backends = report["backends"].as_array().unwrap();
    let names: Vec<_> = backends
        .iter()
        .map(|b| b["backend"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["CPU (flex)", "wgpu", "CUDA"]);
    assert_eq!(backends[0]["available"], true);
    assert!(backends[0]["max_abs_diff"].as_f64().unwrap() < 1e-6);
    assert_eq!(report["ok"], true);
}

#[test]
fn doctor_rejects_an_unknown_device() {
    let (code, _, err) = encore(&["doctor", "--device", "tpu"]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown device 'tpu'"), "{err}");
}

#[cfg(not(feature = "cuda"))]
#[test]
fn doctor_fails_when_cuda_is_requested_but_not_built() {
    let (code, out, _) = encore(&["doctor", "--device", "cuda"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("built without CUDA"), "{out}");
    assert!(out.contains("the requested device is unusable"), "{out}");
}

#[test]
fn doctor_on_wgpu_names_the_adapter() {
    let adapters = encore::device::wgpu_adapters();
    let (code, out, err) = encore(&["doctor", "--device", "wgpu", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    if adapters.is_empty() {
        eprintln!("SKIPPED the adapter check: wgpu finds no adapter here");
        assert_eq!(code, 1, "an unusable requested device must fail: {err}");
        return;
    }
    assert_eq!(code, 0, "{out}\n{err}");
    let selected = report["selected"].as_str().unwrap();
    assert!(selected.starts_with("wgpu · "), "{selected}");
    assert!(
        adapters.iter().any(|a| selected.contains(&a.name)),
        "{selected} names none of {adapters:?}"
    );
    assert_eq!(report["backends"][1]["available"], true);
}
