//! Domain types for what users name: digests, tags, image names and where a push goes.
//! Each is parsed once, at the edge, with a message that says what a valid value looks like.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// A `sha256:<64 lowercase hex>` content digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: String,
}

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        use sha2::Digest as _;
        Self::from_hasher(sha2::Sha256::new_with_prefix(bytes))
    }

    /// The digest a finished hasher holds.
    pub fn from_hasher(hasher: sha2::Sha256) -> Self {
        use sha2::Digest as _;
        Digest {
            hex: hex::encode(hasher.finalize()),
        }
    }

    /// The 64 hex digits, without the algorithm.
    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl FromStr for Digest {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let Some(hex) = s.strip_prefix("sha256:") else {
            return Err(format!(
                "digest `{s}` must start with `sha256:` followed by 64 hex digits"
            ));
        };
        if hex.len() != 64 {
            return Err(format!(
                "digest `{s}` must have 64 hex digits after `sha256:`; got {}",
                hex.len()
            ));
        }
        if !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(format!(
                "digest `{s}` may only contain lowercase hex digits after `sha256:`"
            ));
        }
        Ok(Digest {
            hex: hex.to_owned(),
        })
    }
}

/// An OCI tag: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(String);

impl Tag {
    /// The tag text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Tag {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let valid_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        let mut chars = s.chars();
        match chars.next() {
            None => return Err("a tag cannot be empty".to_owned()),
            Some(c) if !(c.is_ascii_alphanumeric() || c == '_') => {
                return Err(format!("tag `{s}` must start with a letter, digit or `_`"));
            }
            _ => {}
        }
        if s.len() > 128 {
            return Err(format!("tag `{s}` is longer than 128 characters"));
        }
        if let Some(bad) = s.chars().find(|&c| !valid_char(c)) {
            return Err(format!(
                "tag `{s}` contains `{bad}`; tags may use letters, digits, `.`, `_` and `-`"
            ));
        }
        Ok(Tag(s.to_owned()))
    }
}

/// A registry and repository, without tag or digest: `ghcr.io/org/app`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageName {
    registry: String,
    repository: String,
}

impl ImageName {
    /// The registry host, with port if any.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path inside the registry.
    pub fn repository(&self) -> &str {
        &self.repository
    }
}

impl fmt::Display for ImageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)
    }
}

impl FromStr for ImageName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("an image name cannot be empty".to_owned());
        }
        if s.contains("://") {
            return Err(format!(
                "image `{s}` must not have a scheme; write `registry/repository` (use `insecure: true` for plain HTTP)"
            ));
        }
        if s.contains('@') {
            return Err(format!(
                "image `{s}` must not carry a digest when pushing; give `registry/repository` and put tags in `tags`"
            ));
        }
        let without_registry = s.split_once('/').map(|(_, rest)| rest).unwrap_or(s);
        if without_registry.contains(':') {
            return Err(format!(
                "image `{s}` must not carry a tag when pushing; put tags in `tags`"
            ));
        }
        // Repository names are lowercase in the distribution spec, and host names are
        // case-insensitive: `ghcr.io/${{ github.repository }}` of an `Org/App` repository means
        // `ghcr.io/org/app`, as docker/metadata-action and the registries themselves read it.
        let lowered = s.to_ascii_lowercase();
        if lowered != s {
            tracing::info!(
                target: crate::NOTICE,
                "image `{s}`: repository names are lowercase, so this is `{lowered}`"
            );
        }
        let (registry, repository) = split_name(&lowered)
            .map_err(|e| format!("image `{s}` is not a valid `registry/repository` name: {e}"))?;
        Ok(ImageName {
            registry,
            repository,
        })
    }
}

/// The longest repository path the distribution spec allows.
const REPOSITORY_MAX_LEN: usize = 255;

/// Splits a name as the distribution reference grammar reads it: an optional registry host
/// (`[port]`, recognised by a `.`, a `:` or `localhost`), then path components of lowercase
/// letters and digits joined by `.`, `_`, `__` or dashes. Docker Hub is the default registry,
/// `library/` the default namespace of a one-component name, as docker reads them.
///
/// Written out rather than with a regex crate, which compiles a Unicode regex on first use:
/// about 50 ms, a tenth of a 64 MiB push.
fn split_name(name: &str) -> Result<(String, String), String> {
    let (registry, path) = match name.split_once('/') {
        Some((host, rest)) if host.contains(['.', ':']) || host == "localhost" => {
            // The grammar also reads a first component that is a valid path component (such
            // as `my_registry.local`) as the registry, once it has a `.`.
            check_host(host).or_else(|e| check_path_component(host).map_err(|_| e))?;
            (host, rest)
        }
        _ => ("docker.io", name),
    };
    for component in path.split('/') {
        check_path_component(component)?;
    }
    let (registry, path) = match registry {
        "docker.io" | "index.docker.io" if !path.contains('/') => {
            ("index.docker.io", format!("library/{path}"))
        }
        "docker.io" | "index.docker.io" => ("index.docker.io", path.to_owned()),
        host => (host, path.to_owned()),
    };
    // Counted as stored, with Docker Hub's `library/`.
    if path.len() > REPOSITORY_MAX_LEN {
        return Err(format!(
            "the repository is longer than {REPOSITORY_MAX_LEN} characters"
        ));
    }
    Ok((registry.to_owned(), path))
}

