//! What a pushed artifact says about where it came from: annotations from the GitHub context
//! and the tags derived from the git ref.

pub mod annotations;
pub mod tags;
