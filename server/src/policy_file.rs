//! Policies as code: a file of `[[policy]]` tables (TOML) or a `policy:` list (YAML),
//! in evaluation order, read and written by `signoff-server policies …` and the console.

use std::path::Path;

use signoff_app::policy::PolicyFile;

use crate::{Error, Result};

/// The formats a policy file may be in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Toml,
    Yaml,
}

impl Format {
    /// By extension: `.yaml`/`.yml` is YAML, anything else TOML.
    pub fn of(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("yaml") || ext.eq_ignore_ascii_case("yml") => Format::Yaml,
            _ => Format::Toml,
        }
    }
}

/// Reads a policy file; a syntax error names its line and column.
pub fn parse(text: &str, format: Format) -> Result<PolicyFile> {
    match format {
        Format::Toml => {
            toml::from_str(text).map_err(|err| Error::Invalid(format!("the policy file is not valid: {err}")))
        }
        Format::Yaml => {
            serde_norway::from_str(text).map_err(|err| Error::Invalid(format!("the policy file is not valid: {err}")))
        }
    }
}

pub fn render(file: &PolicyFile, format: Format) -> Result<String> {
    match format {
        Format::Toml => {
            toml::to_string_pretty(file).map_err(|err| Error::Internal(format!("cannot write TOML: {err}")))
        }
        Format::Yaml => {
            serde_norway::to_string(file).map_err(|err| Error::Internal(format!("cannot write YAML: {err}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
[[policy]]
name = "prod deploys"
description = "Two people, one of them a lead"
[policy.match]
actions = ["deploy.*"]
labels = ["env=prod"]
condition = "payload.replicas > 2"
[policy.effect]
type = "require_approval"
approvals = 2
one_from_each = ["leads"]
ttl = "2h"

[[policy]]
name = "no drops"
[policy.match]
actions = ["db.drop"]
[policy.effect]
type = "deny"
reason = "tables are never dropped by agents"

[[policy]]
name = "reads"
enabled = false
[policy.match]
actions = ["db.read"]
[policy.effect]
type = "allow"
"#;

    #[test]
    fn toml_and_yaml_round_trip() {
        let file = parse(FILE, Format::Toml).expect("valid TOML");
        assert_eq!(file.policies.len(), 3);
        assert!(!file.policies[2].enabled);
        for format in [Format::Toml, Format::Yaml] {
            let text = render(&file, format).expect("renders");
            assert_eq!(parse(&text, format).expect("reads back"), file, "{text}");
        }
    }

    #[test]
    fn the_readme_example_is_a_valid_policy_file() {
        let readme = include_str!("../../README.md");
        let section = &readme[readme.find("## Policies").expect("a Policies section")..];
        let start = section.find("```toml\n").expect("a TOML example") + "```toml\n".len();
        let example = &section[start..start + section[start..].find("```").expect("closed")];
        let file = parse(example, Format::Toml).expect("the example parses");
        assert_eq!(file.policies.len(), 3);
        assert!(file.problems().is_empty(), "{:?}", file.problems());
    }

    #[test]
    fn unknown_fields_are_refused_with_their_place() {
        let refused = parse(
            "[[policy]]\nname = \"x\"\neffect = { type = \"allow\" }\napprovals = 2\n",
            Format::Toml,
        )
        .expect_err("unknown field");
        assert!(refused.to_string().contains("approvals"), "{refused}");
    }
}