/// `host[:port]`: dot-separated labels of letters, digits and inner dashes.
fn check_host(host: &str) -> Result<(), String> {
    let (labels, port) = match host.split_once(':') {
        Some((labels, port)) => (labels, Some(port)),
        None => (host, None),
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if !labels.split('.').all(label_ok) {
        return Err(format!(
            "registry `{host}` must be a host name such as `ghcr.io` or `localhost:5000`"
        ));
    }
    match port {
        Some(p) if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) => {
            Err(format!("registry `{host}` has a port that is not a number"))
        }
        Some(p) if !p.parse::<u16>().is_ok_and(|n| n >= 1) => Err(format!(
            "registry `{host}` has port {p}; a port is a number from 1 to 65535"
        )),
        _ => Ok(()),
    }
}

/// A path component: lowercase letters and digits, joined by `.`, `_`, `__` or dashes.
fn check_path_component(component: &str) -> Result<(), String> {
    let bad = || {
        Err(format!(
            "`{component}` must be lowercase letters and digits, joined by `.`, `_`, `__` or `-`"
        ))
    };
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = component.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return bad();
    };
    if !alnum(first) || !alnum(last) {
        return bad();
    }
    // Between alphanumeric runs: one `.`, one or two `_`, or any number of `-`.
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        let ok = separator == "."
            || separator == "_"
            || separator == "__"
            || separator.bytes().all(|b| b == b'-');
        if !ok {
            return bad();
        }
    }
    Ok(())
}

/// Where a push goes: a registry repository or an OCI image layout directory on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A remote registry.
    Registry(ImageName),
    /// An OCI image layout directory (`oci:DIR`), written without any server.
    Layout(PathBuf),
}

impl Destination {
    /// Parses `oci:DIR` as a layout and anything else as a registry image name.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.strip_prefix("oci:") {
            Some("") => Err("`oci:` needs a directory, as in `oci:./out`".to_owned()),
            Some(dir) if dir.contains(':') => Err(format!(
                "`{s}`: give the layout as `oci:DIR` and put tags in `tags`"
            )),
            Some(dir) => Ok(Destination::Layout(PathBuf::from(dir))),
            None => s.parse().map(Destination::Registry),
        }
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Destination::Registry(name) => name.fmt(f),
            Destination::Layout(dir) => write!(f, "oci:{}", dir.display()),
        }
    }
}

/// How a manifest is addressed when it is put.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestRef {
    /// By its own digest: uploads the manifest without moving any tag.
    Digest(Digest),
    /// By tag: points the tag at the manifest.
    Tag(Tag),
}

impl fmt::Display for ManifestRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ManifestRef::Digest(d) => write!(f, "@{d}"),
            ManifestRef::Tag(t) => write!(f, ":{t}"),
        }
    }
}

/// What a pull, a verify or an inspect names: where the artifact is (a registry repository or an
/// `oci:DIR` layout) and a tag, a digest, or both (`repo:tag@sha256:...`, where the digest is
/// what is fetched and the tag is only checked to still point at it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// The repository or layout.
    pub location: Destination,
    /// The tag, if written.
    pub tag: Option<Tag>,
    /// The digest, if written.
    pub digest: Option<Digest>,
}

impl ImageRef {
    /// How to fetch the manifest: by digest when one is written, else by tag.
    pub fn manifest_ref(&self) -> ManifestRef {
        match (&self.digest, &self.tag) {
            (Some(d), _) => ManifestRef::Digest(d.clone()),
            (None, Some(t)) => ManifestRef::Tag(t.clone()),
            (None, None) => unreachable!("parse requires a tag or a digest"),
        }
    }

