//! What a pushed artifact says about where it came from: annotations from the GitHub context,
//! the tags derived from the git ref, and the SLSA provenance attached as a referrer (signed
//! into a DSSE envelope when a key is given).

pub mod annotations;
pub mod dsse;
pub mod levels;
pub mod referrer;
pub mod slsa;
pub mod tags;
