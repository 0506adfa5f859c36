//! What pull and verify read from a registry before any layer: the manifest (its format, the
//! layer chosen, the file name written), an image index (the referrers listing) and the Wasm
//! config. Nothing panics, and the file name a layer's title gives never leaves the folder.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasm_oci::artifact::{Blob, MANIFEST_MEDIA_TYPE, WasmConfig};
use wasm_oci::reference::ImageRef;
use wasm_oci::registry::index_entries;
use wasm_oci::resolve::{ArtifactFormat, choose_layer, file_name_for, parse_manifest};

fuzz_target!(|data: &[u8]| {
    let image: ImageRef = "registry.example/app:1.0"
        .parse()
        .expect("a valid reference");
    let _ = index_entries(data);
    let _ = serde_json::from_slice::<WasmConfig>(data);
    let Ok(fetched) = parse_manifest(&image, Blob::new(MANIFEST_MEDIA_TYPE, data.to_vec())) else {
        return;
    };
    let _ = ArtifactFormat::of(&fetched.manifest);
    if let Ok(layer) = choose_layer(&image, &fetched.manifest, None) {
        let name = file_name_for(&image, &layer);
        assert!(!name.is_empty() && name != "." && name != "..", "{name:?}");
        assert!(!name.contains('/'), "{name:?}");
    }
});
