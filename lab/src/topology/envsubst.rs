//! Environment-variable expansion of a topology file's text, with containerlab's rules.
//!
//! containerlab expands variables in the whole file before it parses the YAML: `${VAR}` and
//! `$VAR` become the variable's value, `${VAR-default}`, `${VAR:-default}`, `${VAR=default}`,
//! `${VAR:=default}`, `${VAR+other}` and `${VAR:+other}` work as in a POSIX shell, `$$` is a
//! literal `$`, and a variable that is not set (with no default) is left exactly as written, so
//! `$1` or `$FOO` meant for a shell inside a node survive.

/// Expands `text` using `lookup` for variable values (normally the process environment).
pub fn expand(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner_start) = after.strip_prefix('{') {
            match matching_brace(inner_start) {
                Some(end) => {
                    let inner = &inner_start[..end];
                    match braced(inner, lookup) {
                        Some(value) => out.push_str(&value),
                        None => {
                            out.push_str("${");
                            out.push_str(inner);
                            out.push('}');
                        }
                    }
                    rest = &inner_start[end + 1..];
                }
                None => {
                    out.push('$');
                    rest = after;
                }
            }
        } else {
            let name_len = name_length(after);
            if name_len == 0 {
                out.push('$');
                rest = after;
            } else {
                let name = &after[..name_len];
                match lookup(name) {
                    Some(value) => out.push_str(&value),
                    None => {
                        out.push('$');
                        out.push_str(name);
                    }
                }
                rest = &after[name_len..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Length of the variable name at the start of `s` (a letter or `_`, then letters, digits, `_`).
fn name_length(s: &str) -> usize {
    let mut len = 0;
    for (i, c) in s.char_indices() {
        let ok = c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit());
        if !ok {
            break;
        }
        len = i + c.len_utf8();
    }
    len
}

/// Index of the `}` closing an expression whose body starts at `s` (nested `${` counted).
fn matching_brace(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// Evaluates the body of `${...}`; `None` means "leave the expression as written".
fn braced(inner: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let name_len = name_length(inner);
    if name_len == 0 {
        return None;
    }
    let name = &inner[..name_len];
    let op_and_word = &inner[name_len..];
    let value = lookup(name);
    if op_and_word.is_empty() {
        return value;
    }
    let (colon, op_word) = match op_and_word.strip_prefix(':') {
        Some(r) => (true, r),
        None => (false, op_and_word),
    };
    let mut chars = op_word.chars();
    let op = chars.next()?;
    let word = chars.as_str();
    let is_set = match (&value, colon) {
        (Some(v), true) => !v.is_empty(),
        (Some(_), false) => true,
        (None, _) => false,
    };
    match op {
        '-' | '=' => Some(if is_set {
            value.unwrap_or_default()
        } else {
            expand(word, lookup)
        }),
        '+' => Some(if is_set {
            expand(word, lookup)
        } else {
            String::new()
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "SET" => Some("value".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn x(s: &str) -> String {
        expand(s, &env)
    }

    #[test]
    fn set_variables_are_replaced_in_both_spellings() {
        assert_eq!(x("a ${SET} $SET b"), "a value value b");
    }

    #[test]
    fn unset_variables_are_left_as_written() {
        assert_eq!(x("echo $FOO ${BAR} $1 $"), "echo $FOO ${BAR} $1 $");
    }

    #[test]
    fn a_double_dollar_is_a_literal_dollar() {
        assert_eq!(x("ash -c 'echo $$SET'"), "ash -c 'echo $SET'");
    }

    #[test]
    fn defaults_follow_shell_rules() {
        assert_eq!(x("${UNSET:=3}"), "3");
        assert_eq!(x("${UNSET-3}"), "3");
        assert_eq!(x("${EMPTY-3}"), "");
        assert_eq!(x("${EMPTY:-3}"), "3");
        assert_eq!(x("${SET:-3}"), "value");
        assert_eq!(x("${SET+yes}"), "yes");
        assert_eq!(x("${UNSET+yes}"), "");
        assert_eq!(x("${EMPTY:+yes}"), "");
        assert_eq!(x("${UNSET:-${SET}}"), "value");
    }

    #[test]
    fn an_unterminated_expression_is_kept() {
        assert_eq!(x("a ${SET"), "a ${SET");
    }
}
