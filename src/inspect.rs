//! The inspect use case: one JSON document describing an artifact, for scripts: its format,
//! media types, the Wasm kind and component interfaces its config records, annotations,
//! sizes and referrers (the SBOM named apart). Reads the manifest and config only; the layer is
//! not downloaded, but for the image form, whose module is inside its layer.

use serde_json::{Value, json};

use crate::artifact::WasmConfig;
use crate::artifact::image::{self, ImageConfig};
use crate::error::Result;
use crate::registry::ReadTarget;
use crate::request::ReadRequest;
use crate::resolve::{self, ArtifactFormat, Source};

/// Describes the artifact `request` names.
pub async fn inspect(request: &ReadRequest) -> Result<Value> {
    let image = &request.image;
    let source = Source::open(&image.location, &request.connection).await?;
    let fetched = resolve::fetch_manifest(&source, image).await?;
    let manifest = &fetched.manifest;
    let config_bytes = source.get_blob(&manifest.config).await?;
    let config: Option<WasmConfig> = serde_json::from_slice(&config_bytes).ok();
    let wasm_layer = resolve::choose_layer(image, manifest, request.layer.as_deref()).ok();
    let format = ArtifactFormat::of(manifest);
    // The image form's config is an image config, and its module is inside the layer: taken
    // out (bounded, validated) for the module's own digest and size.
    let image_config: Option<ImageConfig> = (format == ArtifactFormat::Image)
        .then(|| serde_json::from_slice(&config_bytes).ok())
        .flatten();
    let module = match (&image_config, &wasm_layer) {
        (Some(_), Some(layer)) => Some(image::module_of(&source, layer).await?),
        _ => wasm_layer.as_ref().map(|l| (l.digest.clone(), l.size)),
    };
    let referrers = source.referrers(&fetched.digest).await?;

    let layers: Vec<Value> = manifest
        .layers
        .iter()
        .map(|l| {
            json!({
                "mediaType": l.media_type,
                "digest": l.digest.to_string(),
                "size": l.size,
                "title": resolve::layer_title(l),
                "wasm": wasm_layer.as_ref().is_some_and(|w| w.digest == l.digest),
            })
        })
        .collect();
    Ok(json!({
        "reference": image.to_string(),
        "ref": image.pinned(&fetched.digest),
        "digest": fetched.digest.to_string(),
        "format": format,
        "mediaType": fetched.blob.media_type,
        "artifactType": manifest.artifact_type,
        "config": {
            "mediaType": manifest.config.media_type,
            "digest": manifest.config.digest.to_string(),
            "size": manifest.config.size,
        },
        "os": config.as_ref().map(|c| c.os.clone()).or(image_config.as_ref().map(|c| c.os.clone())),
        "architecture": config.as_ref().map(|c| c.architecture.clone()).or(image_config.as_ref().map(|c| c.architecture.clone())),
        "created": config.as_ref().and_then(|c| c.created.clone()).or(image_config.as_ref().and_then(|c| c.created.clone())),
        "component": config.as_ref().and_then(|c| c.component.clone()),
        "layers": layers,
        "wasm-digest": module.as_ref().map(|(digest, _)| digest.to_string()),
        "size": module.as_ref().map(|(_, size)| size),
        // Sizes are the registry's word: a sum of hostile ones saturates rather than overflows.
        "totalSize": manifest.layers.iter().map(|l| l.size).fold(fetched.blob.bytes.len() as u64, u64::saturating_add).saturating_add(manifest.config.size),
        "annotations": manifest.annotations,
        "sbom": referrers.iter().rev().find(|r| r.artifact_type.as_deref() == Some(crate::provenance::referrer::SBOM_ARTIFACT_TYPE)).map(|r| r.digest.to_string()),
        "referrers": referrers.iter().map(|r| json!({
            "digest": r.digest.to_string(),
            "mediaType": r.media_type,
            "artifactType": r.artifact_type,
            "size": r.size,
        })).collect::<Vec<_>>(),
    }))
}
