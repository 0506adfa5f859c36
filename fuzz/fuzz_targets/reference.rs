//! Image names, references, tags and digests as users write them: parsing never panics, and
//! what parses prints back to something that parses to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasm_oci::reference::{Destination, Digest, ImageName, ImageRef, Tag};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(name) = text.parse::<ImageName>() {
        let again: ImageName = name.to_string().parse().expect("a printed name parses");
        assert_eq!(again, name);
    }
    if let Ok(image) = text.parse::<ImageRef>() {
        let again: ImageRef = image
            .to_string()
            .parse()
            .expect("a printed reference parses");
        assert_eq!(again, image);
        let _ = image.manifest_ref();
    }
    if let Ok(tag) = text.parse::<Tag>() {
        assert_eq!(tag.as_str().parse::<Tag>().as_ref(), Ok(&tag));
    }
    if let Ok(digest) = text.parse::<Digest>() {
        assert_eq!(digest.to_string().parse::<Digest>().as_ref(), Ok(&digest));
    }
    let _ = Destination::parse(text);
});