    /// This reference pinned to `digest` (no tag): what deploy jobs should use.
    pub fn pinned(&self, digest: &Digest) -> String {
        format!("{}@{digest}", self.location)
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.location.fmt(f)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for ImageRef {
    type Err = String;

    /// `registry/repo:tag`, `registry/repo@sha256:...`, `registry/repo:tag@sha256:...`,
    /// `oci:DIR:tag` or `oci:DIR@sha256:...`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (rest, digest) = match s.rsplit_once('@') {
            Some((rest, d)) => (rest, Some(d.parse::<Digest>()?)),
            None => (s, None),
        };
        // A tag is what follows the last `:` after the last `/` (a registry port has a `/` after it).
        let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) if !(rest.starts_with("oci:") && last_slash + i == 3) => {
                let tag = &rest[last_slash + i + 1..];
                (&rest[..last_slash + i], Some(tag.parse::<Tag>()?))
            }
            _ => (rest, None),
        };
        if tag.is_none() && digest.is_none() {
            return Err(format!(
                "`{s}` names no version: add `:TAG` or, better, `@sha256:...` (the `digest` output of the push)"
            ));
        }
        let location = Destination::parse(name)?;
        Ok(ImageRef {
            location,
            tag,
            digest,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_parse_names_the_problem() {
        let ok = format!("sha256:{}", "a".repeat(64));
        assert_eq!(ok.parse::<Digest>().unwrap().to_string(), ok);
        assert!(
            "sha256:abc"
                .parse::<Digest>()
                .unwrap_err()
                .contains("got 3")
        );
        assert!("md5:abc".parse::<Digest>().unwrap_err().contains("sha256:"));
        let upper = format!("sha256:{}", "A".repeat(64));
        assert!(upper.parse::<Digest>().is_err());
    }

    #[test]
    fn digest_of_known_bytes() {
        assert_eq!(
            Digest::of(b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn tags_follow_the_distribution_grammar() {
        for ok in [
            "v1",
            "1.2.3",
            "latest",
            "_x",
            "sha-abc1234",
            &"a".repeat(128),
        ] {
            assert!(ok.parse::<Tag>().is_ok(), "{ok}");
        }
        for bad in ["", "-x", ".x", "a/b", "a:b", "ä", &"a".repeat(129)] {
            assert!(bad.parse::<Tag>().is_err(), "{bad}");
        }
    }

    #[test]
    fn image_names() {
        let name: ImageName = "localhost:5000/org/app".parse().unwrap();
        assert_eq!(name.registry(), "localhost:5000");
        assert_eq!(name.repository(), "org/app");
        let gh: ImageName = "ghcr.io/org/app".parse().unwrap();
        assert_eq!(gh.to_string(), "ghcr.io/org/app");
        assert!("ghcr.io/org/app:v1".parse::<ImageName>().is_err());
        assert!("localhost:5000/app:v1".parse::<ImageName>().is_err());
        assert!("https://ghcr.io/org/app".parse::<ImageName>().is_err());
        assert!(
            format!("ghcr.io/a@sha256:{}", "0".repeat(64))
                .parse::<ImageName>()
                .is_err()
        );
    }

    #[test]
    fn destinations() {
        assert_eq!(
            Destination::parse("oci:out").unwrap(),
            Destination::Layout("out".into())
        );
        assert!(Destination::parse("oci:").is_err());
        assert!(Destination::parse("oci:out:v1").is_err());
        assert!(matches!(
            Destination::parse("127.0.0.1:5000/x").unwrap(),
            Destination::Registry(_)
        ));
    }

    #[test]
    fn image_refs_for_pull_and_verify() {
        let d = format!("sha256:{}", "b".repeat(64));
        let r: ImageRef = "localhost:5000/org/app:1.2.3".parse().unwrap();
        assert_eq!(r.location.to_string(), "localhost:5000/org/app");
        assert_eq!(r.tag.as_ref().unwrap().as_str(), "1.2.3");
        assert!(r.digest.is_none());
        let r: ImageRef = format!("localhost:5000/org/app@{d}").parse().unwrap();
        assert!(r.tag.is_none());
        assert_eq!(r.digest.as_ref().unwrap().to_string(), d);
        assert_eq!(r.to_string(), format!("localhost:5000/org/app@{d}"));
        let r: ImageRef = format!("ghcr.io/org/app:v1@{d}").parse().unwrap();
        assert_eq!(r.to_string(), format!("ghcr.io/org/app:v1@{d}"));
        let r: ImageRef = "oci:out:0.1.0".parse().unwrap();
        assert_eq!(r.location, Destination::Layout("out".into()));
        assert_eq!(r.tag.unwrap().as_str(), "0.1.0");
        let r: ImageRef = format!("oci:./a/b@{d}").parse().unwrap();
        assert_eq!(r.location, Destination::Layout("./a/b".into()));
        assert!(
            "localhost:5000/app"
                .parse::<ImageRef>()
                .unwrap_err()
                .contains("@sha256:")
        );
        assert!("oci:out".parse::<ImageRef>().is_err());
        assert!(
            "ghcr.io/app@sha256:12"
                .parse::<ImageRef>()
                .unwrap_err()
                .contains("64 hex")
        );
        assert!("ghcr.io/app:bad~tag".parse::<ImageRef>().is_err());
    }

    #[test]
    fn names_split_as_docker_reads_them() {
        // How docker's reference grammar (and oci-client's parser, which these answers were
        // taken from) splits each name: the registry and repository, or `None` for an error.
        let long = format!("ghcr.io/{}", "a".repeat(256));
        let long_official = "a".repeat(250);
        let cases: [(&str, Option<(&str, &str)>); 32] = [
            ("ghcr.io/org/app", Some(("ghcr.io", "org/app"))),
            ("localhost/app", Some(("localhost", "app"))),
            (
                "localhost:5000/org/app",
                Some(("localhost:5000", "org/app")),
            ),
            ("127.0.0.1:5000/x", Some(("127.0.0.1:5000", "x"))),
            (
                "my-registry.example.com:443/a/b/c",
                Some(("my-registry.example.com:443", "a/b/c")),
            ),
            ("app", Some(("index.docker.io", "library/app"))),
            ("org/app", Some(("index.docker.io", "org/app"))),
            ("docker.io/app", Some(("index.docker.io", "library/app"))),
            (
                "index.docker.io/org/app",
                Some(("index.docker.io", "org/app")),
            ),
            ("registry/app", Some(("index.docker.io", "registry/app"))),
            ("a.b/c.d_e__f---g", Some(("a.b", "c.d_e__f---g"))),
            ("ghcr.io/a..b", None),
            ("ghcr.io/a___b", None),
            ("ghcr.io/a-_b", None),
            ("ghcr.io/-a", None),
            ("ghcr.io/a-", None),
            ("ghcr.io/_a", None),
            ("ghcr.io/a/", None),
            ("ghcr.io//a", None),
            ("ghcr.io/Org/app", None),
            ("Ghcr.io/org/app", Some(("Ghcr.io", "org/app"))),
            ("-ghcr.io/app", None),
            ("ghcr-.io/app", None),
            ("gh_cr.io/app", Some(("gh_cr.io", "app"))),
            ("ghcr.io:/app", None),
            ("ghcr.io:50x/app", None),
            ("ghcr..io/app", None),
            ("ghcr.io", Some(("index.docker.io", "library/ghcr.io"))),
            ("ghcr.io/ä", None),
            ("localhost", Some(("index.docker.io", "library/localhost"))),
            (&long, None),
            (&long_official, None),
        ];
        for (name, expected) in cases {
            let ours = split_name(name).ok();
            let ours = ours.as_ref().map(|(r, p)| (r.as_str(), p.as_str()));
            assert_eq!(ours, expected, "{name}");
        }
    }

    #[test]
    fn capitals_in_a_name_are_lowercased() {
        for (given, name) in [
            ("ghcr.io/Org/App", "ghcr.io/org/app"),
            ("GHCR.io/org/app", "ghcr.io/org/app"),
            ("Localhost:5000/Org/App", "localhost:5000/org/app"),
            // Not a registry host (no `.`, `:` or `localhost`): a Docker Hub namespace.
            ("UPPER/app", "index.docker.io/upper/app"),
        ] {
            assert_eq!(
                given.parse::<ImageName>().unwrap().to_string(),
                name,
                "{given}"
            );
        }
        // Tags keep their case; the name before them is lowercased.
        let r = "ghcr.io/Org/App:Release-1".parse::<ImageRef>().unwrap();
        assert_eq!(r.location.to_string(), "ghcr.io/org/app");
        assert_eq!(r.tag.unwrap().as_str(), "Release-1");
        // A layout is a directory, whose case matters.
        assert_eq!(
            Destination::parse("oci:Out").unwrap(),
            Destination::Layout(PathBuf::from("Out"))
        );
    }

    #[test]
    fn a_bad_name_says_which_part_is_wrong() {
        let err = "ghcr.io/o rg/app".parse::<ImageName>().unwrap_err();
        assert!(err.contains("`o rg` must be lowercase"), "{err}");
        let err = "ghcr.io:x/app".parse::<ImageName>().unwrap_err();
        assert!(err.contains("port"), "{err}");
        for port in ["0", "65536", "99999999999999999999"] {
            let err = format!("localhost:{port}/app")
                .parse::<ImageName>()
                .unwrap_err();
            assert!(err.contains("from 1 to 65535"), "{err}");
        }
        assert!("localhost:65535/app".parse::<ImageName>().is_ok());
    }
}
