//! `${NAME}` and `${file:/path}` references, so that secrets never live in the plan.
//!
//! Every string of the plan may hold references: `${NAME}` takes the environment variable
//! `NAME`, `${file:PATH}` the content of a file (one trailing newline removed; relative paths
//! are relative to the plan), and `$${` is a literal `${`. They are resolved when a command
//! runs, in memory only; `bcn validate` checks their syntax without reading anything, so plans
//! can be validated where the secrets are not.

use std::path::Path;

use serde_json::Value;

use super::Diagnostic;

/// How references are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolve {
    /// Replace every reference; a missing variable or file is an error.
    Strict,
    /// Check the syntax only and leave the text as it is.
    SyntaxOnly,
    /// Replace what can be replaced; a reference to a missing variable or file is left as it
    /// is and recorded, so that only a command that uses that value fails.
    Lenient,
}

/// Resolves the references in every string of `value` (a plan as JSON), collecting problems.
pub(crate) fn resolve_tree(
    value: &mut Value,
    path: &str,
    mode: &dyn Fn(&str) -> Resolve,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    diags: &mut Vec<Diagnostic>,
    unresolved: &mut Vec<(String, String)>,
) {
    match value {
        Value::String(s) => {
            if s.contains('$') {
                let mode = mode(path);
                let resolved = match mode {
                    Resolve::Lenient => resolve(s, Resolve::Strict, base, env).or_else(|missing| {
                        resolve(s, Resolve::SyntaxOnly, base, env)
                            .inspect(|_| unresolved.push((path.to_owned(), missing)))
                    }),
                    _ => resolve(s, mode, base, env),
                };
                match resolved {
                    Ok(resolved) => *s = resolved,
                    Err(message) => diags.push(Diagnostic::new(
                        path,
                        message,
                        "write `${NAME}` for an environment variable, `${file:/path}` for a file, `$${` for a literal `${`",
                    )),
                }
            }
            // Secrets given in the plan itself are redacted like referenced ones.
            let key = path.rsplit(['.', '[']).next().unwrap_or(path);
            if crate::secret::is_secret_key(key) {
                crate::secret::register(s);
            }
            crate::secret::register_url_password(s);
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                resolve_tree(
                    item,
                    &format!("{path}[{i}]"),
                    mode,
                    base,
                    env,
                    diags,
                    unresolved,
                );
            }
        }
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                let child = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                resolve_tree(v, &child, mode, base, env, diags, unresolved);
            }
        }
        _ => {}
    }
}

/// Resolves the references of one string. Messages name the reference, never a value.
pub(crate) fn resolve(
    text: &str,
    mode: Resolve,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('$') {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str(if mode == Resolve::SyntaxOnly {
                "$${"
            } else {
                "${"
            });
            rest = tail;
            continue;
        }
        let Some(body) = after.strip_prefix("${") else {
            out.push('$');
            rest = &after[1..];
            continue;
        };
        let end = body
            .find('}')
            .ok_or_else(|| format!("unclosed reference `{}`", truncate(after)))?;
        let reference = &body[..end];
        rest = &body[end + 1..];
        let value = match reference.strip_prefix("file:") {
            Some(file) if !file.is_empty() => match mode {
                Resolve::SyntaxOnly => format!("${{{reference}}}"),
                Resolve::Strict | Resolve::Lenient => read_secret_file(&base.join(file))?,
            },
            _ if is_env_name(reference) => match mode {
                Resolve::SyntaxOnly => format!("${{{reference}}}"),
                Resolve::Strict | Resolve::Lenient => env(reference)
                    .ok_or_else(|| format!("environment variable `{reference}` is not set"))?,
            },
            _ => return Err(format!("invalid reference `${{{reference}}}`")),
        };
        // Whatever a reference holds is treated as a secret: that is what references are for.
        if mode != Resolve::SyntaxOnly {
            crate::secret::register(&value);
        }
        out.push_str(&value);
    }
    out.push_str(rest);
    Ok(out)
}

fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn read_secret_file(path: &Path) -> Result<String, String> {
    let mut content = fs_err::read_to_string(path)
        .map_err(|e| format!("cannot read secret file {}: {}", path.display(), e.kind()))?;
    if content.ends_with('\n') {
        content.pop();
        if content.ends_with('\r') {
            content.pop();
        }
    }
    Ok(content)
}

fn truncate(s: &str) -> String {
    s.chars().take(24).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "TOKEN").then(|| "s3cr3t".to_owned())
    }

    #[test]
    fn references_resolve() {
        let base = Path::new("/");
        assert_eq!(
            resolve("Bearer ${TOKEN}", Resolve::Strict, base, &env).unwrap(),
            "Bearer s3cr3t"
        );
        assert_eq!(
            resolve("a $${TOKEN} $x", Resolve::Strict, base, &env).unwrap(),
            "a ${TOKEN} $x"
        );
        assert_eq!(
            resolve("${TOKEN}", Resolve::SyntaxOnly, base, &env).unwrap(),
            "${TOKEN}"
        );
        let missing = resolve("${NOPE}", Resolve::Strict, base, &env).unwrap_err();
        assert_eq!(missing, "environment variable `NOPE` is not set");
        assert!(resolve("${NOPE}", Resolve::SyntaxOnly, base, &env).is_ok());
        assert!(resolve("${bad-name}", Resolve::SyntaxOnly, base, &env).is_err());
        assert!(resolve("${TOKEN", Resolve::SyntaxOnly, base, &env).is_err());
    }

    #[test]
    fn files_resolve_without_their_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::write(dir.path().join("secret"), "hunter2\n").unwrap();
        let got = resolve("${file:secret}", Resolve::Strict, dir.path(), &env).unwrap();
        assert_eq!(got, "hunter2");
        let err = resolve("${file:missing}", Resolve::Strict, dir.path(), &env).unwrap_err();
        assert!(err.starts_with("cannot read secret file"), "{err}");
        assert!(!err.contains("hunter2"));
    }
}
