//! The crates linked into the `.wasm`, for the SBOM: cargo's resolution for the build's target
//! and features (`cargo metadata --filter-platform`), walked from the built package over normal
//! dependencies only. Dev- and build-dependencies, dependencies for other platforms, and
//! proc-macro crates (they run inside the compiler, on the host) are not linked, so not listed.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::process::Command;

use cargo_metadata::{DependencyKind, Metadata, MetadataCommand, Package, PackageId, TargetKind};
use tracing::{debug, info};

use super::{BuildSpec, run_tool};
use crate::context::Env;
use crate::error::{Error, Result};
use crate::owner::Owner;

/// The built package and the crates linked into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Linked {
    /// The package built.
    pub root: LinkedCrate,
    /// Every crate linked into it, each once, by name and version.
    pub crates: Vec<LinkedCrate>,
}

/// One crate of the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedCrate {
    /// The crate's name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Its `license` field (an SPDX expression, or the older `MIT/Apache-2.0` form).
    pub license: Option<String>,
    /// Where cargo took it from.
    pub source: CrateSource,
    /// Cargo's id of the package, unique in the graph.
    pub id: String,
    /// The ids of the linked crates it depends on, sorted.
    pub depends_on: Vec<String>,
}

/// Where a crate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrateSource {
    /// crates.io.
    CratesIo,
    /// A git repository (its URL without the query) at a commit.
    Git {
        /// The repository URL.
        url: String,
        /// The commit cargo locked.
        commit: Option<String>,
    },
    /// Another registry, by its index URL.
    Registry(String),
    /// A path in the workspace or beside it.
    Local,
}

impl CrateSource {
    fn of(package: &Package) -> Self {
        let Some(source) = &package.source else {
            return CrateSource::Local;
        };
        if source.is_crates_io() {
            return CrateSource::CratesIo;
        }
        let repr = source.repr.as_str();
        if let Some(git) = repr.strip_prefix("git+") {
            let (url, commit) = match git.split_once('#') {
                Some((url, commit)) => (url, Some(commit.to_owned())),
                None => (git, None),
            };
            let url = url.split_once('?').map_or(url, |(u, _)| u).to_owned();
            return CrateSource::Git { url, commit };
        }
        let index = repr
            .strip_prefix("registry+")
            .or_else(|| repr.strip_prefix("sparse+"))
            .unwrap_or(repr);
        CrateSource::Registry(index.to_owned())
    }
}

/// The crates linked into `package` as cargo resolves them for `spec.target` and `features`
/// (the package's features as cargo built it). Blocking.
pub(super) fn linked_crates(
    spec: &BuildSpec,
    env: &Env,
    owner: Option<Owner>,
    package: &Package,
    features: &[String],
) -> Result<Linked> {
    let mut cmd = MetadataCommand::new();
    cmd.cargo_path("cargo")
        .current_dir(&spec.working_directory)
        .other_options(metadata_args(spec, &package.name, features));
    let mut cmd: Command = cmd.cargo_command();
    debug!("running {cmd:?}");
    let stdout = run_tool(
        Owner::apply(owner, &mut cmd),
        env,
        "cargo",
        &format!(
            "`cargo metadata` could not list the crates linked into `{}` for the SBOM",
            package.name
        ),
    )
    .map_err(|e| match e {
        Error::Build(reason) => Error::Build(format!(
            "{reason}; set `sbom: false` to push without an SBOM"
        )),
        e => e,
    })?;
    let metadata = MetadataCommand::parse(stdout)
        .map_err(|e| Error::Build(format!("cannot read `cargo metadata` output: {e}")))?;
    let linked = walk(&metadata, &package.id)?;
    info!(
        "{} crates linked into `{}` for {} (the SBOM's components)",
        linked.crates.len(),
        package.name,
        spec.target
    );
    Ok(linked)
}

/// `cargo metadata`'s arguments: the target's platform, exactly the features cargo built the
/// package with (named `package/feature`, which a workspace root takes too), and cargo's
/// lock-file flags from `cargo-args`.
fn metadata_args(spec: &BuildSpec, package: &str, features: &[String]) -> Vec<String> {
    let mut args = vec![
        "--filter-platform".to_owned(),
        spec.target.clone(),
        "--no-default-features".to_owned(),
    ];
    if !features.is_empty() {
        args.push("--features".to_owned());
        args.push(
            features
                .iter()
                .map(|f| format!("{package}/{f}"))
                .collect::<Vec<_>>()
                .join(","),
        );
    }
    args.extend(
        spec.cargo_args
            .iter()
            .filter(|a| matches!(a.as_str(), "--locked" | "--offline" | "--frozen"))
            .cloned(),
    );
    args
}

fn is_proc_macro(package: &Package) -> bool {
    package
        .targets
        .iter()
        .any(|t| t.kind.contains(&TargetKind::ProcMacro))
}

/// Walks cargo's resolve graph from `root` over normal dependencies, leaving out proc macros.
pub fn walk(metadata: &Metadata, root: &PackageId) -> Result<Linked> {
    let missing = || Error::Build("`cargo metadata` returned no dependency graph".to_owned());
    let resolve = metadata.resolve.as_ref().ok_or_else(missing)?;
    let nodes: BTreeMap<&PackageId, _> = resolve.nodes.iter().map(|n| (&n.id, n)).collect();
    let packages: BTreeMap<&PackageId, &Package> =
        metadata.packages.iter().map(|p| (&p.id, p)).collect();

    let mut edges: BTreeMap<&PackageId, BTreeSet<&PackageId>> = BTreeMap::new();
    let mut queue = VecDeque::from([root]);
    while let Some(id) = queue.pop_front() {
        if edges.contains_key(id) {
            continue;
        }
        let node = nodes.get(id).ok_or_else(missing)?;
        let linked: BTreeSet<&PackageId> = node
            .deps
            .iter()
            .filter(|d| d.dep_kinds.iter().any(|k| k.kind == DependencyKind::Normal))
            .map(|d| &d.pkg)
            .filter(|pkg| packages.get(pkg).is_some_and(|p| !is_proc_macro(p)))
            .collect();
        queue.extend(linked.iter().copied());
        edges.insert(id, linked);
    }

    let describe = |id: &PackageId| -> Result<LinkedCrate> {
        let package = packages.get(id).ok_or_else(missing)?;
        Ok(LinkedCrate {
            name: package.name.to_string(),
            version: package.version.to_string(),
            license: package.license.clone(),
            source: CrateSource::of(package),
            id: id.repr.clone(),
            depends_on: edges[id].iter().map(|d| d.repr.clone()).collect(),
        })
    };
    let mut crates = edges
        .keys()
        .filter(|id| **id != root)
        .map(|id| describe(id))
        .collect::<Result<Vec<_>>>()?;
    crates.sort_by(|a, b| (&a.name, &a.version, &a.id).cmp(&(&b.name, &b.version, &b.id)));
    Ok(Linked {
        root: describe(root)?,
        crates,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_are_named_by_package_and_lock_flags_kept() {
        let spec = BuildSpec {
            working_directory: ".".into(),
            package: None,
            target: "wasm32-wasip1".into(),
            profile: "release".into(),
            features: vec![],
            cargo_args: vec!["--locked".into(), "--bin".into(), "app".into()],
            sbom: true,
        };
        assert_eq!(
            metadata_args(&spec, "app", &["default".into(), "fast".into()]),
            [
                "--filter-platform",
                "wasm32-wasip1",
                "--no-default-features",
                "--features",
                "app/default,app/fast",
                "--locked"
            ]
        );
    }
}
