//! What a cargo build contributes to the SLSA provenance: the toolchain and `Cargo.lock` as
//! resolved dependencies, and the build's parameters as `internalParameters.build`.

use std::collections::BTreeMap;

use super::BuildRecord;
use crate::provenance::slsa::{BuildDetails, ResourceDescriptor};

impl BuildRecord {
    /// A `rustc -vV` line's value (`release`, `commit-hash`, `host`).
    pub fn toolchain_field(&self, name: &str) -> Option<&str> {
        self.toolchain.lines().find_map(|l| {
            l.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix(':'))
                .map(str::trim)
        })
    }
}

impl BuildRecord {
    /// What this build contributes to the provenance statement.
    pub fn provenance(&self) -> BuildDetails {
        BuildDetails {
            resolved_dependencies: self.resolved_dependencies(),
            parameters: serde_json::to_value(self).ok(),
        }
    }

    /// The toolchain and `Cargo.lock`, as resolved dependencies.
    fn resolved_dependencies(&self) -> Vec<ResourceDescriptor> {
        let mut deps = Vec::new();
        if let Some(release) = self.toolchain_field("release") {
            let mut digest = BTreeMap::new();
            if let Some(commit) = self
                .toolchain_field("commit-hash")
                .filter(|c| *c != "unknown")
            {
                digest.insert("gitCommit".to_owned(), commit.to_owned());
            }
            deps.push(ResourceDescriptor {
                uri: Some(format!("pkg:generic/rust@{release}")),
                name: Some("rustc".to_owned()),
                digest,
            });
        }
        if let Some(lock) = &self.cargo_lock_digest {
            deps.push(ResourceDescriptor {
                uri: None,
                name: Some("Cargo.lock".to_owned()),
                digest: BTreeMap::from([("sha256".to_owned(), lock.hex().to_owned())]),
            });
        }
        deps
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::Digest;

    #[test]
    fn toolchain_and_lock_become_resolved_dependencies() {
        let record = BuildRecord {
            toolchain: "rustc 1.91.0 (f8297e351 2025-10-28)\nbinary: rustc\ncommit-hash: f8297e351a40c1439a467bbbb6879088047f50b3\nrelease: 1.91.0\n".into(),
            target: "wasm32-wasip1".into(),
            profile: "release".into(),
            features: vec![],
            package: "multiply".into(),
            cargo_lock_digest: Some(Digest::of(b"lock")),
            linked: None,
        };
        let details = record.provenance();
        let deps = &details.resolved_dependencies;
        assert_eq!(deps[0].uri.as_deref(), Some("pkg:generic/rust@1.91.0"));
        assert_eq!(
            deps[0].digest["gitCommit"],
            "f8297e351a40c1439a467bbbb6879088047f50b3"
        );
        assert_eq!(deps[1].name.as_deref(), Some("Cargo.lock"));
        assert_eq!(deps[1].digest["sha256"], Digest::of(b"lock").hex());
        assert_eq!(details.parameters.unwrap()["target"], "wasm32-wasip1");
    }
}
