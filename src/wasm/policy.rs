//! The capability gate: `allowed-imports`, the interfaces a component may import, as patterns
//! (`wasi:cli/*`, `wasi:http/outgoing-handler`, `wasi:*`). A pattern without `@version` allows
//! every version of what it names; `*` matches any run of characters, `/` included.

/// The parsed `allowed-imports` input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedImports {
    patterns: Vec<(String, glob::Pattern)>,
}

impl AllowedImports {
    /// Parses patterns given one per line or comma-separated. The error is the reason, for the
    /// caller to name the input.
    pub fn parse(value: &str) -> Result<Self, String> {
        let mut patterns = Vec::new();
        for item in value.split(['\n', ',']).map(str::trim) {
            if item.is_empty() {
                continue;
            }
            if item.chars().any(char::is_whitespace) {
                return Err(format!(
                    "`{item}` is not an interface pattern; give one per line, such as `wasi:cli/*`"
                ));
            }
            let pattern = glob::Pattern::new(item)
                .map_err(|e| format!("`{item}` is not an interface pattern: {}", e.msg))?;
            patterns.push((item.to_owned(), pattern));
        }
        if patterns.is_empty() {
            return Err("lists no pattern; give interfaces such as `wasi:cli/*`".to_owned());
        }
        Ok(AllowedImports { patterns })
    }

    /// The patterns as given.
    pub fn patterns(&self) -> Vec<&str> {
        self.patterns.iter().map(|(p, _)| p.as_str()).collect()
    }

    /// Whether `import` (such as `wasi:io/streams@0.2.0`) is allowed.
    pub fn allows(&self, import: &str) -> bool {
        let unversioned = import.split_once('@').map_or(import, |(name, _)| name);
        self.patterns.iter().any(|(text, pattern)| {
            let candidate = if text.contains('@') {
                import
            } else {
                unversioned
            };
            pattern.matches(candidate)
        })
    }

    /// The imports not allowed, in the order given.
    pub fn outside<'a>(&self, imports: &'a [String]) -> Vec<&'a str> {
        imports
            .iter()
            .map(String::as_str)
            .filter(|i| !self.allows(i))
            .collect()
    }

    /// What a policy refusal says: each import outside it, and the patterns.
    pub fn refusal(&self, outside: &[&str]) -> String {
        format!(
            "imports {} outside allowed-imports ({})",
            outside
                .iter()
                .map(|i| format!("`{i}`"))
                .collect::<Vec<_>>()
                .join(", "),
            self.patterns()
                .iter()
                .map(|p| format!("`{p}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_interfaces_with_or_without_versions() {
        let cases: &[(&str, &str, bool)] = &[
            ("wasi:cli/*", "wasi:cli/environment@0.2.0", true),
            ("wasi:cli/*", "wasi:io/streams@0.2.0", false),
            ("wasi:*", "wasi:sockets/tcp@0.2.3", true),
            ("wasi:*", "acme:db/query@1.0.0", false),
            (
                "wasi:http/outgoing-handler",
                "wasi:http/outgoing-handler@0.2.0",
                true,
            ),
            (
                "wasi:http/outgoing-handler",
                "wasi:http/outgoing-handler",
                true,
            ),
            ("wasi:http/outgoing-handler", "wasi:http/types@0.2.0", false),
            (
                "wasi:http/outgoing-handler@0.2.0",
                "wasi:http/outgoing-handler@0.2.1",
                false,
            ),
            (
                "wasi:http/outgoing-handler@0.2.*",
                "wasi:http/outgoing-handler@0.2.1",
                true,
            ),
            ("*", "anything", true),
        ];
        for (pattern, import, allowed) in cases {
            let policy = AllowedImports::parse(pattern).unwrap();
            assert_eq!(policy.allows(import), *allowed, "{pattern} vs {import}");
        }
    }

    #[test]
    fn lines_or_commas_and_bad_patterns() {
        let policy = AllowedImports::parse("wasi:cli/*,\n wasi:io/* \n\n").unwrap();
        assert_eq!(policy.patterns(), ["wasi:cli/*", "wasi:io/*"]);
        let imports = vec![
            "wasi:cli/stdout@0.2.0".to_owned(),
            "wasi:sockets/tcp@0.2.0".to_owned(),
            "wasi:io/streams@0.2.0".to_owned(),
        ];
        assert_eq!(policy.outside(&imports), ["wasi:sockets/tcp@0.2.0"]);
        assert!(AllowedImports::parse(" , \n").is_err());
        assert!(AllowedImports::parse("wasi:[cli").is_err());
        assert!(AllowedImports::parse("wasi:cli/* wasi:io/*").is_err());
    }
}
