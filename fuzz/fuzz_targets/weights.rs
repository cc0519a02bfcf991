//! safetensors files (every tensor read as float32, bytes or q8) and a feature store's manifest
//! with its modality files.
#![no_main]
use encore::util::weights::WeightsFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = WeightsFile::parse(data) {
        for n in f.names() {
            let _ = f.f32_or_q8(&n);
            let _ = f.u8_shaped(&n, &[1]);
        }
    }
    // A manifest and one modality file, split at the first NUL.
    let (manifest, file) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let _ = encore::features::store::FeatureStore::from_files(manifest, |_| Ok(file.to_vec()));
});
