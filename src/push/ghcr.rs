//! The health of a package in GitHub's container registry after a push. A package that a push
//! creates starts private and may be linked to no repository, so the deploy jobs of a public
//! repository cannot pull it anonymously. After a push there, the package's visibility and
//! repository link are read from the GitHub API, and a warning names the settings page when a
//! public repository's package is private or not linked to it. The API's refusal (a token
//! without `packages: read`) only leaves a line in the log: the push stands either way.

use tracing::{info, warn};

use super::report::Reached;
use crate::context::GithubContext;
use crate::github;
use crate::reference::ImageName;
use crate::secret::Secret;

/// The host of the container registry of the GitHub instance at `server_url`
/// (`GITHUB_SERVER_URL`): `ghcr.io` for github.com, `containers.HOST` for GitHub Enterprise
/// Server and GHE.com, as GitHub documents them.
pub fn container_registry(server_url: Option<&str>) -> String {
    let host = server_url
        .unwrap_or("https://github.com")
        .trim_end_matches('/')
        .split("://")
        .last()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match host.as_str() {
        "github.com" | "" => "ghcr.io".to_owned(),
        other => format!("containers.{other}"),
    }
}

/// The package an image of the container registry is: its owner and its name (`ghcr.io/acme/app`
/// is `acme`'s package `app`; `ghcr.io/acme/tools/app`, `tools/app`).
fn package_of(image: &ImageName) -> Option<(&str, &str)> {
    image.repository().split_once('/')
}

/// Checks each package that `registries` pushed to in the GitHub container registry, when the
/// repository is public and a token (`github-token`) is at hand.
pub async fn check_packages(token: Option<&Secret>, ctx: &GithubContext, registries: &[Reached]) {
    let registry = container_registry(ctx.server_url.as_deref());
    let images: Vec<&ImageName> = registries
        .iter()
        .filter(|r| r.error.is_none() && r.image.registry() == registry)
        .map(|r| &r.image)
        .collect();
    if images.is_empty() {
        return;
    }
    let (Some(token), Some(repository)) = (token, &ctx.repository) else {
        return;
    };
    let visibility = crate::sigstore::instance::repository_visibility(ctx);
    if visibility.as_deref() != Some("public") {
        // A private repository's packages are meant to be private; an unknown one is not
        // guessed at.
        return;
    }
    let api = ctx.api_url.as_deref().unwrap_or("https://api.github.com");
    let server = ctx
        .server_url
        .as_deref()
        .unwrap_or("https://github.com")
        .trim_end_matches('/');
    for image in images {
        let Some((owner, name)) = package_of(image) else {
            continue;
        };
        let package = match github::container_package(api, owner, name, token, github::TIMEOUT)
            .await
        {
            Ok(package) => package,
            Err(e) => {
                let why = match e {
                    github::ApiError::NotFound => {
                        "404: no such package, or the token cannot see it".to_owned()
                    }
                    other => other.to_string(),
                };
                info!(
                    "cannot read package {image} from the GitHub API at {api} ({why}); its visibility and repository link are not checked"
                );
                continue;
            }
        };
        let settings = format!(
            "{server}/{}/{owner}/packages/container/{}/settings",
            package.scope,
            name.replace('/', "%2F")
        );
        if package.visibility != "public" {
            warn!(
                "package {image} is {} while the repository {repository} is public: pulls without credentials fail; make it public in {settings}",
                package.visibility
            );
        }
        match &package.repository {
            Some(linked) if linked.eq_ignore_ascii_case(repository) => {}
            Some(linked) => warn!(
                "package {image} is linked to {linked}, not {repository}: this repository's workflows may be refused it; connect it in {settings}"
            ),
            None => warn!(
                "package {image} is linked to no repository: it does not show on {repository}'s page and its workflows may be refused it; connect it to {repository} in {settings}"
            ),
        }
        if package.visibility == "public" && package.repository.is_some() {
            info!("package {image} is public and linked to {repository}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_container_registry_of_each_github_instance() {
        for (server, registry) in [
            (None, "ghcr.io"),
            (Some("https://github.com"), "ghcr.io"),
            (Some("https://github.com/"), "ghcr.io"),
            (
                Some("https://ghes.example.com"),
                "containers.ghes.example.com",
            ),
            (Some("https://octo.ghe.com"), "containers.octo.ghe.com"),
        ] {
            assert_eq!(container_registry(server), registry, "{server:?}");
        }
    }

    #[test]
    fn packages_of_images() {
        let image: ImageName = "ghcr.io/acme/tools/app".parse().unwrap();
        assert_eq!(package_of(&image), Some(("acme", "tools/app")));
        let image: ImageName = "ghcr.io/acme/app".parse().unwrap();
        assert_eq!(package_of(&image), Some(("acme", "app")));
    }
}
