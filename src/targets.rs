//! Where a push goes when it names more than one place: the registry images of `image` (one per
//! line or comma-separated) and the full references of `image` or `tags`
//! (`ghcr.io/org/app:1.2.3`, as docker/metadata-action's `tags` output writes them), each image
//! with the tags named for it. The same artifact, with one manifest digest, goes to every one.
//! Names and tags never hold a comma, so a comma always separates items.

use crate::error::{Error, Result};
use crate::input;
use crate::reference::{Destination, ImageName, Tag};

/// One registry repository a push goes to, with the tags named for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushTarget {
    /// The registry and repository.
    pub image: ImageName,
    /// The tags `tags` gives every image, then those of the references naming this one; empty
    /// means "derive from the git ref".
    pub tags: Vec<Tag>,
}

/// What the `image` and `tags` inputs name, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    /// The first place: the push's `image` output, and the one the provenance names.
    pub destination: Destination,
    /// Every registry image, the first being `destination` (none for an `oci:DIR` layout).
    pub targets: Vec<PushTarget>,
    /// Every tag named, once each, in order: the tags of a single image.
    pub tags: Vec<Tag>,
}

/// One item of `image` or `tags`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    /// `registry/repository`.
    Name(ImageName),
    /// `registry/repository:tag`.
    Reference(ImageName, Tag),
    /// A bare tag (only in `tags`).
    Tag(Tag),
}

/// Reads one item. In `tags`, an item without `/` or `:` is a tag; anything else (and every
/// item of `image`) is an image name, with a tag when a `:` follows its last `/` (a registry's
/// port comes before it).
fn item(text: &str, in_tags: bool) -> std::result::Result<Item, String> {
    if text.contains('@') {
        return Err(format!(
            "`{text}` carries a digest; a push names `registry/repository` or `registry/repository:tag`"
        ));
    }
    if in_tags && !text.contains(['/', ':']) {
        return text.parse().map(Item::Tag);
    }
    let last_slash = text.rfind('/').map_or(0, |i| i + 1);
    match text[last_slash..].rfind(':') {
        Some(i) => {
            let (name, tag) = (&text[..last_slash + i], &text[last_slash + i + 1..]);
            Ok(Item::Reference(name.parse()?, tag.parse()?))
        }
        None => text.parse().map(Item::Name),
    }
}

/// Parses the items of `image` and `tags` (each already split into lines or comma-separated
/// items). A tag of `tags` goes to every image; a reference's tag to its own image, which it
/// adds when `image` does not name it. `image` may be empty when `tags` holds references.
pub fn parse(images: &[String], tags: &[String]) -> Result<Named> {
    let mut targets: Vec<PushTarget> = Vec::new();
    let mut plain: Vec<Tag> = Vec::new();
    let mut referenced: Vec<(ImageName, Tag)> = Vec::new();
    let layout = match images {
        [one] if one.starts_with("oci:") => {
            Some(Destination::parse(one).map_err(|e| Error::input(input::IMAGE, e))?)
        }
        several if several.iter().any(|i| i.starts_with("oci:")) => {
            return Err(Error::input(
                input::IMAGE,
                "`oci:DIR` writes one OCI layout; it cannot be combined with other images",
            ));
        }
        _ => None,
    };
    if layout.is_none() {
        for text in images {
            match item(text, false).map_err(|e| Error::input(input::IMAGE, e))? {
                Item::Name(image) => add(&mut targets, image),
                Item::Reference(image, tag) => referenced.push((image, tag)),
                Item::Tag(_) => unreachable!("`image` items are names"),
            }
        }
    }
    for text in tags {
        match item(text, true).map_err(|e| Error::input(input::TAGS, e))? {
            Item::Tag(tag) => plain.push(tag),
            Item::Reference(image, tag) => referenced.push((image, tag)),
            Item::Name(image) => {
                return Err(Error::input(
                    input::TAGS,
                    format!(
                        "`{text}` names the image {image} without a tag; give `{image}:TAG`, or put the image in `image`"
                    ),
                ));
            }
        }
    }
    if let Some(layout) = layout {
        if let Some((image, tag)) = referenced.first() {
            return Err(Error::input(
                input::TAGS,
                format!(
                    "`{image}:{tag}` names a registry, but `image` is an OCI layout; give only tags"
                ),
            ));
        }
        return Ok(Named {
            destination: layout,
            targets: Vec::new(),
            tags: dedup(plain),
        });
    }
    for (image, _) in &referenced {
        add(&mut targets, image.clone());
    }
    for target in &mut targets {
        let own = referenced
            .iter()
            .filter(|(image, _)| *image == target.image)
            .map(|(_, tag)| tag.clone());
        target.tags = dedup(plain.iter().cloned().chain(own).collect());
    }
    let Some(first) = targets.first() else {
        return Err(Error::input(
            input::IMAGE,
            "is required: give `registry/repository` (several: one per line), full references `registry/repository:tag` in `tags`, or `oci:DIR` for a local OCI layout",
        ));
    };
    let destination = Destination::Registry(first.image.clone());
    let all = targets
        .iter()
        .flat_map(|t| t.tags.iter().cloned())
        .collect();
    Ok(Named {
        destination,
        targets,
        tags: dedup(all),
    })
}

fn add(targets: &mut Vec<PushTarget>, image: ImageName) {
    if !targets.iter().any(|t| t.image == image) {
        targets.push(PushTarget {
            image,
            tags: Vec::new(),
        });
    }
}

/// `tags` with each tag once, in the order first given.
fn dedup(tags: Vec<Tag>) -> Vec<Tag> {
    let mut out: Vec<Tag> = Vec::with_capacity(tags.len());
    for tag in tags {
        if !out.contains(&tag) {
            out.push(tag);
        }
    }
    out
}

/// The image name of an item of `tags` (`in_tags`) or `image`, when it names one: to tell
/// which images a list of references is about.
pub fn image_of(text: &str, in_tags: bool) -> Option<ImageName> {
    match item(text, in_tags).ok()? {
        Item::Name(image) | Item::Reference(image, _) => Some(image),
        Item::Tag(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(text: &str) -> Vec<String> {
        text.split(['\n', ','])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Each target as `image: tag tag`.
    fn named(image: &str, tags: &str) -> Result<Vec<String>> {
        Ok(parse(&list(image), &list(tags))?
            .targets
            .iter()
            .map(|t| {
                let tags: Vec<&str> = t.tags.iter().map(Tag::as_str).collect();
                format!("{}: {}", t.image, tags.join(" "))
            })
            .collect())
    }

    #[test]
    fn several_images_one_per_line_or_comma_separated_share_the_tags() {
        let expected = [
            "ghcr.io/acme/app: 1.2.3 latest",
            "index.docker.io/acme/app: 1.2.3 latest",
            "localhost:5000/app: 1.2.3 latest",
        ];
        for image in [
            "ghcr.io/acme/app\ndocker.io/acme/app\nlocalhost:5000/app",
            "ghcr.io/acme/app, docker.io/acme/app,localhost:5000/app",
            "ghcr.io/acme/app\nacme/app\nlocalhost:5000/app\nghcr.io/acme/app",
        ] {
            assert_eq!(named(image, "1.2.3,latest").unwrap(), expected, "{image}");
        }
        let one = parse(&list("ghcr.io/acme/app"), &list("1.2.3, 1.2.3")).unwrap();
        assert_eq!(one.destination.to_string(), "ghcr.io/acme/app");
        assert_eq!(one.tags.len(), 1, "a tag given twice is pushed once");
    }

    /// docker/metadata-action's `tags` output as its README shows it: `images` times the tags
    /// its `tags` input makes, one reference per line (`sep-tags` may make it a comma).
    #[test]
    fn metadata_action_tags_output_formats() {
        let cases: &[(&str, &str, &str, &[&str])] = &[
            (
                "one image, semver tags",
                "",
                "name/app:1.2.3\nname/app:1.2\nname/app:sha-90dd603\nname/app:latest",
                &["index.docker.io/name/app: 1.2.3 1.2 sha-90dd603 latest"],
            ),
            (
                "two registries",
                "",
                "ghcr.io/user/app:1.2.3\nghcr.io/user/app:latest\nname/app:1.2.3\nname/app:latest",
                &[
                    "ghcr.io/user/app: 1.2.3 latest",
                    "index.docker.io/name/app: 1.2.3 latest",
                ],
            ),
            (
                "sep-tags: ,",
                "",
                "ghcr.io/user/app:v1.2.3,ghcr.io/user/app:latest",
                &["ghcr.io/user/app: v1.2.3 latest"],
            ),
            (
                "a branch and a pull request",
                "",
                "ghcr.io/user/app:master\nghcr.io/user/app:pr-2",
                &["ghcr.io/user/app: master pr-2"],
            ),
            (
                "a registry with a port",
                "",
                "localhost:5000/name/app:edge",
                &["localhost:5000/name/app: edge"],
            ),
            (
                "empty `images`: bare tags for the image given here",
                "ghcr.io/user/app",
                "1.2.3\nlatest",
                &["ghcr.io/user/app: 1.2.3 latest"],
            ),
            (
                "`image` names the first, references add the tags",
                "ghcr.io/user/app",
                "ghcr.io/user/app:1.2.3\nname/app:1.2.3",
                &["ghcr.io/user/app: 1.2.3", "index.docker.io/name/app: 1.2.3"],
            ),
            (
                "capitals, as `images: ghcr.io/${{ github.repository }}` gives",
                "",
                "ghcr.io/Org/App:1.2.3",
                &["ghcr.io/org/app: 1.2.3"],
            ),
        ];
        for (case, image, tags, expected) in cases {
            assert_eq!(&named(image, tags).unwrap(), expected, "{case}");
        }
    }

    #[test]
    fn references_may_stand_in_image_too() {
        assert_eq!(
            named("ghcr.io/a/app:1.0\nlocalhost:5000/app:1.0", "").unwrap(),
            ["ghcr.io/a/app: 1.0", "localhost:5000/app: 1.0"]
        );
        // Only the references' images get their tags; a name without one derives them.
        assert_eq!(
            named("ghcr.io/a/app\nlocalhost:5000/app:edge", "").unwrap(),
            ["ghcr.io/a/app: ", "localhost:5000/app: edge"]
        );
    }

    #[test]
    fn bad_items_are_named_with_their_input() {
        let err =
            |image: &str, tags: &str| parse(&list(image), &list(tags)).unwrap_err().to_string();
        assert!(err("", "").starts_with("input `image`: is required"));
        assert!(err("", "1.2.3").starts_with("input `image`: is required"));
        assert!(
            err("ghcr.io/a/app@sha256:00", "")
                .starts_with("input `image`: `ghcr.io/a/app@sha256:00` carries a digest")
        );
        assert!(
            err("ghcr.io/a/app", "ghcr.io/a/app")
                .starts_with("input `tags`: `ghcr.io/a/app` names the image")
        );
        assert!(err("ghcr.io/a/app", "bad~tag").starts_with("input `tags`"));
        assert!(err("ghcr.io/a/app", "ghcr.io/a/app:bad~tag").starts_with("input `tags`"));
        assert!(
            err("oci:out\nghcr.io/a/app", "").starts_with("input `image`: `oci:DIR` writes one")
        );
        assert!(
            err("oci:out", "ghcr.io/a/app:1")
                .starts_with("input `tags`: `ghcr.io/a/app:1` names a registry")
        );
        assert_eq!(
            parse(&list("oci:out"), &list("1")).unwrap().destination,
            Destination::Layout("out".into())
        );
    }
}
